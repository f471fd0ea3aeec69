"""The model a job runs: the checkpoint found, the device and precision chosen, and with
`engine="onnx"` the same weights exported to ONNX Runtime (CPU, float32; export/onnx_runtime.py)."""

import sys
from dataclasses import dataclass
from pathlib import Path

from ..build import load_model
from ..devices import DeviceError, dtype_warning, select_device, select_dtype
from ..formats.weights import demo_note, is_demo, resolve_weights
from ..io.outputs import check_writable_folder

ENGINES = ("torch", "onnx")  # torch: our model; onnx: export/onnx_runtime.OnnxRuntimeEngine


@dataclass
class ModelOptions:
    weights: str | None = None  # None: the one checkpoint in the weights folders, else the demo model
    device: str = "auto"
    dtype: str = "float32"
    engine: str = "torch"
    quiet: bool = False  # no note that the demo model runs


def find_weights(weights, quiet: bool = False) -> Path:
    """--weights, or the checkpoint found (formats.weights.resolve_weights), or the embedded demo model
    (said in one line, only where no checkpoint was named: one named is what the user asked for)."""
    path = resolve_weights(weights)
    if not weights and is_demo(path) and not quiet:
        print(f"note: {demo_note()}", file=sys.stderr)
    return path


def open_model(options: ModelOptions, path=None, device: str | None = None):
    """Our model from `path` (default: find_weights) on the chosen device, in the chosen precision."""
    device = select_device(device or options.device)
    dtype = select_dtype(options.dtype, device)
    if warning := dtype_warning(dtype, device):
        print(f"warning: {warning}", file=sys.stderr)
    return load_model(path or find_weights(options.weights, options.quiet), device=device, dtype=dtype)


def open_engine(options: ModelOptions):
    """What the image and video jobs run: our model, or (engine "onnx") its ONNX Runtime export."""
    if options.engine == "torch":
        return open_model(options)
    if options.device not in ("auto", "cpu"):
        raise DeviceError(f"--engine onnx runs on the CPU; leave out --device {options.device} (or use --engine torch)")
    if options.dtype != "float32":
        raise DeviceError(f"--engine onnx runs in float32; leave out --dtype {options.dtype} (or use --engine torch)")
    from ..export.onnx import ExportError, require_onnx  # the [onnx] extra, only when asked for

    try:
        require_onnx()
    except ExportError:
        raise ExportError("--engine onnx needs ONNX Runtime: pip install 'muggled_swinv2[onnx]'") from None
    from ..export.onnx_runtime import OnnxRuntimeEngine, cache_folder
    from .images import report_error

    folder = cache_folder()
    check_writable_folder(folder / "onnx", "--engine onnx cache folder")
    model = open_model(options, device="cpu")
    return OnnxRuntimeEngine(model, folder, notify=(lambda line: None) if options.quiet else report_error)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["ModelOptions", "find_weights", "open_engine", "open_model"]
