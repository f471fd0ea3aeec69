"""What a bench run shows: the machine, the table (a row as each case is measured, all rows at the
end), the notes the numbers need, and the JSON report."""

import json
import math
import os
import platform
from dataclasses import asdict

import torch

from ...io.atomic import reserve_temp
from ...io.outputs import OutputError, OutputRule
from .measure import Measurements
from .plan import Plan


def machine_description(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            name = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    isa = torch.backends.cpu.get_cpu_capability()
    return f"{name}, {os.cpu_count()} cores, {isa}, torch {torch.__version__}, {threads} threads"


def format_table(rows: list[dict], has_peer: bool) -> str:
    has_plain = any("plain_s" in row for row in rows)
    header = ["case", "GFLOP", "ours s", "ours fps", "ours % roof", "ours MiB"]
    if has_peer:
        header += ["peer s", "peer % roof", "peer MiB", "speed-up", "max diff"]
    has_ort = any(row.get("onnxruntime_s") is not None for row in rows)
    if has_ort:
        header += ["ORT s", "ORT % roof", "ORT MiB", "ORT speed-up", "ORT max diff"]
    if has_plain:
        header += ["no-Winograd s", "Winograd gain"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def number(value, pattern):
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else pattern.format(value)

    for row in rows:
        cells = [
            row["case"], number(row["gflop"], "{:.1f}"), number(row["ours_s"], "{:.3f}"),
            number(row["ours_fps"], "{:.2f}"), number(row["ours_roofline"], "{:.0%}"), number(row["ours_peak_mib"], "{:.0f}"),
        ]
        if has_peer:
            cells += [
                number(row["peer_s"], "{:.3f}"), number(row["peer_roofline"], "{:.0%}"),
                number(row["peer_peak_mib"], "{:.0f}"), number(row["speedup"], "{:.2f}x"),
                number(row["max_diff"], "{:.1e}"),
            ]
        if has_ort:
            cells += [
                number(row.get("onnxruntime_s"), "{:.3f}"), number(row.get("onnxruntime_roofline"), "{:.0%}"),
                number(row.get("onnxruntime_peak_mib"), "{:.0f}"), number(row.get("onnxruntime_speedup"), "{:.2f}x"),
                number(row.get("onnxruntime_max_diff"), "{:.1e}"),
            ]
        if has_plain:
            cells += [number(row.get("plain_s"), "{:.3f}"), number(row.get("winograd_gain"), "{:.2f}x")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def row_line(row: dict, has_peer: bool) -> str:
    """One row of the table, printed as its case is measured."""
    return format_table([row], has_peer).splitlines()[-1]


def rooflines_at(rows: list[dict], rate: float) -> None:
    """Each implementation's fraction of the GEMM-bound floor at the final rate (FLOP/s)."""
    for row in rows:
        row["ours_roofline"] = row["gflop"] * 1e9 / rate / row["ours_s"]
        if row.get("onnxruntime_s") is not None:
            row["onnxruntime_roofline"] = row["gflop"] * 1e9 / rate / row["onnxruntime_s"]
        if row["peer_s"] is not None:
            row["peer_roofline"] = row["gflop"] * 1e9 / rate / row["peer_s"]


def print_report(plan: Plan, machine: str, rate: float, measured: Measurements) -> None:
    """The whole table, with the settings it was measured at and the notes its numbers need."""
    options = plan.options
    print()
    print(f"{machine}; GEMM {rate / 1e9:.1f} GFLOP/s; {options.dtype}{', compiled' if options.compile else ''}; "
          f"median of {options.repeats}")
    print(format_table(measured.rows, plan.with_peer))
    if options.dtype == "float16":
        print("float16: our SwinV2 encoder runs in float32 (it overflows float16, as MiDaS warns), the peer's "
              "in float16: compare its finiteness too")
    if measured.different_windows:
        print(f"max diff '-' ({', '.join(measured.different_windows)}): the peer lays out windows differently at that size "
              "(the height's window on both axes, unmasked padding), so it computes another function there")


def check_json_target(path: str) -> None:
    """OutputError (one line) now, not after minutes of measuring, where the JSON cannot be written."""
    try:
        reserve_temp(path).unlink()
    except OSError as error:
        raise OutputError(f"--json {path}: cannot write there ({error.strerror or error})") from None


def write_json(plan: Plan, machine: str, rate: float, measured: Measurements) -> None:
    """The report as JSON at --json (checked before measuring), recorded as this tool's file."""
    options = plan.options
    settings = {key: value for key, value in asdict(options).items() if key not in ("json", "overwrite")}
    report = dict(
        machine=machine, gemm_gflops=rate / 1e9, settings=settings, memory_method=sorted(measured.memory_methods),
        peer_computes_another_function=measured.different_windows, results=measured.rows,
    )
    OutputRule().write_output(options.json, lambda out: out.write(json.dumps(report, indent=2).encode()), "--json")
    print(f"wrote {options.json}")
