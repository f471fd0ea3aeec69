"""`muggled-swinv2 eval`: AbsRel and delta1 of a model on depth ground truth (the MiDaS protocol)."""

from .arguments import (add_model_arguments, add_overwrite_argument, add_preprocessing_arguments,
                        add_quiet_argument, model_options, positive_float, positive_int)


def add_arguments(parser):
    parser.add_argument("--data", default="synthetic", help="'synthetic' (rendered test scenes) or a folder with images/ and depth/ (or disparity/)")
    parser.add_argument("--split", default="test", choices=["test", "val"], help="synthetic split (default test)")
    parser.add_argument("--count", type=positive_int, default=200, help="images to score (default 200)")
    parser.add_argument("--scene-size", type=positive_int, default=256, help="side of the rendered synthetic scenes")
    parser.add_argument("--gt-scale", type=positive_float, default=1.0, help="16-bit PNG ground truth is divided by this")
    parser.add_argument("--max-depth", type=positive_float, help="aligned depth is capped here (default: 80 for synthetic scenes, else each image's largest ground-truth depth)")
    parser.add_argument("--json", help="write per-image and mean scores to this JSON file")
    add_overwrite_argument(parser, "the --json file")
    add_preprocessing_arguments(parser)
    parser.add_argument("--batch-size", type=positive_int, default=4)
    add_quiet_argument(parser)
    add_model_arguments(parser)


def run(args) -> int:
    from ..jobs.evaluate import EvalOptions, check_outputs, load_samples, run_evaluation, summary_line
    from ..jobs.images import report_error
    from ..jobs.models import find_weights, open_model

    options = EvalOptions(data=args.data, split=args.split, count=args.count, scene_size=args.scene_size,
                          gt_scale=args.gt_scale, square=args.square, size=args.size, max_depth=args.max_depth,
                          batch_size=args.batch_size, json=args.json, overwrite=args.overwrite, quiet=args.quiet)
    path = find_weights(args.weights, quiet=args.quiet)
    check_outputs(options, path)
    samples, problems = load_samples(options)
    for line in problems:
        report_error(line)
    result = run_evaluation(open_model(model_options(args), path), path, samples, options)
    print(summary_line(result))
    return 0
