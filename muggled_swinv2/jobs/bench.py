"""Speed and memory benchmark: this project against transformers' DPTForDepthEstimation (SwinV2).

    muggled-swinv2 bench
    muggled-swinv2 bench --models tiny --sizes 256,256x448 --batch-sizes 1,4 --json out.json

How each number is obtained (all in one run, on the same random weights):

- Weights: a seeded random state dict in the MiDaS v3.1 layout (`reference.random_midas_state_dict`),
  loaded into this project's model as a checkpoint file would be and into the peer by
  `reference.transformers_reference`. Both models therefore compute on identical tensors.
- Time: both models live in this process and run the same input; the runs are interleaved (ours,
  peer, peer, ours, ...) after a warm-up, so machine noise hits both alike. The tables give the
  median of `--repeats` runs; the speed-up is peer median / our median.
- FLOPs: counted on our model with `torch.utils.flop_counter` (matmuls, convolutions and the
  attention kernel; 2 per multiply-add) with its Winograd convolutions switched off: the FLOPs of
  the direct computation. The Winograd path does fewer multiplications than that, so "% roof" is
  an effective rate and could in principle pass 100%. The same count serves the peer (it does a
  little more work: its fusion 1x1 convolutions run after the upsampling).
- Roofline: the machine's fp32 GEMM rate is measured in the same run (a 2048^3 matrix product on
  the same threads, best of several, by torch.mm and by oneDNN as our linear layers run it);
  roofline time = FLOPs / rate, and "% roof" = roofline time / median time, the fraction of the
  GEMM-bound floor that a model reaches.
- Memory: each model is run again in a fresh child process (so nothing of the other model, of
  this process's timing loop or of the weight building counts). On CPU the child imports
  everything, notes its RSS, builds the model, frees the building garbage (glibc malloc_trim),
  resets the kernel's RSS high-water mark (/proc/self/clear_refs) and runs one forward per batch
  size; "peak MiB" is that high-water mark minus the RSS after the imports: weights plus the
  forward's working memory. Where the high-water mark cannot be reset, the child's lifetime peak
  (ru_maxrss, which then includes building the weights) is used instead, and the JSON says so. On
  CUDA it is torch.cuda.max_memory_allocated() in the child: weights plus activations.
- ONNX Runtime (`--peers transformers,onnxruntime`, CPU float32 only): our model exported at each
  size (`export/onnx.py`, dynamic batch, checked on export) and run by an ONNX Runtime CPU session
  with the same thread count, interleaved with the others; its max diff is against our output.
- The default plan is tiny@256 and base@384 at batch 1 and 4, large@384 at batch 1 only (batch 4
  takes minutes on 2 cores) and base at the non-square 384x672; --models/--sizes/--batch-sizes
  replace it with their full product.
"""

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace

import torch

from ..errors import UserError
from ..io.atomic import reserve_temp, write_atomically
from ..io.outputs import OutputError, OutputRule
from ..devices import DTYPES, select_device, select_dtype
from ..model import SwinV2DPT, SwinV2DPTConfig
from ..model.config import RELEASED_CONFIGS
from ..model.windows import window_layout
from ..accelerate import accelerate_for_inference, speed_paths_off
from ..accelerate.onednn import linear
from ..reference import native_model, random_midas_state_dict, transformers_reference

VARIANTS = RELEASED_CONFIGS
DEFAULT_NON_SQUARE = ("base", (384, 672))
PEER_MISSING = "the peer needs transformers: pip install -e .[test] (or run with --no-peer)"
PEERS = ("transformers", "onnxruntime")


class BenchError(UserError):
    """Options the benchmark cannot run with (one line)."""


@dataclass(frozen=True)
class Case:
    model: str
    size_hw: tuple[int, int]
    batch: int

    @property
    def label(self) -> str:
        return f"{self.model}@{self.size_hw[0]}x{self.size_hw[1]} b{self.batch}"


# ----------------------------------------------------------------------------- models


def build_peer(config: SwinV2DPTConfig, size_hw: tuple[int, int], midas_sd: dict):
    """transformers' DPTForDepthEstimation for one input size (it fixes its windows at build time)."""
    try:
        return transformers_reference(config, size_hw, midas_sd)
    except ImportError:
        raise BenchError(PEER_MISSING) from None


def prepare(model, device: torch.device, dtype: torch.dtype, compiled: bool, is_ours: bool):
    model = model.to(device)
    if is_ours:
        model.set_dtype(dtype)
    else:
        model.to(dtype)
    forward = (lambda x: model(x)) if is_ours else (lambda x: model(pixel_values=x).predicted_depth)
    # Static shapes: each stage's window attention runs at its own shape, and with dynamic shapes
    # torch 2.11's inductor generated code naming an undefined size on CUDA (NameError: s52).
    return torch.compile(forward, dynamic=False) if compiled else forward


def onnxruntime_forward(path, threads: int):
    """A forward (torch tensor in and out) that runs an exported file in an ONNX Runtime CPU session."""
    from ..export.onnx import session

    runner = session(path, threads)
    return lambda image: torch.from_numpy(runner.run(["inverse_depth"], {"image": image.numpy()})[0])


def export_for_peer(model: SwinV2DPT, size_hw, folder) -> str:
    """Our model as an ONNX file (dynamic batch) in `folder`, for the onnxruntime peer."""
    from ..export.onnx import export_onnx

    path = os.path.join(folder, f"bench-{size_hw[0]}x{size_hw[1]}.onnx")
    export_onnx(model, path, size_hw=size_hw, batch="dynamic", overwrite=True)
    return path


def run_direct(model: SwinV2DPT, forward, image: torch.Tensor) -> torch.Tensor:
    """Our forward with every 3x3 convolution computed the plain way."""
    with speed_paths_off(model, "winograd"):
        return forward(image)


def make_input(case: Case, device, dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(case.batch, 3, *case.size_hw, generator=generator) * 2 - 1
    return image.to(device, dtype)


# ----------------------------------------------------------------------------- measuring


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


def relative_difference(ours: torch.Tensor, peer: torch.Tensor) -> float:
    ours, peer = ours.float(), peer.float()
    value_range = (peer.max() - peer.min()).item()
    return (ours - peer).abs().max().item() / value_range if value_range > 0 else math.nan


def time_case(case: Case, forwards: dict, image, device, repeats: int) -> tuple[dict, dict]:
    """Median seconds per implementation (runs interleaved), and each one's output."""
    outputs = {name: timed(forward, image, device)[1] for name, forward in forwards.items()}  # warm-up
    times = {name: [] for name in forwards}
    names = list(forwards)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            times[name].append(timed(forwards[name], image, device)[0])
    return {name: statistics.median(values) for name, values in times.items()}, outputs


# ----------------------------------------------------------------------------- memory (child processes)


def _rss_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Free unused heap, then make the RSS high-water mark the current RSS. False where unsupported."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def memory_child(spec: dict) -> dict:
    """Runs in a fresh process: peak memory of one implementation at one size, per batch size."""
    import resource

    device, dtype = torch.device(spec["device"]), DTYPES[spec["dtype"]]
    torch.set_num_threads(spec["threads"])
    config, size_hw, is_ours = VARIANTS[spec["model"]], tuple(spec["size_hw"]), spec["impl"] == "ours"
    if spec["impl"] == "onnxruntime":
        import onnxruntime  # noqa: F401  (its import is not the model's memory)
    elif not is_ours:
        import transformers  # noqa: F401
    rss_after_imports = _rss_bytes("VmRSS") if device.type == "cpu" else 0
    if spec["impl"] == "onnxruntime":
        forward = onnxruntime_forward(spec["onnx_path"], spec["threads"])
    else:
        midas_sd = random_midas_state_dict(config, spec["seed"])
        model = accelerate_for_inference(native_model(midas_sd)) if is_ours else build_peer(config, size_hw, midas_sd)
        del midas_sd
        forward = prepare(model, device, dtype, spec["compile"], is_ours)
    peaks, method = {}, "cuda max_memory_allocated"
    for batch in sorted(spec["batches"]):
        image = make_input(Case(spec["model"], size_hw, batch), device, dtype)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            timed(forward, image, device)
            peak = torch.cuda.max_memory_allocated(device)
        else:
            if _reset_peak_rss():
                method = "RSS high-water mark over the forward (reset before it), minus RSS after imports"
                timed(forward, image, device)
                peak = _rss_bytes("VmHWM")
            else:
                method = "lifetime peak RSS (ru_maxrss: includes building the weights), minus RSS after imports"
                timed(forward, image, device)
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            peak -= rss_after_imports
        peaks[batch] = peak / 2**20
        del image
    return {"peak_mib": peaks, "method": method}


def measure_memory(impl: str, model: str, size_hw, batches, args, onnx_path=None) -> tuple[dict, str]:
    spec = dict(
        impl=impl, model=model, size_hw=list(size_hw), batches=list(batches), device=args.device,
        dtype=args.dtype, threads=args.threads, compile=args.compile, seed=args.seed, onnx_path=onnx_path,
    )
    command = [sys.executable, "-m", "muggled_swinv2.jobs.bench", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  memory of {impl} {model}@{size_hw}: child failed: {tail}", file=sys.stderr)
        return {}, "failed"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {int(batch): mib for batch, mib in result["peak_mib"].items()}, result["method"]


# ----------------------------------------------------------------------------- plan and report


def parse_size(text: str, model: str) -> tuple[int, int]:
    """'native', 'H' (square) or 'HxW' -> (H, W), positive multiples of the model's stride."""
    if text == "native":
        return (VARIANTS[model].native_size,) * 2
    height, _, width = text.partition("x")
    try:
        size_hw = int(height), int(width or height)
    except ValueError:
        raise BenchError(f"--sizes {text!r}: expected native, H or HxW") from None
    stride = VARIANTS[model].stride
    if min(size_hw) < 1 or size_hw[0] % stride or size_hw[1] % stride:
        raise BenchError(f"--sizes {text}: {model} needs positive multiples of {stride}")
    return size_hw


def make_plan(args) -> list[Case]:
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = [name for name in models if name not in VARIANTS]
    if unknown or not models:
        raise BenchError(f"unknown model {','.join(unknown) or args.models!r}; choose from {','.join(VARIANTS)}")
    batches = args.batch_sizes
    plan = []
    for model in models:
        if args.sizes:
            sizes = [parse_size(text.strip(), model) for text in args.sizes.split(",") if text.strip()]
        else:
            sizes = [parse_size("native", model)] + [size for name, size in [DEFAULT_NON_SQUARE] if name == model]
        for size_hw in sizes:
            is_default_native = not args.sizes and size_hw == parse_size("native", model)
            default_batches = [1, 4] if is_default_native and model != "large" else [1]
            plan.extend(Case(model, size_hw, batch) for batch in batches or default_batches)
    return plan


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


@dataclass(frozen=True)
class BenchOptions:
    """What to measure (the `bench` command's options; see the module docstring)."""

    models: str = ",".join(VARIANTS)  # comma-separated
    sizes: str | None = None  # comma-separated HxW, H or 'native'; None: the default plan
    batch_sizes: list[int] | None = None  # None: 1,4 (large: 1)
    repeats: int = 3
    threads: int = torch.get_num_threads()
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool = False
    peers: str = "transformers"  # comma-separated: transformers, onnxruntime
    no_peer: bool = False
    plain: bool = False  # also time our model with Winograd off
    no_memory: bool = False
    seed: int = 0
    json: str | None = None
    overwrite: bool = False  # replace a --json file this tool wrote


def run_bench(args: BenchOptions) -> int:
    """Measure, print the table, write args.json; 0. Options that cannot be honoured are refused
    (a UserError, one line) before any measuring: --json that may not be written (io/outputs.py),
    a device, peer, model or size that cannot run."""
    if args.json:
        OutputRule(args.overwrite).check(args.json, "--json")
    device = select_device(args.device)
    dtype = select_dtype(args.dtype, device)
    args = replace(args, device=str(device))  # recorded in the JSON settings as resolved
    torch.set_num_threads(args.threads)
    peers = [] if args.no_peer else [name.strip() for name in args.peers.split(",") if name.strip()]
    unknown = [name for name in peers if name not in PEERS]
    if unknown:
        raise BenchError(f"--peers {','.join(unknown)}: choose from {','.join(PEERS)}")
    args = replace(args, no_peer="transformers" not in peers)
    if not args.no_peer:
        try:
            import transformers  # noqa: F401
        except ImportError:
            raise BenchError(PEER_MISSING) from None
    with_ort = "onnxruntime" in peers
    if with_ort:
        from ..export.onnx import ExportError, require_onnx

        try:
            require_onnx()
        except ExportError as error:
            raise BenchError(f"the onnxruntime peer: {error}") from None
        if device.type != "cpu" or args.dtype != "float32" or args.compile:
            raise BenchError("the onnxruntime peer runs on CPU in float32, uncompiled")
    onnx_folder = tempfile.TemporaryDirectory(prefix="muggled-bench-") if with_ort else None
    plan = make_plan(args)
    machine = machine_description(device, args.threads)
    print(f"machine: {machine}", flush=True)
    if args.json:  # fail now, not after minutes of measuring
        try:
            reserve_temp(args.json).unlink()
        except OSError as error:
            raise OutputError(f"--json {args.json}: cannot write there ({error.strerror or error})") from None
    rate = gemm_rate(device, dtype)
    print(f"GEMM rate ({args.dtype}, 2048^3): {rate / 1e9:.1f} GFLOP/s", flush=True)

    rows, memory_methods, different_windows = [], set(), []
    for model_name in dict.fromkeys(case.model for case in plan):
        config = VARIANTS[model_name]
        midas_sd = random_midas_state_dict(config, args.seed)
        ours_model = accelerate_for_inference(native_model(midas_sd))
        ours = prepare(ours_model, device, dtype, args.compile, is_ours=True)
        for size_hw in dict.fromkeys(case.size_hw for case in plan if case.model == model_name):
            cases = [case for case in plan if case.model == model_name and case.size_hw == size_hw]
            forwards = {"ours": ours}
            same_function = peer_computes_same_function(config, size_hw)
            if not args.no_peer and not same_function:
                different_windows.append(f"{model_name}@{size_hw[0]}x{size_hw[1]}")
            if not args.no_peer:
                forwards["peer"] = prepare(build_peer(config, size_hw, midas_sd), device, dtype, args.compile, False)
            onnx_path = None
            if with_ort:
                print(f"exporting {model_name}@{size_hw[0]}x{size_hw[1]} to ONNX for onnxruntime ...", flush=True)
                onnx_path = export_for_peer(ours_model, size_hw, onnx_folder.name)
                forwards["onnxruntime"] = onnxruntime_forward(onnx_path, args.threads)
            if args.plain:
                forwards["plain"] = lambda image, model=ours_model, forward=ours: run_direct(model, forward, image)
            for case in cases:
                image = make_input(case, device, dtype)
                flops = count_flops(ours_model, image)
                seconds, outputs = time_case(case, forwards, image, device, args.repeats)
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
                rows.append(row)
                print(format_table([row], "peer" in seconds).splitlines()[-1], flush=True)
            if not args.no_memory:
                for impl in [name for name in forwards if name != "plain"]:
                    peaks, method = measure_memory(impl, model_name, size_hw, [case.batch for case in cases], args, onnx_path)
                    memory_methods.add(method)
                    for row in rows:
                        if row["model"] == model_name and tuple(row["size_hw"]) == size_hw:
                            row[f"{impl}_peak_mib"] = peaks.get(row["batch"])
            del forwards
        del ours, ours_model, midas_sd

    # Measured again at the end, keeping the best: a busy moment at the start must not make the
    # roofline look slower than the machine is (which would flatter both implementations).
    rate = max(rate, gemm_rate(device, dtype))
    if onnx_folder is not None:
        onnx_folder.cleanup()
    for row in rows:
        row["ours_roofline"] = row["gflop"] * 1e9 / rate / row["ours_s"]
        if row.get("onnxruntime_s") is not None:
            row["onnxruntime_roofline"] = row["gflop"] * 1e9 / rate / row["onnxruntime_s"]
        if row["peer_s"] is not None:
            row["peer_roofline"] = row["gflop"] * 1e9 / rate / row["peer_s"]
    print()
    print(f"{machine}; GEMM {rate / 1e9:.1f} GFLOP/s; {args.dtype}{', compiled' if args.compile else ''}; "
          f"median of {args.repeats}")
    print(format_table(rows, not args.no_peer))
    if args.dtype == "float16":
        print("float16: our SwinV2 encoder runs in float32 (it overflows float16, as MiDaS warns), the peer's "
              "in float16: compare its finiteness too")
    if different_windows:
        print(f"max diff '-' ({', '.join(different_windows)}): the peer lays out windows differently at that size "
              "(the height's window on both axes, unmasked padding), so it computes another function there")
    if args.json:
        settings = {key: value for key, value in asdict(args).items() if key not in ("json", "overwrite")}
        report = dict(
            machine=machine, gemm_gflops=rate / 1e9, settings=settings,
            memory_method=sorted(memory_methods), peer_computes_another_function=different_windows, results=rows,
        )
        write_atomically(args.json, lambda out: out.write(json.dumps(report, indent=2).encode()))
        OutputRule().record(args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":  # a memory child (measure_memory): the spec as its one argument
    try:
        print(json.dumps(memory_child(json.loads(sys.argv[1]))))
    except UserError as error:
        sys.exit(f"error: {error}")
