"""`muggled-swinv2 video INPUT --out OUT`: the depth video of a video file."""

import argparse
from pathlib import Path

from .arguments import add_prediction_arguments, model_options, report_summary, size_option_names
from .metric import add_metric_arguments, video_metric_options


def add_arguments(parser):
    parser.add_argument("input", metavar="INPUT", help="video file")
    parser.add_argument("--out", "-o", required=True,
                        help="output video: .mp4, .m4v, .mov or .mkv as H.264 (yuv420p, odd sizes as VP9), .webm as "
                             "VP9, with the source's sound (PyAV, the [video] extra; without it OpenCV writes MPEG-4 "
                             "Part 2 at even sizes, no sound); .avi: Motion JPEG, any size, no sound")
    parser.add_argument("--raw", type=raw_kinds, metavar="KIND[,KIND]",
                        help="also write beside OUT: npz, the float depth frames (depth.mp4 -> depth.npz); depth16, "
                             "the depth as a lossless 16-bit video (FFV1 in depth_depth16.mkv, needs PyAV); or npz,depth16. "
                             "With metric options the npz also holds the metric depth (and is written without asking)")
    parser.add_argument("--per-frame-range", action="store_true",
                        help="colour each frame by its own min/max (default: a smooth running range)")
    parser.add_argument("--stabilize", action=argparse.BooleanOptionalAction, default=True,
                        help="put all frames on one depth scale and shift, fitted on what did not move, reset at "
                             "scene cuts (default: on; the npz keeps each frame's scale and shift)")
    add_metric_arguments(parser, "video")
    add_prediction_arguments(parser, "video")


RAW_KINDS = ("npz", "depth16")


def raw_kinds(text: str) -> tuple[str, ...]:
    """'npz', 'depth16' or 'npz,depth16' -> the kinds (argparse's one-line error otherwise)."""
    kinds = tuple(kind.strip() for kind in text.split(","))
    unknown = [kind for kind in kinds if kind not in RAW_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown kind {', '.join(map(repr, unknown))}; use npz, depth16 or npz,depth16")
    return kinds


def run(args) -> int:
    from ..jobs.models import open_engine
    from ..io.outputs import new_folders_removed_if_empty
    from ..io.video import stated_size_wh
    from ..jobs.video import VideoJobOptions, check_video_paths, run_video_job

    source, target = Path(args.input), Path(args.out)
    metric = video_metric_options(args, stated_size_wh(source) if source.is_file() else None)
    options = VideoJobOptions(
        colormap=args.colormap, side_by_side=args.side_by_side, per_frame_range=args.per_frame_range,
        raw_npz="npz" in (args.raw or ()) or metric is not None, raw_depth16="depth16" in (args.raw or ()),
        square=args.square, size=args.size, batch_size=args.batch_size,
        memory_check=not args.no_memory_check, memory_names=size_option_names(), stabilize=args.stabilize,
        overwrite=args.overwrite, metric=metric,
    )
    with new_folders_removed_if_empty(target.parent):
        check_video_paths(source, target, options)
        summary = run_video_job(open_engine(model_options(args)), source, target, options, quiet=args.quiet)
    return report_summary(f"{target}: {summary.line()}", summary.interrupted, args.quiet)
