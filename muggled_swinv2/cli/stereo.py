"""`muggled-swinv2 stereo INPUT... --out DIR|FILE`: stereo pictures (side by side, anaglyph, VR180, ...)."""

import argparse
import math
from pathlib import Path

from .arguments import (UsageError, add_model_arguments, add_overwrite_argument, add_preprocessing_arguments,
                        add_quiet_argument, count_int, model_options, positive_int, report_summary)
from .metric import add_metric_arguments, check_metric_tasks, check_one_source, metric_options

STEREO_FORMATS = ("sbs", "half-sbs", "tb", "half-tb", "anaglyph", "cross", "vr180", "wiggle", "pair")  # geometry.stereo_layouts.FORMATS
EYES = ("left", "right", "center")  # geometry.stereo.EYES
DEPTH_KINDS = ("inverse", "metric")  # jobs.stereo.DEPTH_KINDS
MAX_DIVERGENCE_PCT = 25.0  # more than a quarter of the width between the eyes: no one can fuse it
MAX_BASELINE_M = 100.0


def check_within(option: str, value: float | None, low: float, high: float, low_open: bool = True) -> None:
    """UsageError (one line) unless `value` is None or a number in (low, high] ([low, high])."""
    if value is None or ((value > low if low_open else value >= low) and value <= high):
        return
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
    raise UsageError(f"{option} must be a number in {interval}, got {value:g}")


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def add_arguments(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="picture files, folders or glob patterns, or one video")
    parser.add_argument("--out", "-o", default="outputs",
                        help="output folder (default: outputs), or a file name for one picture; for a video, the "
                             "video file to write (.mp4: H.264 with the source's sound; .webm: VP9)")
    parser.add_argument("--format", default="sbs", choices=STEREO_FORMATS,
                        help="sbs / half-sbs: side by side, left eye on the left (half: each eye squeezed to half "
                             "the width); tb / half-tb: top-bottom; anaglyph: red-cyan (Dubois); cross: cross-eyed "
                             "(right eye on the left); vr180: two 180-degree equirectangular halves; wiggle: an "
                             "animated GIF alternating the eyes; pair: two files (default: sbs)")
    parser.add_argument("--eye", default="left", choices=EYES,
                        help="which eye the picture is; center renders both eyes half the baseline away (default: left)")
    relative = parser.add_argument_group("relative depth (the model's, or --depth-kind inverse)")
    relative.add_argument("--divergence", type=number, metavar="PCT",
                          help="disparity between the nearest and the farthest point, in %% of the width (default 2)")
    relative.add_argument("--convergence", type=number, metavar="0..1",
                          help="the screen plane: 0 at the nearest point (all behind the screen) ... 1 at the "
                               "farthest (all in front) (default 0.5)")
    relative.add_argument("--auto", action="store_true",
                          help="choose divergence and convergence within comfort: the screen plane at the nearest "
                               "thing the frame's side edges cut, parallax within 1 degree on a 30-degree screen")
    metric = parser.add_argument_group("metric stereo (f * B / z): --depth FILE --depth-kind metric, or the model's "
                                       "depth calibrated by --known, --known-file, --sparse-depth or --depth-range")
    metric.add_argument("--baseline", type=number, metavar="M",
                        help="distance between the eyes in metres (default 0.063)")
    metric.add_argument("--convergence-distance", type=number, metavar="M",
                        help="distance of the screen plane in metres (default: infinity, parallel cameras)")
    add_metric_arguments(parser, "stereo")  # --known ... --fit, and the camera: --fov, --focal-px (else EXIF, else 60 degrees)
    parser.add_argument("--depth", metavar="FILE", help="use this depth map instead of the model: a float .npy, .pfm or .tif/.tiff of the picture's size, "
                             "as image --raw npy,pfm,tiff,metric writes (metric: NaN = no depth, drawn infinitely far)")
    parser.add_argument("--depth-kind", choices=DEPTH_KINDS, default="inverse",
                        help="what --depth holds: inverse (relative inverse depth, bigger = nearer) or metric "
                             "(metres) (default: inverse)")
    parser.add_argument("--dilation", type=count_int, default=2, metavar="PX",
                        help="grow near surfaces by PX pixels before warping, against halos (default 2)")
    add_preprocessing_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=1, help="video frames per forward pass")
    add_overwrite_argument(parser)
    add_quiet_argument(parser)
    add_model_arguments(parser, engine=True)


def check_arguments(args) -> None:
    """Options that contradict each other or the depth's kind: one line, before any work."""
    check_within("--divergence", args.divergence, 0, MAX_DIVERGENCE_PCT)
    check_within("--convergence", args.convergence, 0, 1, low_open=False)
    check_within("--baseline", args.baseline, 0, MAX_BASELINE_M)
    check_within("--convergence-distance", args.convergence_distance, 0, math.inf)
    calibrated = calibration_given(args)
    check_one_source(args)
    if args.depth_kind == "metric" and args.depth is None:
        raise UsageError("--depth-kind metric needs --depth FILE (a depth map in metres)")
    if args.depth_kind == "metric" and calibrated:
        raise UsageError(f"--depth {args.depth} is metric already; --known, --known-file, --sparse-depth and "
                         f"--depth-range calibrate relative depth (the model's, or --depth-kind inverse)")
    metric = args.depth_kind == "metric" or calibrated
    relative_given = [name for name, value in (("--divergence", args.divergence), ("--convergence", args.convergence),
                                               ("--auto", args.auto or None)) if value is not None]
    metric_given = [name for name, value in (("--baseline", args.baseline),
                                             ("--convergence-distance", args.convergence_distance)) if value is not None]
    if metric and relative_given:
        raise UsageError(f"{', '.join(relative_given)} {'applies' if len(relative_given) == 1 else 'apply'} only to "
                         f"relative depth; with metric depth use --baseline "
                         f"and --convergence-distance")
    if not metric and metric_given:
        raise UsageError(f"{', '.join(metric_given)} {'applies' if len(metric_given) == 1 else 'apply'} only to "
                         f"metric depth (--depth FILE --depth-kind metric, "
                         f"or --known, --known-file, --sparse-depth or --depth-range)")
    if args.auto and (args.divergence is not None or args.convergence is not None):
        raise UsageError("--auto chooses --divergence and --convergence; give either, not both")


def calibration_given(args) -> bool:
    """Whether the user says what they know about the depth (cli/metric.py's sources)."""
    return bool(args.known or args.known_file or args.sparse_depth or args.depth_range)


def run(args) -> int:
    from ..io.images import ImageReadError, read_image
    from ..jobs.models import open_engine
    from ..jobs.stereo import StereoOptions, is_video, load_depth_file, plan_stereo_tasks, run_stereo_job

    check_arguments(args)
    options = StereoOptions(
        format=args.format, eye=args.eye, divergence_pct=args.divergence or 2.0,
        convergence=0.5 if args.convergence is None else args.convergence, auto=args.auto,
        baseline_m=args.baseline or 0.063, convergence_distance_m=args.convergence_distance or math.inf,
        fov_deg=args.fov, focal_px=args.focal_px, depth_kind=args.depth_kind, dilation_px=args.dilation,
        calibration=metric_options(args, ("metric",))[0] if calibration_given(args) else None,
        square=args.square, size=args.size, overwrite=args.overwrite,
    )
    depth_file = Path(args.depth) if args.depth else None
    if len(args.inputs) == 1 and is_video(args.inputs[0]):
        return run_video(args, options, Path(args.inputs[0]), Path(args.out))
    tasks = plan_stereo_tasks(args.inputs, Path(args.out), options, depth_file)
    if options.calibration is not None:  # each known point inside each picture, a sparse map for each
        check_metric_tasks(tasks, options.calibration)
    if depth_file is not None:  # checked against its picture before any work
        try:
            picture_hw = read_image(tasks[0].source).shape[:2]
        except ImageReadError as error:
            raise UsageError(str(error)) from None
        load_depth_file(depth_file, options.depth_kind, picture_hw)
    model = None if depth_file is not None else open_engine(model_options(args))
    summary = run_stereo_job(model, tasks, options, quiet=args.quiet)
    return report_summary(summary.line(), summary.interrupted, args.quiet, failed=bool(summary.failed))


def run_video(args, options, source: Path, target: Path) -> int:
    from ..jobs.models import open_engine
    from ..jobs.stereo import check_stereo_video_paths, run_stereo_video_job

    if args.depth is not None:
        raise UsageError(f"--depth {args.depth}: a depth file is for one picture; a video's depth comes from the model")
    if options.calibration is not None:
        raise UsageError("--known, --known-file, --sparse-depth and --depth-range calibrate pictures; a video's stereo "
                         "is relative (--divergence, --convergence, --auto)")
    check_stereo_video_paths(source, target, options)
    summary = run_stereo_video_job(open_engine(model_options(args)), source, target, options,
                                   batch_size=args.batch_size, quiet=args.quiet)
    return report_summary(f"{target}: {summary.line()}", summary.interrupted, args.quiet)
