"""`muggled-swinv2 export W OUT`: the network as an ONNX file, checked by ONNX Runtime."""

from .arguments import add_overwrite_argument, positive_int



def add_arguments(parser):
    parser.add_argument("weights", metavar="W", help="checkpoint")
    parser.add_argument("output", metavar="OUT", help=".onnx file to write")
    parser.add_argument("--size", metavar="HxW", help="input size, multiples of 32 (default: the native square)")
    parser.add_argument("--batch", default="1", help="batch size N, or 'dynamic' (default 1)")
    parser.add_argument("--opset", type=positive_int, default=18, help="ONNX opset, 17 to 23 (default 18)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                        help="float16: the decoder's weights in half precision (the encoder stays float32)")
    add_overwrite_argument(parser, "OUT if it exists and")


def run(args) -> int:
    from ..export.onnx import export_onnx, parse_size, require_onnx
    from ..formats.checkpoint import load_model
    from ..jobs.models import find_weights

    require_onnx()  # before minutes of loading and tracing
    size_hw = parse_size(args.size) if args.size else None
    model = load_model(find_weights(args.weights))
    report = export_onnx(model, args.output, size_hw=size_hw, batch=args.batch, opset=args.opset, dtype=args.dtype,
                         overwrite=args.overwrite)
    print("\n".join(report.lines()))
    return 0
