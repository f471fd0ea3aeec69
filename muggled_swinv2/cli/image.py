"""`muggled-swinv2 image INPUT... --out FOLDER`: depth maps for image files, folders or glob patterns."""

from pathlib import Path

from .arguments import (RAW_FORMATS, UsageError, add_prediction_arguments, model_options, positive_float,
                        positive_int, raw_formats, report_summary, size_option_names, value_range)
from .metric import DEFAULT_DEPTH_RANGE, add_metric_arguments, check_metric_tasks, metric_options

RAY_ONLY = {"--actors": "actors", "--gpus-per-actor": "gpus_per_actor", "--cpus-per-actor": "cpus_per_actor"}


def add_arguments(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("--out", "-o", default="outputs", help="output folder (default: outputs)")
    parser.add_argument("--recursive", "-r", action="store_true", help="also look in sub-folders")
    parser.add_argument("--raw", type=raw_formats, metavar="FORMATS",
                        help=f"also write float depth, comma separated: {','.join(RAW_FORMATS)} "
                        "(ply: coloured point cloud, mesh: coloured triangle mesh <stem>_mesh.ply; metric: metres "
                        "<stem>_metric.npy, metric-png16: millimetres <stem>_metric_mm.png, each with <stem>_camera.json)")
    parser.add_argument("--range", type=value_range, metavar="LOW,HIGH",
                        help="colour range of the maps (and of png16): inverse depth values, the same for every "
                             "image so that maps compare, or percentiles of each map, e.g. 2%%,98%% "
                             "(default: each map's own min and max)")
    parser.add_argument("--invert", action="store_true", help="far is bright (default: near is bright)")
    parser.add_argument("--point-step", type=positive_int, default=1, metavar="N",
                        help="ply/mesh: one point per N x N pixels (default 1)")
    add_metric_arguments(parser)
    add_prediction_arguments(parser)
    cluster = parser.add_argument_group("on a Ray cluster (the [ray] extra)")
    cluster.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                         help="run with Ray Data: alone, a local Ray instance on this machine; 'auto' or "
                              "ray://HOST:10001 for a running cluster (outputs must be on a filesystem all nodes see)")
    cluster.add_argument("--actors", type=positive_int,
                         help="model actors, one model load each (default: on a local instance one per CPU, "
                              "as many as memory holds; on a cluster or with GPUs, 1)")
    cluster.add_argument("--gpus-per-actor", type=positive_float, metavar="F", help="GPUs per actor, e.g. 1 or 0.5")
    cluster.add_argument("--cpus-per-actor", type=positive_float, metavar="C",
                         help="CPUs reserved per actor, and its torch threads (default: 1 on a local instance "
                              "or with GPUs; on a cluster, its CPUs shared out between the actors, at most a node's)")


def check_ray_arguments(args):
    """Ray-only options need --ray; an ADDRESS that is an input was meant as one."""
    if args.ray is None:
        given = [option for option, value in RAY_ONLY.items() if getattr(args, value) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --ray")
    elif args.ray != "local" and Path(args.ray).exists():
        raise UsageError(f"--ray {args.ray}: that is a file or folder, not a cluster address; "
                         f"put --ray after the inputs, or write --ray local")
    elif (args.cpus_per_actor or 0) > 1 and not float(args.cpus_per_actor).is_integer():
        raise UsageError(f"--cpus-per-actor {args.cpus_per_actor:g}: Ray takes a fraction below 1 or a whole number")
    elif args.engine != "torch":
        raise UsageError("--engine onnx does not run on Ray; leave out --ray (or use --engine torch)")


def run(args) -> int:
    from ..io.outputs import new_folders_removed_if_empty

    with new_folders_removed_if_empty(args.out):  # every input failed: no empty --out folder left
        return run_images(args)


def run_images(args) -> int:
    from ..jobs.images import ImageJobOptions, prepare_image_job, run_image_job
    from ..jobs.models import find_weights, open_engine

    check_ray_arguments(args)
    metric, raw = metric_options(args, args.raw or ())
    options = ImageJobOptions(
        out_dir=Path(args.out), raw_formats=raw, colormap=args.colormap, side_by_side=args.side_by_side,
        square=args.square, size=args.size, batch_size=args.batch_size, overwrite=args.overwrite,
        value_range=args.range, invert=args.invert, memory_check=not args.no_memory_check,
        memory_names=size_option_names(), fov_deg=args.fov, depth_range=args.depth_range or DEFAULT_DEPTH_RANGE,
        point_step=args.point_step, metric=metric,
    )
    tasks, input_errors = prepare_image_job(args.inputs, args.recursive, options)
    if metric is not None:
        check_metric_tasks(tasks, metric)
    if args.ray is None:
        summary = run_image_job(open_engine(model_options(args)), tasks, options, quiet=args.quiet)
    else:
        from ..distributed import RayOptions, run_on_ray

        ray_options = RayOptions(
            address=None if args.ray == "local" else args.ray, actors=args.actors,
            gpus_per_actor=args.gpus_per_actor or 0.0, cpus_per_actor=args.cpus_per_actor, device=args.device,
            dtype=args.dtype,
        )
        summary = run_on_ray(find_weights(args.weights, args.quiet), tasks, options, ray_options, quiet=args.quiet)
    return report_summary(summary.line(), summary.interrupted, args.quiet, failed=bool(summary.failed or input_errors))
