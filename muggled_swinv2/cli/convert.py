"""`muggled-swinv2 convert IN OUT`: a checkpoint in our safetensors format (or Hugging Face's)."""

from pathlib import Path

from .arguments import CONVERT_TARGETS, DTYPE_NAMES, add_overwrite_argument


def add_arguments(parser):
    parser.add_argument("input", metavar="IN", help="MiDaS .pt, our .safetensors, or a Hugging Face model (folder or file)")
    parser.add_argument("output", metavar="OUT", help="file to write (.safetensors), or a folder with --to hf")
    parser.add_argument("--dtype", default="float32", choices=DTYPE_NAMES,
                        help="precision stored (float32 keeps the outputs bit for bit)")
    parser.add_argument("--to", default="muggled", choices=CONVERT_TARGETS,
                        help="muggled: our single-file format (default); hf: a transformers model folder")
    add_overwrite_argument(parser, "OUT")


def run(args) -> int:
    from ..io.outputs import new_folders_removed_if_empty
    from ..formats.convert import convert

    with new_folders_removed_if_empty(Path(args.output).parent):  # created for OUT, removed if nothing was written
        report = convert(args.input, args.output, dtype=args.dtype, to=args.to, overwrite=args.overwrite)
    print("\n".join(report.lines()))
    return 0
