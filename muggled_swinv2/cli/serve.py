"""`muggled-swinv2 serve`: the local web app (the [web] extra)."""

import sys

from .arguments import UsageError, add_model_arguments, model_options, port_number, positive_float, positive_int


def add_arguments(parser):
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port_number, default=7860, help="TCP port, 1-65535 (default 7860)")
    parser.add_argument("--max-upload-mb", type=positive_float, default=25.0, help="largest upload, in MB (default 25)")
    parser.add_argument("--max-megapixels", type=positive_float, default=25.0, help="largest picture (default 25)")
    parser.add_argument("--max-video-frames", type=positive_int, default=900, help="longest video, in frames (default 900)")
    parser.add_argument("--max-video-seconds", type=positive_float, default=60.0, help="longest video, in seconds (default 60)")
    parser.add_argument("--queue-size", type=positive_int, default=64, help="requests that may wait for the model (default 64)")
    add_model_arguments(parser)


def run(args) -> int:
    from ..web import INSTALL_HINT
    from ..web.server import ServeOptions, check_address, gradio_installed, host_warning, serve

    if not gradio_installed():  # the optional [web] extra
        raise UsageError(f"serve needs Gradio: {INSTALL_HINT}")
    from ..formats.weights import is_demo
    from ..jobs.models import find_weights, open_model
    from ..web.service import Limits, ModelInfo

    if warning := host_warning(args.host):
        print(warning, file=sys.stderr)
    limits = Limits(args.max_upload_mb, int(args.max_megapixels * 1e6), args.max_video_frames, args.max_video_seconds)
    check_address(args.host, args.port)  # before minutes of loading the model
    path = find_weights(args.weights)
    model = open_model(model_options(args), path)
    parameter = next(model.parameters())
    info = ModelInfo(model.config.release_name, path, str(parameter.device), args.dtype, demo=is_demo(path))
    serve(model, info, ServeOptions(host=args.host, port=args.port, limits=limits, queue_size=args.queue_size))
    return 0
