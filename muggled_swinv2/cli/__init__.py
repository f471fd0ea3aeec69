"""Command line: `muggled-swinv2 <command> ...` (also `python -m muggled_swinv2`).

Each command is a module of this package: `add_arguments(parser)` and `run(args)`, which turns the
arguments into the options of a job and calls it. A command's module, and what its arguments need,
are imported only when that command is parsed: `--help` answers at once, and PyTorch is loaded
only by the commands that run it (tests/test_package.py checks it). User errors end with a
one-line message on stderr and a non-zero exit code, never a traceback.
"""

import argparse
import gc
import importlib
import sys

from .. import __version__
from ..errors import UserError, os_error_line
from .arguments import (CONVERT_TARGETS, DTYPE_NAMES, ENGINES, EXIT_INTERRUPTED, EXIT_USAGE, RAW_FORMATS, UsageError,
                        empty_argument, positive_int)

# command -> (module of this package, one line for `muggled-swinv2 --help`)
COMMANDS = {
    "image": ("image", "depth maps for image files, folders or glob patterns"),
    "video": ("video", "depth video of a video file"),
    "stereo": ("stereo", "stereo pictures from one eye: side by side, anaglyph, VR180, wiggle, pairs"),
    "info": ("info", "describe a checkpoint or an exported .onnx file"),
    "convert": ("convert", "convert a checkpoint to our safetensors format (or to Hugging Face's)"),
    "export": ("export", "export the network to ONNX, checked by ONNX Runtime ([onnx] extra)"),
    "train": ("train", "train a depth model: from scratch (--config) or fine-tuning (--init)"),
    "eval": ("evaluate", "AbsRel and delta1 of a model on depth ground truth (the MiDaS protocol)"),
    "bench": ("bench", "speed and memory benchmark: this project against transformers"),
    "serve": ("serve", "local web app: drop a picture or a video, get its depth (needs the [web] extra)"),
    "download": ("download", "fetch an official MiDaS v3.1 checkpoint into the cache folder (~/.cache/muggled_swinv2), where every command finds it"),
}

__all__ = ["COMMANDS", "CONVERT_TARGETS", "DTYPE_NAMES", "ENGINES", "RAW_FORMATS", "UsageError", "build_parser", "main",
           "positive_int", "run_and_exit"]


class CommandChoice(argparse._SubParsersAction):
    """The sub-command argument: the chosen command's module adds its arguments just before they
    are parsed, so that no other command's imports are paid for."""

    def __call__(self, parser, namespace, values, option_string=None):
        name = values[0]
        if name in COMMANDS and not getattr(self.choices[name], "ready", False):
            module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
            module.add_arguments(self.choices[name])
            self.choices[name].set_defaults(run=module.run)
            self.choices[name].ready = True
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muggled-swinv2", description="SwinV2-DPT (MiDaS v3.1) monocular depth estimation")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", action=CommandChoice)
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if refusal := empty_argument(argv):
        print(f"error: {refusal}", file=sys.stderr)
        return EXIT_USAGE
    try:
        args = build_parser().parse_args(argv)  # may import PyTorch (bench's defaults)
        from ..io.images import silence_opencv

        silence_opencv()
        return args.run(args)
    except KeyboardInterrupt:  # also while PyTorch is still being imported
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:  # a file or folder the command could not write or read
        print(f"error: {os_error_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except UserError as error:  # every refusal of the package (errors.py)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


def run_and_exit(argv=None):
    """The console script and `python -m muggled_swinv2`: main(), then exit.

    gc.freeze() first: the interpreter's last garbage collection walks every object PyTorch (and
    Ray) made, which took 0.3 s of a command's exit (0.6 s with Ray) on the 2-core machine. By
    then every output is written and closed; nothing frozen needs a finaliser."""
    code = main(argv)
    gc.freeze()
    sys.exit(code)
