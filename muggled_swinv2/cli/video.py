"""`muggled-swinv2 video INPUT --out OUT`: the depth video of a video file."""

import argparse
from pathlib import Path

from .arguments import add_prediction_arguments, model_options, report_summary
from .metric import add_metric_arguments, video_metric_options


def add_arguments(parser):
    parser.add_argument("input", metavar="INPUT", help="video file")
    parser.add_argument("--out", "-o", required=True, help="output video (.mp4, .m4v, .mov, .avi or .mkv; "
                        "frames of an odd width or height: .avi, the others are written at even sizes only)")
    parser.add_argument("--raw", choices=["npz"], help="also write the float depth frames beside OUT, as .npz "
                        "(depth.mp4 -> depth.npz); with metric options, also their metric depth (implied by them)")
    parser.add_argument("--per-frame-range", action="store_true",
                        help="colour each frame by its own min/max (default: a smooth running range)")
    parser.add_argument("--stabilize", action=argparse.BooleanOptionalAction, default=True,
                        help="put all frames on one depth scale and shift, fitted on what did not move, reset at "
                             "scene cuts (default: on; the npz keeps each frame's scale and shift)")
    add_metric_arguments(parser, video=True)
    add_prediction_arguments(parser)


def run(args) -> int:
    from ..jobs.models import open_engine
    from ..io.video import stated_size_wh
    from ..jobs.video import VideoJobOptions, check_video_paths, run_video_job

    source, target = Path(args.input), Path(args.out)
    metric = video_metric_options(args, stated_size_wh(source) if source.is_file() else None)
    options = VideoJobOptions(
        colormap=args.colormap, side_by_side=args.side_by_side, per_frame_range=args.per_frame_range,
        raw_npz=bool(args.raw) or metric is not None, square=args.square, size=args.size, batch_size=args.batch_size,
        memory_check=not args.no_memory_check, stabilize=args.stabilize, overwrite=args.overwrite, metric=metric,
    )
    check_video_paths(source, target, options)
    summary = run_video_job(open_engine(model_options(args)), source, target, options, quiet=args.quiet)
    return report_summary(f"{target}: {summary.line()}", summary.interrupted, args.quiet)
