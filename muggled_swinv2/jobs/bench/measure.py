"""The measurements of a bench run: the GEMM rate, each case's FLOPs and interleaved times, the
agreement of the outputs, and the peak memory of each implementation in a child process."""

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from ...accelerate import speed_paths_off
from ...export.onnx import relative_difference
from ...accelerate.onednn import linear
from ...model import SwinV2DPT, SwinV2DPTConfig
from ...model.config import RELEASES
from ...model.windows import window_layout
from .implementations import (build_ours, build_peer, export_for_peer, make_input, onnxruntime_forward, prepare,
                              random_weights, run_direct)
from .plan import BenchOptions, Case, Plan


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(forward, image, device) -> tuple[float, torch.Tensor]:
    synchronize(device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = forward(image)
    synchronize(device)
    return time.perf_counter() - start, out


def gemm_rate(device: torch.device, dtype: torch.dtype, repeats: int = 5) -> float:
    """Best FLOP/s of a 2048^3 matrix product on this device, dtype and thread count, by torch.mm
    (the BLAS: MKL on x86 CPUs) or by our linear layers' path (oneDNN on x86 CPUs, accelerate/onednn.py),
    whichever is faster: on the AMD CI machine MKL reached less than half of oneDNN's rate."""
    side = 2048
    a, b = (torch.randn(side, side, device=device).to(dtype) for _ in range(2))
    best = math.inf
    with torch.inference_mode():
        for product in (torch.mm, linear):
            for _ in range(repeats + 1):
                synchronize(device)
                start = time.perf_counter()
                product(a, b)
                synchronize(device)
                best = min(best, time.perf_counter() - start)
    return 2 * side**3 / best


def count_flops(model: SwinV2DPT, image: torch.Tensor) -> int:
    """FLOPs of one forward done the direct way (Winograd off, linear layers through F.linear, which
    the counter knows); the CPU attention kernel is added to the counter's table."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_attention(query, key, value, *args, **kwargs):
        return sdpa_flop_count(query, key, value)

    counter = FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_attention}
    )
    with speed_paths_off(model), counter, torch.inference_mode():
        model(image)
    return counter.get_total_flops()


def peer_computes_same_function(config: SwinV2DPTConfig, size_hw: tuple[int, int]) -> bool:
    """Whether transformers lays out the windows of every block as we do at this input size.

    It takes the window and shift of the grid's HEIGHT for both axes (we choose them per axis) and
    pads a grid that is not a multiple of the window with zeros that take part in attention (we
    mask them out), so off the square the two often compute different functions.
    """
    window = config.window_size
    for level in range(len(config.depths)):
        height, width = (side // (config.patch_size * 2**level) for side in size_hw)
        for shifted in (False, True):
            ours = window_layout((height, width), window, shifted)
            side, shift = min(height, window), window // 2 if shifted and height > window else 0
            if ours.is_padded or (ours.window_hw, ours.shift_hw) != ((side, side), (shift, shift)):
                return False
    return True


def time_case(forwards: dict, image, device, repeats: int) -> tuple[dict, dict]:
    """Median seconds per implementation (runs interleaved), and each one's output."""
    outputs = {name: timed(forward, image, device)[1] for name, forward in forwards.items()}  # warm-up
    times = {name: [] for name in forwards}
    names = list(forwards)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            times[name].append(timed(forwards[name], image, device)[0])
    return {name: statistics.median(values) for name, values in times.items()}, outputs


def case_row(case: Case, flops: int, rate: float, seconds: dict, outputs: dict, same_function: bool) -> dict:
    """One row of the report: the case's times, roofline fractions, speed-ups and output agreement."""
    row = dict(
        case=case.label, model=case.model, size_hw=list(case.size_hw), batch=case.batch, gflop=flops / 1e9,
        ours_s=seconds["ours"], ours_fps=case.batch / seconds["ours"], ours_roofline=flops / rate / seconds["ours"],
        ours_finite=bool(torch.isfinite(outputs["ours"]).all()), ours_peak_mib=None,
        peer_s=None, peer_roofline=None, peer_peak_mib=None, speedup=None, max_diff=None, peer_finite=None,
    )
    if "peer" in seconds:
        row.update(
            peer_s=seconds["peer"], peer_roofline=flops / rate / seconds["peer"],
            speedup=seconds["peer"] / seconds["ours"],
            max_diff=relative_difference(outputs["ours"], outputs["peer"]) if same_function else None,
            peer_finite=bool(torch.isfinite(outputs["peer"]).all()),
        )
    if "onnxruntime" in seconds:
        row.update(
            onnxruntime_s=seconds["onnxruntime"], onnxruntime_roofline=flops / rate / seconds["onnxruntime"],
            onnxruntime_speedup=seconds["onnxruntime"] / seconds["ours"], onnxruntime_peak_mib=None,
            onnxruntime_max_diff=relative_difference(outputs["onnxruntime"], outputs["ours"]),
            onnxruntime_finite=bool(torch.isfinite(outputs["onnxruntime"]).all()),
        )
    if "plain" in seconds:
        row.update(plain_s=seconds["plain"], winograd_gain=seconds["plain"] / seconds["ours"])
    return row


def measure_memory(impl: str, model: str, size_hw, batches, options: BenchOptions, onnx_path=None) -> tuple[dict, str]:
    """({batch: peak MiB}, how it was measured) of one implementation at one size, by a fresh child
    process (memory_child.py); ({}, "failed") with a line on stderr if the child failed."""
    spec = dict(
        impl=impl, model=model, size_hw=list(size_hw), batches=list(batches), device=options.device,
        dtype=options.dtype, threads=options.threads, compile=options.compile, seed=options.seed, onnx_path=onnx_path,
    )
    command = [sys.executable, "-m", f"{__package__}.memory_child", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  memory of {impl} {model}@{size_hw}: child failed: {tail}", file=sys.stderr)
        return {}, "failed"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {int(batch): mib for batch, mib in result["peak_mib"].items()}, result["method"]


@dataclass
class Measurements:
    rows: list[dict] = field(default_factory=list)  # one per case (case_row), with the peak memory added
    memory_methods: set[str] = field(default_factory=set)
    different_windows: list[str] = field(default_factory=list)  # "model@HxW" where the peer computes another function


@dataclass
class Ours:
    """Our model of one release on the run's weights: the module and its forward as timed."""

    variant: str
    weights: dict[str, torch.Tensor]  # MiDaS layout, from which the peers are built too
    model: SwinV2DPT
    forward: Callable[[torch.Tensor], torch.Tensor]


def measure_plan(plan: Plan, rate: float, show_row: Callable[[dict], None]) -> Measurements:
    """Every case of the plan, model by model and size by size; show_row(row) as each case is measured."""
    measured = Measurements()
    onnx_folder = tempfile.TemporaryDirectory(prefix="muggled-bench-") if plan.with_onnxruntime else nullcontext()
    with onnx_folder as folder:
        for variant in plan.models():
            weights = random_weights(RELEASES[variant].config, plan.options.seed)
            model = build_ours(weights)
            ours = Ours(variant, weights, model, prepare(model, plan.device, plan.dtype, plan.options.compile, is_ours=True))
            for size_hw in plan.sizes(variant):
                if plan.with_peer and not peer_computes_same_function(RELEASES[variant].config, size_hw):
                    measured.different_windows.append(f"{variant}@{size_hw[0]}x{size_hw[1]}")
                rows, methods = measure_size(plan, ours, size_hw, folder, rate, show_row)
                measured.rows += rows
                measured.memory_methods |= methods
            del ours, model, weights
    return measured


def measure_size(plan: Plan, ours: Ours, size_hw: tuple[int, int], onnx_folder: str | None, rate: float,
                 show_row: Callable[[dict], None]) -> tuple[list[dict], set[str]]:
    """(rows, memory methods) of the cases of one model at one size: the peers built for that size,
    each case timed, then each implementation's memory in a child process."""
    options, config = plan.options, RELEASES[ours.variant].config
    forwards = {"ours": ours.forward}
    if plan.with_peer:
        forwards["peer"] = prepare(build_peer(config, size_hw, ours.weights), plan.device, plan.dtype, options.compile, False)
    onnx_path = None
    if plan.with_onnxruntime:
        print(f"exporting {ours.variant}@{size_hw[0]}x{size_hw[1]} to ONNX for onnxruntime ...", flush=True)
        onnx_path = export_for_peer(ours.model, size_hw, onnx_folder)
        forwards["onnxruntime"] = onnxruntime_forward(onnx_path, options.threads)
    if options.plain:
        forwards["plain"] = lambda image: run_direct(ours.model, ours.forward, image)
    same_function = peer_computes_same_function(config, size_hw)
    cases, rows, methods = plan.cases_at(ours.variant, size_hw), [], set()
    for case in cases:
        image = make_input(case, plan.device, plan.dtype)
        flops = count_flops(ours.model, image)
        seconds, outputs = time_case(forwards, image, plan.device, options.repeats)
        rows.append(case_row(case, flops, rate, seconds, outputs, same_function))
        show_row(rows[-1])
    if not options.no_memory:
        for impl in [name for name in forwards if name != "plain"]:
            peaks, method = measure_memory(impl, ours.variant, size_hw, [case.batch for case in cases], options, onnx_path)
            methods.add(method)
            for row in rows:
                row[f"{impl}_peak_mib"] = peaks.get(row["batch"])
    return rows, methods
