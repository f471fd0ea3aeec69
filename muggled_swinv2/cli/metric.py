"""The metric depth options of `image` and `video` (docs/metric.md): what the user knows, and the camera.

    --known X,Y=Z (repeatable)   --known-file CSV   --sparse-depth FILE|DIR   --depth-range NEAR,FAR
    --fit affine|scale           --fov DEG          --focal-px F               --raw metric,metric-png16

Everything that can be checked before the model runs is checked here, so that bad input ends with
one line and exit code 2, with nothing written: the points' distances, their number for the fit,
the known-points file, a sparse map file (read once here), a folder's map for each picture, and
each point inside each picture (its size read from the header, EXIF rotation applied); for a
video, the first map of a folder, each point inside the frames (their size as the file states it),
and no first-frame fit without the stabiliser's one scale and shift.
"""

import argparse
from pathlib import Path

from .arguments import UsageError, depth_range, field_of_view, positive_float

FITS = ("affine", "scale")  # geometry.calibrate.FITS
METRIC_KINDS = ("metric", "metric-png16")  # jobs.images.METRIC_KINDS
DEFAULT_FOV_DEG = 60.0  # export.geometry.DEFAULT_FOV_DEG: ply/mesh without --fov
DEFAULT_DEPTH_RANGE = (1.0, 10.0)  # export.geometry.DEFAULT_DEPTH_RANGE: ply/mesh without --depth-range
SPARSE_SUFFIXES = (".npy", ".pfm", ".tif", ".tiff", ".png")  # io.known_depth.SPARSE_DEPTH_SUFFIXES


def known_point(text: str) -> tuple[float, float, float]:
    """'X,Y=Z' -> (x, y, z); the distance itself is checked with the others (check_known_points)."""
    try:
        pixel, distance = text.split("=")
        x, y = (float(part) for part in pixel.split(","))
        return x, y, float(distance)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y=Z (pixel column, row, metres), e.g. 120,300=1.8, got {text!r}") from None


def add_metric_arguments(parser, command: str = "image"):
    """The options, with the help of `command` (image, video or stereo): only image writes ply/mesh,
    video reads no EXIF, only video takes a folder of per-frame maps."""
    group = parser.add_argument_group("metric depth (docs/metric.md): fit the prediction to what you know")
    group.add_argument("--known", type=known_point, action="append", metavar="X,Y=Z",
                       help="a known distance: pixel column X, row Y of the picture as shown (0,0 top left), Z metres "
                            "along the camera's axis; repeat for more (2 or more, or 1 with --fit scale)")
    group.add_argument("--known-file", metavar="CSV", help="known points, one x,y,z per line (header optional)")
    group.add_argument("--sparse-depth", metavar="FILE|DIR",
                       help="a metric depth map (npy, pfm, float tiff: metres; 16-bit png: millimetres; 0/NaN/inf "
                            "unknown; any resolution), or a folder of them " + (
                                "(the n-th file by name for the n-th frame, e.g. 000000.npy, 000001.npy, ...)"
                                if command == "video" else "matched to the pictures by file stem"))
    group.add_argument("--depth-range", type=depth_range, metavar="NEAR,FAR",
                       help="the nearest and farthest distances in view, in metres, when nothing else is known "
                            + {"video": "(refitted at each scene cut)",
                               "image": "(also the depth range of ply/mesh: default 1,10)"}.get(command, ""))
    group.add_argument("--fit", choices=FITS, default="affine",
                       help="affine: 1/z = s*d + t (default); scale: t = 0, an assumption that makes 1 point enough")
    group.add_argument("--fov", type=field_of_view, metavar="DEG",
                       help="horizontal field of view of the camera in degrees " + {
                           "video": "(default 60)",
                           "image": "(default: the photo's EXIF focal length, else 60; also the camera of ply/mesh)",
                           "stereo": "(default: the photo's EXIF focal length, else 60)"}[command])
    group.add_argument("--focal-px", type=positive_float, metavar="F", help="the focal length in pixels (instead of --fov)")


def check_one_source(args) -> None:
    """UsageError (one line) for two sources of known depth, or two of the camera, in one command."""
    sources = [name for name, given in (("--known/--known-file", args.known or args.known_file),
                                        ("--sparse-depth", args.sparse_depth), ("--depth-range", args.depth_range))
               if given]
    if len(sources) > 1:
        raise UsageError(f"{' and '.join(sources)}: give one source of known depth")
    if args.fov is not None and args.focal_px is not None:
        raise UsageError("--fov and --focal-px both give the camera; give one")


def known_sources(args) -> tuple[list, Path | None]:
    """(the known points of --known and --known-file, the --sparse-depth path) once checked: one
    source at most (its callers have run check_one_source), the points' distances and number for
    the fit, a sparse map file readable (a folder's maps are matched later). UsageError (one line)."""
    from ..geometry import CalibrationError, check_known_points
    from ..io.known_depth import read_known_points, read_sparse_depth

    points = list(args.known or [])
    try:
        if args.known_file:
            points += [tuple(point) for point in read_known_points(args.known_file)]
        if points:
            check_known_points(points, args.fit)
        sparse = Path(args.sparse_depth) if args.sparse_depth else None
        if sparse is not None and not sparse.is_dir():
            read_sparse_depth(sparse)  # a file that cannot be read ends here, before any work
    except CalibrationError as error:
        raise UsageError(str(error)) from None
    return points, sparse


def metric_options(args, raw_formats: tuple[str, ...]):
    """(MetricOptions or None, the raw formats with `metric` added where a source is given alone:
    a known-depth option, or --depth-range unless it is the range of ply/mesh). UsageError (one
    line) for bad or conflicting input."""
    from ..jobs.metric import MetricOptions

    check_one_source(args)
    wanted = any(kind in METRIC_KINDS for kind in raw_formats)
    geometry = bool({"ply", "mesh"} & set(raw_formats))  # --depth-range and --fov are also theirs
    range_alone = args.depth_range is not None and not geometry
    if not (args.known or args.known_file or args.sparse_depth or range_alone) and not wanted:
        unused = [option for option, value in (("--fov", None if geometry else args.fov), ("--focal-px", args.focal_px))
                  if value is not None]
        if unused:
            raise UsageError(f"{' and '.join(unused)}: the camera of the metric outputs{'' if geometry else ' and ply/mesh'}; "
                             f"give --known, --known-file, --sparse-depth or --depth-range"
                             f"{'' if geometry else ', or --raw ply/mesh'}")
        return None, raw_formats
    points, sparse = known_sources(args)
    if not points and sparse is None and args.depth_range is None:
        raise UsageError("--raw metric needs what you know: --known X,Y=Z, --known-file, --sparse-depth or --depth-range")
    options = MetricOptions(known_points=tuple(points), sparse_depth=sparse, depth_range=args.depth_range,
                            fit=args.fit, fov_deg=args.fov, focal_px=args.focal_px)
    return options, raw_formats if wanted else (*raw_formats, "metric")


def video_metric_options(args, frame_size_wh: tuple[int, int] | None):
    """The video's MetricOptions, or None when nothing is known (--depth-range alone is a source:
    a video has no ply). Before any work: the sources (known_sources), a folder holding maps, each
    point inside frames of `frame_size_wh` (as the file states it; None: checked on the first
    frame), and no first-frame fit (points, one map) with --no-stabilize. UsageError (one line)."""
    from ..geometry import CalibrationError, check_points_inside
    from ..io.known_depth import read_sparse_depth
    from ..jobs.metric import MetricOptions, sparse_depth_frames

    check_one_source(args)
    if not (args.known or args.known_file or args.sparse_depth or args.depth_range):
        given = [option for option, value in (("--fov", args.fov), ("--focal-px", args.focal_px)) if value is not None]
        if given:
            raise UsageError(f"{' and '.join(given)}: the camera of the metric depth; give --known, --known-file, "
                             f"--sparse-depth or --depth-range")
        return None
    points, sparse = known_sources(args)
    try:
        if sparse is not None and sparse.is_dir():
            maps = sparse_depth_frames(sparse)
            if not maps:
                raise UsageError(f"--sparse-depth {sparse}: no sparse depth maps in this folder "
                                 f"({', '.join(SPARSE_SUFFIXES)})")
            read_sparse_depth(maps[0])  # the first frame's: a folder of unreadable files ends here
        elif (points or sparse is not None) and not args.stabilize:
            raise UsageError(f"{'--known' if points else '--sparse-depth FILE'} with --no-stabilize: a fit to the first "
                             f"frame holds only on the stabiliser's one scale and shift; leave out --no-stabilize "
                             f"(or give a folder of maps, one per frame)")
        if points and frame_size_wh is not None:
            check_points_inside(points, *frame_size_wh)
    except CalibrationError as error:
        raise UsageError(f"{args.input}: {error}" if "known point" in str(error) else str(error)) from None
    return MetricOptions(known_points=tuple(points), sparse_depth=sparse, depth_range=args.depth_range, fit=args.fit,
                         fov_deg=args.fov, focal_px=args.focal_px)


def check_metric_tasks(tasks, options) -> None:
    """Before any work: each known point inside each picture, a map in a --sparse-depth folder for
    each picture. UsageError naming the picture."""
    from ..geometry import CalibrationError, check_points_inside
    from ..io.exif import shown_size
    from ..io.images import ImageReadError
    from ..jobs.metric import sparse_depth_file

    for task in tasks:
        try:
            if options.known_points:
                check_points_inside(options.known_points, *shown_size(task.source))
            if options.sparse_depth is not None:
                sparse_depth_file(options, task.source)
        except CalibrationError as error:
            raise UsageError(f"{task.source}: {error}") from None
        except ImageReadError:
            pass  # reported by the job, as for any picture it cannot read
