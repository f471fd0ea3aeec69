"""`muggled-swinv2 export W OUT`: the network as an ONNX file, checked by ONNX Runtime."""

from pathlib import Path

from .arguments import add_overwrite_argument, positive_int, size_option_names


def add_arguments(parser):
    parser.add_argument("weights", metavar="W", help="checkpoint")
    parser.add_argument("output", metavar="OUT", help=".onnx file to write")
    parser.add_argument("--size", metavar="HxW", help="input size, multiples of 32 (default: the native square)")
    parser.add_argument("--batch", default="1", help="batch size N, or 'dynamic' (default 1)")
    parser.add_argument("--opset", type=positive_int, default=18, help="ONNX opset, 18 to 23 (default 18)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                        help="float16: the decoder's weights in half precision (the encoder stays float32)")
    add_overwrite_argument(parser, "OUT")
    parser.add_argument("--no-memory-check", action="store_true",
                        help="export even where the memory estimate says the check at --size will not fit")


def run(args) -> int:
    from ..io.outputs import new_folders_removed_if_empty
    from ..jobs.export import ExportOptions, run_export

    options = ExportOptions(size=args.size, batch=args.batch, opset=args.opset, dtype=args.dtype, overwrite=args.overwrite,
                            memory_check=not args.no_memory_check, memory_names=size_option_names(batch="--batch"))
    with new_folders_removed_if_empty(Path(args.output).parent):  # created for OUT, removed if nothing was written
        report = run_export(args.weights, args.output, options)
    print("\n".join(report.lines()))
    return 0
