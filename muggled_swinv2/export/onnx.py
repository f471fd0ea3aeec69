"""The network as an ONNX file, checked by ONNX Runtime before it is kept.

    muggled-swinv2 export weights/dpt_swin2_tiny_256.pt tiny.onnx [--size HxW] [--batch N|dynamic]

The graph has one input `image`, (B, 3, H, W) float32 RGB normalised as `model(x)` expects
((x - 0.5) / 0.5), and one output `inverse_depth`, (B, H, W) float32, at one fixed H x W (SwinV2's
windows, shifts and masks depend on the size) and a fixed or dynamic batch.

How: torch.export traces the plain model (model/: MatMul/Softmax attention, direct convolutions;
an accelerated model's speed paths are switched off, see accelerate/). The window masks and relative-position indices are
constants of that size; the ONNX optimiser folds the position-bias MLP (a function of weights
only) into one small table per block. The file is written to a temp file, run by ONNX Runtime on
a test input and compared with PyTorch, and only then renamed into place.

Needs the `[onnx]` extra (onnx, onnxruntime, onnxscript); nothing else in the package imports this.
"""

import json
import logging
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import UserError, first_line
from ..io.atomic import publish, reserve_temp
from ..accelerate import speed_paths_off
from ..memory import SizeOptionNames, memory_refusal
from ..predict import MAX_NETWORK_SIDE, fits_network, parse_size_hw

FORMAT_NAME = "muggled_swinv2-onnx"
FORMAT_VERSION = "1"
NORMALISATION = "RGB scaled to [0, 1], then (x - 0.5) / 0.5; NCHW float32"
DEFAULT_OPSET = 18
# What --opset takes. torch.onnx writes opset 18 and newer; asked for 17 it writes 18 after a failed
# conversion, and onnx's version converter turns the optimised graph into an invalid opset-17 one.
OPSETS = range(18, 24)
DTYPES = ("float32", "float16")
TOLERANCE = {"float32": 1e-4, "float16": 2e-2}  # max |ONNX - PyTorch| / PyTorch output range
MISSING_EXTRA = "needs the onnx extra: pip install 'muggled_swinv2[onnx]'"
# How the memory refusal names export_onnx's settings for a Python caller (the command line passes its flags).
PARAMETER_NAMES = SizeOptionNames(size="size_hw", batch="batch", skip_check="memory_check=False")


class ExportError(UserError):
    """An export that cannot be done or did not check out; the message is one line."""


def require_onnx():
    """(onnx, onnxruntime), or ExportError naming the extra to install."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  (torch.onnx.export's translator)
    except ImportError as error:
        raise ExportError(f"{error.name or 'onnx'} is not installed; ONNX {MISSING_EXTRA}") from None
    return onnx, onnxruntime


@dataclass
class ExportReport:
    path: Path
    release_name: str  # config.release_name: 'tiny-256' or 'custom'
    size_hw: tuple[int, int]
    batch: int | str
    opset: int
    dtype: str
    max_diff: float  # of the check, relative to the output range
    seconds: float
    bytes: int

    def lines(self) -> list[str]:
        height, width = self.size_hw
        return [
            f"{self.path}: ONNX opset {self.opset}, {self.release_name}, image (B={self.batch}, 3, {height}, {width}) "
            f"-> inverse_depth, {self.dtype}, {self.bytes / 2**20:.1f} MiB",
            f"  checked in ONNX Runtime: max difference {self.max_diff:.1e} of the output range "
            f"(limit {TOLERANCE[self.dtype]:.0e}); {self.seconds:.1f} s",
        ]


def parse_export_size(text: str) -> tuple[int, int]:
    """--size 'H' or 'HxW' -> (H, W); ExportError if it is not that ('64x' is not), or if a side is
    beyond what the network takes (before any model is loaded)."""
    if (size_hw := parse_size_hw(text)) is None:
        shown = text if len(text) <= 24 else f"{text[:12]}...{text[-4:]}"
        raise ExportError(f"--size {shown!r}: expected H or HxW, e.g. 256 or 384x672")
    check_side_bound(size_hw)
    return size_hw


def shown_size(size_hw) -> str:
    """'HxW' for a message, a side too long to print given as its number of digits."""
    return "x".join(side if len(side := str(int(value))) <= 16 else f"({len(side)} digits)" for value in size_hw)


def check_side_bound(size_hw) -> None:
    if max(size_hw) > MAX_NETWORK_SIDE:
        raise ExportError(f"--size {shown_size(size_hw)}: the network takes sides of at most {MAX_NETWORK_SIDE} pixels")


def check_export_size(size_hw, stride: int) -> tuple[int, int]:
    """(H, W) as ints: positive multiples of `stride`, at most predict.MAX_NETWORK_SIDE (ExportError)."""
    if not fits_network(size_hw, stride):
        raise ExportError(f"--size {shown_size(size_hw)}: height and width must be positive multiples of {stride}")
    check_side_bound(size_hw)
    return tuple(int(side) for side in size_hw)


def check_batch(batch) -> int | str:
    if batch == "dynamic":
        return batch
    try:
        value = int(batch)
    except (TypeError, ValueError):
        value = 0
    if value < 1 or isinstance(batch, bool):
        raise ExportError(f"--batch {batch}: expected a positive integer or 'dynamic'")
    return value


def metadata(model, size_hw, batch, opset: int, dtype: str) -> dict[str, str]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.config.to_dict()),
        "input_size": f"{size_hw[0]}x{size_hw[1]}",
        "batch": str(batch),
        "normalisation": NORMALISATION,
        "input": "image",
        "output": "inverse_depth (B, H, W) float32, relative inverse depth: bigger is nearer",
        "opset": str(opset),
        "dtype": dtype,
        "written_by": f"muggled_swinv2 {__version__}",
    }


def graph_opset(proto) -> int:
    """The opset of the default ONNX domain that a model imports (0: none)."""
    return max((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), default=0)


def test_input(batch: int, size_hw, seed: int = 0) -> np.ndarray:
    generator = np.random.default_rng(seed)
    return generator.uniform(-1, 1, size=(batch, 3, *size_hw)).astype(np.float32)


def relative_difference(ours, reference) -> float:
    """The largest |ours - reference| as a fraction of the reference's range (the plain difference
    when the reference is constant), in float64: how the export's check and `bench` compare two
    outputs. numpy arrays or tensors of any dtype and device."""
    ours, reference = (torch.as_tensor(values).detach().double().cpu() for values in (ours, reference))
    value_range = float(reference.max() - reference.min())
    difference = float((ours - reference).abs().max())
    return difference / value_range if value_range > 0 else difference


@contextmanager
def exporter_quiet():
    """Inside this block, the exporter's own chatter is dropped: its log lines about optional
    packages (torchvision's operators) and its deprecation warnings, which are about PyTorch's
    code, not the user's; its errors still raise."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def trace(model, size_hw, batch, opset: int):
    """torch.export + torch.onnx: the ONNX ModelProto of `model` at this size and batch."""
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},) if batch == "dynamic" else None
    # Autograd on, speed paths off: the plain model (see the module doc); nothing is trained. Also when called
    # in inference mode (as by the --engine onnx jobs): the example must not be an inference tensor.
    with torch.inference_mode(False), torch.enable_grad(), speed_paths_off(model), exporter_quiet():
        example = torch.from_numpy(test_input(2 if batch == "dynamic" else batch, size_hw))
        program = torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes, strict=False)
        onnx_program = torch.onnx.export(
            program, input_names=["image"], output_names=["inverse_depth"], opset_version=opset,
            dynamo=True, optimize=True, verbose=False,
        )
    proto = onnx_program.model_proto
    if graph_opset(proto) != opset:  # never record an opset the file does not hold
        raise ExportError(f"--opset {opset}: the exporter wrote opset {graph_opset(proto)} instead; "
                          f"choose from {OPSETS[0]} to {OPSETS[-1]}")
    if batch == "dynamic":  # name the batch dimension for readers (the tracer calls it s0, s1, ...)
        for value in (*proto.graph.input, *proto.graph.output):
            value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return proto


def session(path, threads: int | None = None):
    """An ONNX Runtime CPU session for an exported file."""
    _, onnxruntime = require_onnx()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_onnx(model, path, size_hw=None, batch=1, opset: int = DEFAULT_OPSET, dtype: str = "float32",
                overwrite: bool = False, memory_check: bool = True,
                publish_with: Callable[[Path, Path], None] = publish,
                memory_names: SizeOptionNames = PARAMETER_NAMES) -> ExportReport:
    """Write `model` (a SwinV2DPT) as an ONNX file at `path`, checked by ONNX Runtime first.

    size_hw: (H, W) multiples of 32 (default: the native square); batch: a positive int or
    "dynamic"; memory_check: refuse a size whose check (a forward pass in PyTorch and one in ONNX
    Runtime) would not fit in memory, as `image --size` does (memory.py), naming the settings as
    `memory_names` says. Raises ExportError (one
    line) and leaves no file when anything fails; the target's folder is checked before any work.
    publish_with(temp, path) moves the finished file into place (the `export` command passes the
    output rule's, io/outputs.py, checked again at the move).
    """
    onnx, _ = require_onnx()
    path = Path(path)
    size_hw = check_export_size(tuple(size_hw or (model.config.native_size,) * 2), model.config.stride)
    batch = check_batch(batch)
    if dtype not in DTYPES:
        raise ExportError(f"--dtype {dtype}: choose from {', '.join(DTYPES)}")
    if not isinstance(opset, int) or opset not in OPSETS:
        raise ExportError(f"--opset {opset}: choose from {OPSETS[0]} to {OPSETS[-1]}")
    if path.exists() and not overwrite:
        raise ExportError(f"{path}: exists; pass --overwrite to replace it")
    if path.is_dir():
        raise ExportError(f"{path}: is a folder; give the .onnx file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # as for every output: its missing folders are made
    except OSError as error:
        raise ExportError(f"{path.parent}: cannot create the folder ({error.strerror or error})") from None
    check_batch_size = 2 if batch == "dynamic" else batch
    # No photo here (image_hw 1x1): the estimate is the network's, and its advice a square --size.
    if memory_check and (refusal := memory_refusal(model.config, size_hw, (1, 1), memory_names, check_batch_size)):
        raise ExportError(f"{memory_names.size} {size_hw[0]}x{size_hw[1]}: the export's check {refusal}")
    try:
        temp = reserve_temp(path)  # before minutes of tracing: a folder we cannot write in fails now
    except OSError as error:
        raise ExportError(f"{path}: cannot write ({error.strerror or error})") from None
    started = time.perf_counter()
    try:
        max_diff = export_into(temp, model, size_hw, batch, opset, dtype)
        publish_with(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise ExportError(f"{path}: cannot write ({error.strerror or error})") from None
    except ExportError as error:
        temp.unlink(missing_ok=True)
        raise ExportError(f"{path}: {error}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return ExportReport(
        path=path, release_name=model.config.release_name, size_hw=size_hw, batch=batch, opset=opset, dtype=dtype,
        max_diff=max_diff, seconds=time.perf_counter() - started, bytes=path.stat().st_size,
    )


def export_into(temp: Path, model, size_hw, batch, opset: int, dtype: str) -> float:
    """Trace, save into `temp` and check in ONNX Runtime: export_onnx's work, its arguments checked.
    Returns the check's difference (relative to the output range); ExportError with the reason alone."""
    onnx, _ = require_onnx()
    model = model.eval()
    weights_dtype = next(model.parameters()).dtype
    if dtype == "float16":
        model.set_dtype(torch.float16)  # the decoder in float16, the encoder stays float32 (see set_dtype)
    try:
        image = test_input(2 if batch == "dynamic" else batch, size_hw, seed=1)
        with torch.inference_mode():  # also makes the window tables of this size: constants of the trace
            expected = model(torch.from_numpy(image)).numpy()
        proto = trace(model, size_hw, batch, opset)
    except ExportError:
        raise
    except Exception as error:  # noqa: BLE001  (the exporter's errors are many and long)
        raise ExportError(f"the model could not be exported ({first_line(error, 300)})") from None
    finally:
        if dtype == "float16":
            model.set_dtype(weights_dtype)
    del proto.metadata_props[:]
    for key, value in metadata(model, size_hw, batch, graph_opset(proto), dtype).items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = "SwinV2-DPT (MiDaS v3.1) monocular depth; exported by muggled_swinv2"
    onnx.save(proto, str(temp))
    del proto
    try:
        (result,) = session(temp).run(["inverse_depth"], {"image": image})
    except Exception as error:  # noqa: BLE001
        raise ExportError(f"ONNX Runtime cannot run the exported graph ({first_line(error, 300)}); nothing written") from None
    if result.shape != expected.shape:
        raise ExportError(f"the exported graph gives shape {result.shape}, PyTorch {expected.shape}; nothing written")
    max_diff = relative_difference(result, expected)
    if not max_diff <= TOLERANCE[dtype]:
        raise ExportError(
            f"the exported graph differs from PyTorch by {max_diff:.1e} of the output range "
            f"(limit {TOLERANCE[dtype]:.0e}); nothing written"
        )
    return max_diff


def read_metadata(path) -> dict[str, str]:
    """The metadata of an ONNX file (without loading external weights), its opset read from the
    graph itself; ExportError if it is not an ONNX model (empty, truncated, another kind of file)."""
    onnx, _ = require_onnx()
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ExportError(f"{path}: an empty file, not an ONNX model")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001  (protobuf's decode errors)
        raise ExportError(f"{path}: not a readable ONNX file ({first_line(error)})") from None
    # Protobuf decodes many byte strings as some message: a model has a version, an opset and a graph.
    if proto.ir_version < 1 or not graph_opset(proto) or not proto.graph.node or not proto.graph.output:
        raise ExportError(f"{path}: not an ONNX model (no IR version, opset or graph in it)")
    values = {entry.key: entry.value for entry in proto.metadata_props}
    values["opset"] = str(graph_opset(proto))
    values["_inputs"] = ", ".join(f"{value.name} {shape_text(value)}" for value in proto.graph.input)
    values["_outputs"] = ", ".join(f"{value.name} {shape_text(value)}" for value in proto.graph.output)
    return values


def shape_text(value) -> str:
    dims = value.type.tensor_type.shape.dim
    return "(" + ", ".join(dim.dim_param or str(dim.dim_value) for dim in dims) + ")"


def describe(path) -> list[tuple[str, str]]:
    """Rows for `info` on an ONNX file."""
    values = read_metadata(path)
    rows = [("file", str(path))]
    if values.get("format") != FORMAT_NAME:
        rows += [("format", "ONNX (not written by muggled_swinv2: no model metadata)"), ("opset", values["opset"]),
                 ("inputs", values["_inputs"]), ("outputs", values["_outputs"])]
        return rows
    try:
        config = json.loads(values["config"])
        shape = [", ".join(map(str, config[key])) for key in ("embed_dims", "depths", "num_heads")]
    except (KeyError, TypeError, ValueError):
        raise ExportError(f"{path}: its {FORMAT_NAME} metadata has no readable model configuration") from None
    rows += [
        ("format", f"{FORMAT_NAME} v{values.get('format_version', '?')} (ONNX opset {values['opset']})"),
        ("variant", config.get("variant", "custom")),
        ("widths", shape[0]),
        ("depths", shape[1]),
        ("heads", shape[2]),
        ("window", str(config.get("window_size", "?"))),
        ("native size", "{0}x{0}".format(config.get("native_size", "?"))),
        ("input size", values.get("input_size", "?")),
        ("batch", values.get("batch", "?")),
        ("dtype", values.get("dtype", "?")),
        ("normalisation", values.get("normalisation", "?")),
        ("inputs", values["_inputs"]),
        ("outputs", values["_outputs"]),
        ("written by", values.get("written_by", "?")),
    ]
    return rows


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["ExportError", "FORMAT_NAME", "FORMAT_VERSION", "describe", "export_onnx", "parse_export_size",
           "read_metadata", "require_onnx", "session"]
