"""`muggled-swinv2 info [W]`: describe a checkpoint or an exported .onnx file."""

from pathlib import Path



def add_arguments(parser):
    parser.add_argument("weights", nargs="?", help="checkpoint or .onnx file (default: the checkpoint found, see --weights of image)")


def run(args) -> int:
    if args.weights and Path(args.weights).suffix.lower() == ".onnx":
        from ..export.onnx import describe

        rows = describe(args.weights)
    else:
        from ..formats.summary import describe_checkpoint
        from ..jobs.models import find_weights

        rows = describe_checkpoint(find_weights(args.weights))
    for name, value in rows:
        print(f"{name:>18}: {value}")
    return 0
