"""Argument types and the option groups that several commands share (each defined once).

Only light modules here, so that `--help` answers at once: the choices that PyTorch-importing
modules own are repeated below, and tests/test_package.py checks that they match their owners.
"""

import argparse
import sys

from ..errors import UserError
from ..io.colormaps import COLORMAPS, parse_range

RAW_FORMATS = ("npy", "pfm", "png16", "tiff", "ply", "mesh", "metric", "metric-png16")  # jobs.images.RAW_FORMATS
DTYPE_NAMES = ("float32", "float16", "bfloat16")  # devices.DTYPES
CONVERT_TARGETS = ("muggled", "hf")  # formats.convert.TARGETS
ENGINES = ("torch", "onnx")  # jobs.models.ENGINES
MAX_NETWORK_SIDE = 2**20  # predict.MAX_NETWORK_SIDE
LARGEST_WHOLE_NUMBER = 2**63 - 1  # what PyTorch's, NumPy's and OpenCV's integers (int64) hold


EXIT_FAILED = 1  # some inputs failed
EXIT_USAGE = UserError.exit_code  # nothing could be done (a refusal, errors.py)
EXIT_INTERRUPTED = 130


class UsageError(UserError):
    """A bad argument, reported as one line."""


def empty_argument(argv: list[str]) -> str | None:
    """The one-line refusal of an empty argument ("" names no file: as a path it would mean the
    current folder, `image ""` would process all of it), or None. Every argument of every command
    is checked: none takes an empty value."""
    for index, argument in enumerate(argv):
        if argument.startswith("--") and argument.endswith("=") and len(argument) > 3:
            return f"{argument[:-1]}: an empty value names no file, folder or value; give one"
        if argument == "":
            after = f" after {argv[index - 1]}" if index else ""
            return f"an empty argument{after} names no file, folder or value; give one"
    return None


def shown(text: str) -> str:
    """An argument as an error line quotes it: a very long one cut short."""
    return text if len(text) <= 24 else f"{text[:12]}...{text[-4:]} ({len(text)} characters)"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    if value > LARGEST_WHOLE_NUMBER:
        raise argparse.ArgumentTypeError(f"must be at most {LARGEST_WHOLE_NUMBER}, got {shown(text)}")
    return value


def network_side(text: str) -> int:
    """--size: the long side fed to the network, in pixels (the memory check says what fits)."""
    if int(text) > MAX_NETWORK_SIDE:
        raise argparse.ArgumentTypeError(f"the network takes sides of at most {MAX_NETWORK_SIDE} pixels, got {shown(text)}")
    return positive_int(text)


def port_number(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a TCP port is 1-65535, got {text}")
    return value


def count_int(text: str) -> int:
    """A whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {shown(text)}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}")
    if value > LARGEST_WHOLE_NUMBER:
        raise argparse.ArgumentTypeError(f"must be at most {LARGEST_WHOLE_NUMBER}, got {shown(text)}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {shown(text)}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {shown(text)}")
    return value


def raw_formats(text: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in formats if name not in RAW_FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(f"unknown format {','.join(unknown) or text!r}; choose from {','.join(RAW_FORMATS)}")
    return formats


def value_range(text: str):
    try:
        return parse_range(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def depth_range(text: str) -> tuple[float, float]:
    try:
        near, far = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NEAR,FAR, e.g. 1,10, got {text!r}") from None
    if not 0 < near < far < float("inf"):
        raise argparse.ArgumentTypeError(f"expected 0 < NEAR < FAR, got {text!r}")
    return near, far


def field_of_view(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 180:
        raise argparse.ArgumentTypeError(f"expected degrees between 0 and 180, got {text!r}")
    return value


# ----------------------------------------------------------------------------- shared option groups


def add_model_arguments(parser, engine: bool = False):
    """--weights, --device, --dtype (and --engine where an ONNX Runtime export can run instead)."""
    parser.add_argument("--weights", "-w", help="checkpoint file (default: the checkpoint in $MUGGLED_SWINV2_WEIGHTS, "
                        "./weights or the cache folder ~/.cache/muggled_swinv2, looked for in that order; else the demo model)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=DTYPE_NAMES, help="precision (float16: CUDA only)")
    if engine:
        parser.add_argument("--engine", default="torch", choices=ENGINES,
                            help="torch (default), or onnx: the same network exported to ONNX Runtime, CPU float32 "
                                 "(the [onnx] extra; exported once per network size into a cache folder, see docs/export-and-3d.md)")


def add_preprocessing_arguments(parser):
    """--square or --size: how an image is fed to the network."""
    preprocessing = parser.add_mutually_exclusive_group()
    preprocessing.add_argument("--square", action="store_true", help="MiDaS's exact pipeline: squash to the native square")
    preprocessing.add_argument("--size", type=network_side, help="long side fed to the network (default: native size)")


def add_overwrite_argument(parser, what: str | None = None):
    """--overwrite: the output rule's permission (io/outputs.py); `what` names a single output."""
    replaced = f"{what} if it exists and this tool wrote it" if what else "existing outputs that this tool wrote"
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {replaced} (never an input, never anyone else's file)")


def add_quiet_argument(parser, help: str = "no progress bar or summary (errors still shown)"):
    parser.add_argument("--quiet", "-q", action="store_true", help=help)


def add_prediction_arguments(parser, command: str = "image"):
    """The options of the commands that write depth maps (image, video), with `command`'s help."""
    gray = "gray writes a 1-channel PNG" if command == "image" else "gray: grey levels"
    parser.add_argument("--colormap", default="inferno", choices=COLORMAPS,
                        help=f"colours of the depth map, bright = near (default: inferno; {gray})")
    parser.add_argument("--side-by-side", action="store_true", help="put the picture left of its depth")
    add_preprocessing_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=1,
                        help=f"{'images' if command == 'image' else 'frames'} per forward pass")
    parser.add_argument("--no-memory-check", action="store_true",
                        help="run even where the memory estimate says it will not fit (default: refuse, naming "
                             "the largest --size that fits)")
    add_overwrite_argument(parser)
    add_quiet_argument(parser)
    add_model_arguments(parser, engine=True)


def size_option_names(batch: str = "--batch-size"):
    """The memory check's settings as this command line names them (memory.SizeOptionNames)."""
    from ..memory import SizeOptionNames

    return SizeOptionNames(size="--size", batch=batch, skip_check="--no-memory-check")


def model_options(args):
    """The model options of parsed arguments (add_model_arguments)."""
    from ..jobs.models import ModelOptions

    return ModelOptions(weights=args.weights, device=args.device, dtype=args.dtype,
                        engine=getattr(args, "engine", "torch"), quiet=getattr(args, "quiet", False))


def report_summary(line: str, interrupted: bool, quiet: bool, failed: bool = False) -> int:
    """Print a job's summary line (also with --quiet after Ctrl-C); the exit code it calls for."""
    if not quiet or interrupted:
        print(line, file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else 0
