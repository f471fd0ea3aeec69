"""Command line: `muggled-swinv2 <command> ...` (also `python -m muggled_swinv2`).

User errors end with a one-line message on stderr and a non-zero exit code, never a traceback.
"""

import argparse
import gc
import sys
from pathlib import Path

# Only light modules here, so that `--help` answers at once: PyTorch, the model and the jobs are
# imported inside the commands that run them (tests/test_cli.py checks both).
from . import __version__
from .formats.weights import OFFICIAL_FILES, RELEASE_URL, demo_note, is_demo, resolve_weights
from .io.atomic import reserve_temp
from .io.colormaps import COLORMAPS, parse_range

# Choices that --help lists; the modules that implement them import PyTorch, so the names are
# repeated here (tests/test_cli.py checks that they match).
RAW_FORMATS = ("npy", "pfm", "png16", "tiff", "ply", "mesh")  # jobs.images.RAW_FORMATS
DTYPE_NAMES = ("float32", "float16", "bfloat16")  # devices.DTYPES
CONVERT_TARGETS = ("muggled", "hf")  # formats.convert.TARGETS
ENGINES = ("torch", "onnx")  # torch: our model; onnx: export/onnx_runtime.OnnxRuntimeEngine

EXIT_FAILED = 1  # some inputs failed
EXIT_USAGE = 2  # nothing could be done
EXIT_INTERRUPTED = 130
RAY_ONLY = {"--actors": "actors", "--gpus-per-actor": "gpus_per_actor", "--cpus-per-actor": "cpus_per_actor"}


class UsageError(Exception):
    """A bad argument, reported as one line."""


def expected_errors() -> tuple[type[Exception], ...]:
    """The exceptions that carry a one-line message for the user (imported when a command runs)."""
    from .devices import DeviceError
    from .formats.checkpoint import CheckpointError
    from .formats.convert import ConversionError
    from .formats.weights import WeightsError
    from .export.onnx import ExportError  # imports onnx only when an export runs
    from .distributed import RayError
    from .io.video import VideoError

    return CheckpointError, ConversionError, WeightsError, DeviceError, VideoError, UsageError, ExportError, RayError


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def count_int(text: str) -> int:
    """A whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def raw_formats(text: str) -> tuple[str, ...]:
    formats = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in formats if name not in RAW_FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(f"unknown format {','.join(unknown) or text!r}; choose from {','.join(RAW_FORMATS)}")
    return formats


def value_range(text: str):
    try:
        return parse_range(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def depth_range(text: str) -> tuple[float, float]:
    try:
        near, far = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NEAR,FAR, e.g. 1,10, got {text!r}") from None
    if not 0 < near < far < float("inf"):
        raise argparse.ArgumentTypeError(f"expected 0 < NEAR < FAR, got {text!r}")
    return near, far


def field_of_view(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 180:
        raise argparse.ArgumentTypeError(f"expected degrees between 0 and 180, got {text!r}")
    return value


def open_model(args, path=None):
    from .devices import dtype_warning, select_device, select_dtype
    from .formats.checkpoint import load_model

    device = select_device(args.device)
    dtype = select_dtype(args.dtype, device)
    if warning := dtype_warning(dtype, device):
        print(f"warning: {warning}", file=sys.stderr)
    return load_model(path or weights_path(args.weights, quiet=getattr(args, "quiet", False)), device=device, dtype=dtype)


def open_engine(args):
    """The model the image and video jobs run: ours in PyTorch, or with --engine onnx the same
    weights exported to ONNX Runtime (CPU, float32; see export/onnx_runtime.py)."""
    if args.engine == "torch":
        return open_model(args)
    if args.device not in ("auto", "cpu"):
        raise UsageError(f"--engine onnx runs on the CPU; leave out --device {args.device} (or use --engine torch)")
    if args.dtype != "float32":
        raise UsageError(f"--engine onnx runs in float32; leave out --dtype {args.dtype} (or use --engine torch)")
    from .export.onnx import ExportError, require_onnx

    try:
        require_onnx()
    except ExportError:
        raise UsageError("--engine onnx needs ONNX Runtime: pip install 'muggled_swinv2[onnx]'") from None
    from .export.onnx_runtime import OnnxRuntimeEngine, cache_folder
    from .jobs.images import report_error

    folder = cache_folder()
    make_writable_folder(folder / "onnx", "--engine onnx cache folder")
    args.device = "cpu"
    model = open_model(args)
    return OnnxRuntimeEngine(model, folder, notify=(lambda line: None) if args.quiet else report_error)


def weights_path(weights, quiet: bool = False) -> Path:
    """--weights, or the checkpoint found (formats.weights.resolve_weights), or the embedded demo model (said in one line)."""
    path = resolve_weights(weights)
    if is_demo(path) and not quiet:
        print(f"note: {demo_note()}", file=sys.stderr)
    return path


def make_writable_folder(folder: Path, option: str):
    """Create `folder` if needed and check that files can be written in it, before any work."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        reserve_temp(folder / "write-check").unlink()
    except OSError as error:
        raise UsageError(f"{option} {folder}: cannot write there ({error.strerror or error})") from None


def os_error_line(error: OSError) -> str:
    """An OSError as one line naming the file: 'PATH: reason'."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


# ----------------------------------------------------------------------------- commands


def command_image(args) -> int:
    from .jobs.images import ImageJobOptions, expand_inputs, plan_tasks, report_error, run_image_job

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: exists and is not a folder")
    sources, errors = expand_inputs(args.inputs, args.recursive, exclude_dir=out_dir.resolve())
    check_ray_arguments(args)
    if args.ray is not None and args.engine != "torch":
        raise UsageError("--engine onnx does not run on Ray; leave out --ray (or use --engine torch)")
    for message in errors:
        report_error(message)
    if not sources:
        raise UsageError("no input images found")
    options = ImageJobOptions(
        out_dir=out_dir,
        raw_formats=args.raw or (),
        colormap=args.colormap,
        side_by_side=args.side_by_side,
        square=args.square,
        size=args.size,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        value_range=args.range,
        invert=args.invert,
        memory_check=not args.no_memory_check,
        fov_deg=args.fov,
        depth_range=args.depth_range,
        point_step=args.point_step,
    )
    make_writable_folder(out_dir, "--out")
    if args.ray is not None:
        summary = run_image_job_on_ray(args, plan_tasks(sources, options), options)
    else:
        summary = run_image_job(open_engine(args), plan_tasks(sources, options), options, quiet=args.quiet)
    if not args.quiet or summary.interrupted:
        print(summary.line(), file=sys.stderr)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if summary.failed or errors else 0


def check_ray_arguments(args):
    """Before any work: Ray-only options need --ray; an ADDRESS that is an input was meant as one."""
    if args.ray is None:
        given = [option for option, value in RAY_ONLY.items() if getattr(args, value) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --ray")
    elif args.ray != "local" and Path(args.ray).exists():
        raise UsageError(f"--ray {args.ray}: that is a file or folder, not a cluster address; "
                         f"put --ray after the inputs, or write --ray local")
    elif (args.cpus_per_actor or 0) > 1 and not float(args.cpus_per_actor).is_integer():
        raise UsageError(f"--cpus-per-actor {args.cpus_per_actor:g}: Ray takes a fraction below 1 or a whole number")


def run_image_job_on_ray(args, tasks, options):
    """The image job on a Ray cluster (the `[ray]` extra; Ray is imported only here)."""
    from .devices import select_device, select_dtype
    from .distributed import RayOptions, run_on_ray

    gpus = args.gpus_per_actor or 0.0
    device = args.device if args.device != "auto" else ("cuda" if gpus else "cpu")
    if device.startswith("cuda") and not gpus:
        raise UsageError("--device cuda with --ray needs --gpus-per-actor (Ray gives GPUs only to actors that ask)")
    if not device.startswith("cuda"):
        select_dtype(args.dtype, select_device(device))  # float16 on a CPU: refused here, not on every actor
    ray_options = RayOptions(
        address=None if args.ray == "local" else args.ray,
        actors=args.actors,
        gpus_per_actor=gpus,
        cpus_per_actor=args.cpus_per_actor,
        device=device,
        dtype=args.dtype,
    )
    return run_on_ray(weights_path(args.weights, quiet=args.quiet), tasks, options, ray_options, quiet=args.quiet)


def command_video(args) -> int:
    from .io.ledger import OutputLedger
    from .io.video import check_video_target
    from .jobs.video import VideoJobOptions, run_video_job

    source, target = Path(args.input), Path(args.out)
    if not source.is_file():
        raise UsageError(f"{source}: no such video file")
    if target.is_dir():
        raise UsageError(f"--out {target}: is a folder; give the video file to write, e.g. {target / 'depth.mp4'}")
    check_video_target(target)
    outputs = [target] + ([target.with_suffix(".npz")] if args.raw else [])
    if any(path.resolve() == source.resolve() for path in outputs):
        raise UsageError(f"--out {target}: would overwrite the input video")
    existing = [path for path in outputs if path.exists()]
    if existing and not args.overwrite:
        raise UsageError(f"{', '.join(map(str, existing))} exists; pass --overwrite to replace it")
    if foreign := [str(path) for path in existing if not OutputLedger().is_ours(path)]:
        raise UsageError(f"{', '.join(foreign)} exists and was not written by muggled-swinv2; refusing to replace it, "
                         f"choose another --out")
    make_writable_folder(target.parent, "--out folder")
    options = VideoJobOptions(
        colormap=args.colormap,
        side_by_side=args.side_by_side,
        per_frame_range=args.per_frame_range,
        raw_npz=bool(args.raw),
        square=args.square,
        size=args.size,
        batch_size=args.batch_size,
        memory_check=not args.no_memory_check,
        stabilize=args.stabilize,
    )
    summary = run_video_job(open_engine(args), source, target, options, quiet=args.quiet)
    if not args.quiet or summary.interrupted:
        print(f"{target}: {summary.line()}", file=sys.stderr)
    return EXIT_INTERRUPTED if summary.interrupted else 0


def stored_precision(state_dict: dict) -> str:
    """The dtypes a checkpoint stores, by share of the bytes: 'float16 (98%), float32 (2%)'."""
    by_dtype = {}
    for tensor in state_dict.values():
        name = str(tensor.dtype).removeprefix("torch.")
        by_dtype[name] = by_dtype.get(name, 0) + tensor.numel() * tensor.element_size()
    total = sum(by_dtype.values()) or 1
    ranked = sorted(by_dtype.items(), key=lambda item: -item[1])
    if len(ranked) == 1:
        return ranked[0][0]
    return ", ".join(f"{name} ({size / total:.0%} of the bytes)" for name, size in ranked)


def file_size(path: Path) -> int:
    if path.is_dir():
        return sum(child.stat().st_size for child in path.rglob("*") if child.is_file())
    return path.stat().st_size


def command_info(args) -> int:
    from .formats.checkpoint import read_checked_checkpoint

    if args.weights and Path(args.weights).suffix.lower() == ".onnx":
        from .export.onnx import describe

        for name, value in describe(args.weights):
            print(f"{name:>18}: {value}")
        return 0
    path = weights_path(args.weights)
    checkpoint, model = read_checked_checkpoint(path)
    config = model.config
    parameters = sum(tensor.numel() for tensor in model.parameters())
    rows = [
        ("file", path),
        ("file size", f"{file_size(Path(path)) / 2**20:.1f} MiB"),
        ("format", checkpoint.format),
        ("stored precision", stored_precision(checkpoint.state_dict)),
        ("variant", config.variant),
        ("widths", ", ".join(map(str, config.embed_dims))),
        ("depths", ", ".join(map(str, config.depths))),
        ("heads", ", ".join(map(str, config.num_heads))),
        ("window", config.window_size),
        ("pretrained windows", ", ".join(str(size or "-") for size in config.pretrained_window_sizes)),
        ("native size", f"{config.native_size}x{config.native_size}"),
        ("parameters", f"{parameters / 1e6:.1f} M"),
    ]
    for name, value in rows:
        print(f"{name:>18}: {value}")
    return 0


def command_convert(args) -> int:
    from .formats.convert import convert

    if Path(args.output).parent.is_dir():  # convert itself says if it is missing
        make_writable_folder(Path(args.output).parent, "OUT folder")
    report = convert(args.input, args.output, dtype=args.dtype, to=args.to, overwrite=args.overwrite)
    print("\n".join(report.lines()))
    return 0


def command_export(args) -> int:
    from .export.onnx import export_onnx, parse_size, require_onnx

    from .formats.checkpoint import load_model

    require_onnx()  # before minutes of loading and tracing
    size_hw = parse_size(args.size) if args.size else None
    model = load_model(weights_path(args.weights))
    report = export_onnx(model, args.output, size_hw=size_hw, batch=args.batch, opset=args.opset, dtype=args.dtype,
                         overwrite=args.overwrite, memory_check=not args.no_memory_check)
    print("\n".join(report.lines()))
    return 0


def command_serve(args) -> int:
    try:
        import gradio  # noqa: F401  (the optional [web] extra)
    except ImportError:
        from .web import INSTALL_HINT

        print(f"serve needs Gradio: {INSTALL_HINT}", file=sys.stderr)
        return EXIT_USAGE
    from .web.server import ServeOptions, host_warning, serve
    from .web.service import Limits, ModelInfo

    warning = host_warning(args.host)
    if warning:
        print(warning, file=sys.stderr)
    limits = Limits(args.max_upload_mb, int(args.max_megapixels * 1e6), args.max_video_frames, args.max_video_seconds)
    path = weights_path(args.weights)
    model = open_model(args, path)
    parameter = next(model.parameters())
    info = ModelInfo(model.config.variant, path, str(parameter.device), args.dtype, demo=is_demo(path))
    serve(model, info, ServeOptions(host=args.host, port=args.port, limits=limits, queue_size=args.queue_size))
    return 0


def command_download(args) -> int:
    from .formats.weights import download

    path = download(args.variant, args.dir, base_url=args.base_url, quiet=args.quiet)
    print(f"{path}: ready ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


def command_train(args) -> int:
    from .devices import select_device
    from .training.trainer import TrainingError, TrainOptions, train

    if not args.config and not args.init and not args.resume:
        raise UsageError("say what to train: --config NAME (from scratch) or --init CHECKPOINT (fine-tuning)")
    if args.config and args.init:
        raise UsageError("--config and --init exclude each other: fine-tuning keeps the architecture of --init")
    if args.data != "synthetic" and not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data}: not 'synthetic' and not a folder")
    make_writable_folder(Path(args.out).parent, "--out folder")
    options = TrainOptions(
        out=args.out, config=args.config, init=args.init, data=args.data, val_data=args.val_data,
        gt_scale=args.gt_scale, scenes=args.scenes, steps=args.steps, batch_size=args.batch_size,
        accumulate=args.accumulate, size=args.size, lr=args.lr, warmup=args.warmup, seed=args.seed,
        val_every=args.val_every, val_count=args.val_count, save_every=args.val_every,
        device=str(select_device(args.device)), precision=args.precision, workers=args.workers, quiet=args.quiet,
    )
    if options.size % 32:
        raise UsageError(f"--size {options.size}: must be a multiple of 32")
    try:
        result = train(options, resume=args.resume)
    except TrainingError as error:
        raise UsageError(str(error)) from None
    last = result["val"][-1] if result["val"] else {}
    print(f"{args.out}: {result['steps']} steps in {result['seconds'] / 60:.1f} min "
          f"({result['images_per_second']:.1f} images/s); val AbsRel {last.get('absrel', float('nan')):.4f}, "
          f"delta1 {last.get('delta1', float('nan')):.4f}", file=sys.stderr)
    return 0


def command_eval(args) -> int:
    from .jobs.evaluate import EvalOptions, load_samples, run_evaluation
    from .jobs.images import report_error
    from .training.datasets import DataError

    options = EvalOptions(data=args.data, split=args.split, count=args.count, scene_size=args.scene_size,
                          gt_scale=args.gt_scale, square=args.square, size=args.size, max_depth=args.max_depth,
                          batch_size=args.batch_size, json=args.json, quiet=args.quiet)
    try:
        samples, problems = load_samples(options)
    except DataError as error:
        raise UsageError(str(error)) from None
    for line in problems:
        report_error(line)
    path = weights_path(args.weights, quiet=args.quiet)
    result = run_evaluation(open_model(args, path), path, samples, options)
    mean, baseline = result["mean"], result["baseline"]
    print(f"{len(samples)} images: AbsRel {mean['absrel']:.4f}, delta1 {mean['delta1']:.4f} "
          f"(row-gradient baseline: AbsRel {baseline['absrel']:.4f}, delta1 {baseline['delta1']:.4f})")
    return 0


# ----------------------------------------------------------------------------- parser


def add_model_arguments(parser):
    parser.add_argument("--weights", "-w", help="checkpoint file (default: the checkpoint in $MUGGLED_SWINV2_WEIGHTS, "
                        "./weights or the cache folder ~/.cache/muggled_swinv2, looked for in that order; else the demo model)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--dtype", default="float32", choices=DTYPE_NAMES, help="precision (float16: CUDA only)")


def add_prediction_arguments(parser):
    parser.add_argument("--colormap", default="inferno", choices=COLORMAPS,
                        help="colours of the depth map, bright = near (default: inferno; gray writes a 1-channel PNG)")
    parser.add_argument("--side-by-side", action="store_true", help="put the picture left of its depth")
    preprocessing = parser.add_mutually_exclusive_group()
    preprocessing.add_argument("--square", action="store_true", help="MiDaS's exact pipeline: squash to the native square")
    preprocessing.add_argument("--size", type=positive_int, help="long side fed to the network (default: native size)")
    parser.add_argument("--batch-size", type=positive_int, default=1, help="images or frames per forward pass")
    parser.add_argument("--no-memory-check", action="store_true",
                        help="run even where the memory estimate says it will not fit (default: refuse, naming "
                             "the largest --size that fits)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing outputs that this tool wrote (never anyone else's file)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary (errors still shown)")
    parser.add_argument("--engine", default="torch", choices=ENGINES,
                        help="torch (default), or onnx: the same network exported to ONNX Runtime, CPU float32 "
                             "(the [onnx] extra; exported once per network size into a cache folder, see README)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muggled-swinv2", description="SwinV2-DPT (MiDaS v3.1) monocular depth estimation")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    image = commands.add_parser("image", help="depth maps for image files, folders or glob patterns")
    image.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    image.add_argument("--out", "-o", default="outputs", help="output folder (default: outputs)")
    image.add_argument("--recursive", "-r", action="store_true", help="also look in sub-folders")
    image.add_argument("--raw", type=raw_formats, metavar="FORMATS",
                       help=f"also write float depth, comma separated: {','.join(RAW_FORMATS)} "
                       "(ply: coloured point cloud, mesh: coloured triangle mesh <stem>_mesh.ply)")
    image.add_argument("--range", type=value_range, metavar="LOW,HIGH",
                       help="colour range of the maps (and of png16): inverse depth values, the same for every "
                            "image so that maps compare, or percentiles of each map, e.g. 2%%,98%% "
                            "(default: each map's own min and max)")
    image.add_argument("--invert", action="store_true", help="far is bright (default: near is bright)")
    image.add_argument("--fov", type=field_of_view, default=60.0, metavar="DEG",
                       help="ply/mesh: horizontal field of view of the camera in degrees (default 60)")
    image.add_argument("--depth-range", type=depth_range, default=(1.0, 10.0), metavar="NEAR,FAR",
                       help="ply/mesh: the inverse-depth range is mapped onto [1/FAR, 1/NEAR] (default 1,10)")
    image.add_argument("--point-step", type=positive_int, default=1, metavar="N",
                       help="ply/mesh: one point per N x N pixels (default 1)")
    add_prediction_arguments(image)
    add_model_arguments(image)
    cluster = image.add_argument_group("on a Ray cluster (the [ray] extra)")
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
    image.set_defaults(run=command_image)

    video = commands.add_parser("video", help="depth video of a video file")
    video.add_argument("input", metavar="INPUT", help="video file")
    video.add_argument("--out", "-o", required=True, help="output video (.mp4, .m4v, .mov, .avi or .mkv)")
    video.add_argument("--raw", choices=["npz"], help="also write the float depth frames beside OUT, as .npz (depth.mp4 -> depth.npz)")
    video.add_argument("--per-frame-range", action="store_true",
                       help="colour each frame by its own min/max (default: a smooth running range)")
    video.add_argument("--stabilize", action=argparse.BooleanOptionalAction, default=True,
                       help="put all frames on one depth scale and shift, fitted on what did not move, reset at "
                            "scene cuts (default: on; the npz keeps each frame's scale and shift)")
    add_prediction_arguments(video)
    add_model_arguments(video)
    video.set_defaults(run=command_video)

    info = commands.add_parser("info", help="describe a checkpoint or an exported .onnx file")
    info.add_argument("weights", nargs="?", help="checkpoint or .onnx file (default: the checkpoint found, see --weights of image)")
    info.set_defaults(run=command_info)

    conversion = commands.add_parser("convert", help="convert a checkpoint to our safetensors format (or to Hugging Face's)")
    conversion.add_argument("input", metavar="IN", help="MiDaS .pt, our .safetensors, or a Hugging Face model (folder or file)")
    conversion.add_argument("output", metavar="OUT", help="file to write (.safetensors), or a folder with --to hf")
    conversion.add_argument("--dtype", default="float32", choices=DTYPE_NAMES,
                            help="precision stored (float32 keeps the outputs bit for bit)")
    conversion.add_argument("--to", default="muggled", choices=CONVERT_TARGETS,
                            help="muggled: our single-file format (default); hf: a transformers model folder")
    conversion.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (never the input)")
    conversion.set_defaults(run=command_convert)

    export = commands.add_parser("export", help="export the network to ONNX, checked by ONNX Runtime ([onnx] extra)")
    export.add_argument("weights", metavar="W", help="checkpoint")
    export.add_argument("output", metavar="OUT", help=".onnx file to write")
    export.add_argument("--size", metavar="HxW", help="input size, multiples of 32 (default: the native square)")
    export.add_argument("--batch", default="1", help="batch size N, or 'dynamic' (default 1)")
    export.add_argument("--opset", type=positive_int, default=18, help="ONNX opset, 18 to 23 (default 18)")
    export.add_argument("--dtype", default="float32", choices=["float32", "float16"],
                        help="float16: the decoder's weights in half precision (the encoder stays float32)")
    export.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    export.add_argument("--no-memory-check", action="store_true",
                        help="export even where the memory estimate says the check at --size will not fit")
    export.set_defaults(run=command_export)

    training = commands.add_parser("train", help="train a depth model: from scratch (--config) or fine-tuning (--init)")
    training.add_argument("--out", "-o", required=True, help="weights to write (our .safetensors); the training state goes to OUT.state.pt")
    training.add_argument("--config", help="small architecture to train from scratch: micro (the demo model's) or nano")
    training.add_argument("--init", help="checkpoint to fine-tune (MiDaS .pt, Hugging Face or ours); its architecture is kept")
    training.add_argument("--data", default="synthetic", help="'synthetic' (rendered scenes) or a folder with images/ and depth/ (or disparity/)")
    training.add_argument("--val-data", help="folder of validation pairs (default: the synthetic validation split, or every 10th pair of --data)")
    training.add_argument("--gt-scale", type=float, default=1.0, help="16-bit PNG ground truth is divided by this (e.g. 1000 for millimetres)")
    training.add_argument("--scenes", type=positive_int, default=3000, help="synthetic training scenes to render (default 3000)")
    training.add_argument("--steps", type=positive_int, default=1000, help="optimizer steps (default 1000)")
    training.add_argument("--batch-size", type=positive_int, default=8, help="crops per micro-batch (default 8)")
    training.add_argument("--accumulate", type=positive_int, default=1, help="micro-batches per step (gradient accumulation)")
    training.add_argument("--size", type=positive_int, default=192, help="side of the square training crops, a multiple of 32 (default 192)")
    training.add_argument("--lr", type=float, default=5e-4, help="peak learning rate of AdamW (default 5e-4)")
    training.add_argument("--warmup", type=int, default=200, help="linear warm-up steps before the cosine decay (default 200)")
    training.add_argument("--seed", type=int, default=0, help="same seed and data -> same weights on the CPU")
    training.add_argument("--val-every", type=positive_int, default=250, help="validate (and save) every N steps")
    training.add_argument("--val-count", type=positive_int, default=48, help="validation images (default 48)")
    training.add_argument("--resume", action="store_true", help="continue from OUT.state.pt")
    training.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    training.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                          help="mixed precision of the passes; auto: bfloat16 where the GPU or CPU has it natively, "
                               "else float32 (float16, CUDA only, risks overflow in the SwinV2 encoder); "
                               "weights, optimizer and loss stay float32")
    training.add_argument("--workers", type=count_int, help="processes making batches ahead, 0 for none "
                          "(default: none on a CPU, which the model needs whole; up to 8 beside a GPU); same batches either way")
    training.add_argument("--quiet", "-q", action="store_true")
    training.set_defaults(run=command_train)

    evaluation = commands.add_parser("eval", help="AbsRel and delta1 of a model on depth ground truth (the MiDaS protocol)")
    evaluation.add_argument("--data", default="synthetic", help="'synthetic' (rendered test scenes) or a folder with images/ and depth/ (or disparity/)")
    evaluation.add_argument("--split", default="test", choices=["test", "val"], help="synthetic split (default test)")
    evaluation.add_argument("--count", type=positive_int, default=200, help="images to score (default 200)")
    evaluation.add_argument("--scene-size", type=positive_int, default=256, help="side of the rendered synthetic scenes")
    evaluation.add_argument("--gt-scale", type=float, default=1.0, help="16-bit PNG ground truth is divided by this")
    evaluation.add_argument("--max-depth", type=float, help="aligned depth is capped here (default: 80 for synthetic scenes, else each image's largest ground-truth depth)")
    evaluation.add_argument("--json", help="write per-image and mean scores to this JSON file")
    eval_preprocessing = evaluation.add_mutually_exclusive_group()
    eval_preprocessing.add_argument("--square", action="store_true", help="MiDaS's exact pipeline: squash to the native square")
    eval_preprocessing.add_argument("--size", type=positive_int, help="long side fed to the network (default: native size)")
    evaluation.add_argument("--batch-size", type=positive_int, default=4)
    evaluation.add_argument("--quiet", "-q", action="store_true")
    add_model_arguments(evaluation)
    evaluation.set_defaults(run=command_eval)

    commands.add_parser("bench", help="speed and memory benchmark (see `muggled-swinv2 bench --help`)", add_help=False)

    web = commands.add_parser("serve", help="local web app: drop a picture or a video, get its depth (needs the [web] extra)")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    web.add_argument("--port", type=positive_int, default=7860)
    web.add_argument("--max-upload-mb", type=positive_float, default=25.0, help="largest upload, in MB (default 25)")
    web.add_argument("--max-megapixels", type=positive_float, default=25.0, help="largest picture (default 25)")
    web.add_argument("--max-video-frames", type=positive_int, default=900, help="longest video, in frames (default 900)")
    web.add_argument("--max-video-seconds", type=positive_float, default=60.0, help="longest video, in seconds (default 60)")
    web.add_argument("--queue-size", type=positive_int, default=64, help="requests that may wait for the model (default 64)")
    add_model_arguments(web)
    web.set_defaults(run=command_serve)

    fetch = commands.add_parser("download", help="fetch an official MiDaS v3.1 checkpoint into the cache folder "
                                "(~/.cache/muggled_swinv2), where every command finds it")
    fetch.add_argument("variant", nargs="?", default="tiny", choices=OFFICIAL_FILES,
                       help="which release: " + ", ".join(f"{name} ({file})" for name, file in OFFICIAL_FILES.items())
                       + " (default: tiny)")
    fetch.add_argument("--dir", help="folder to save into (default: $XDG_CACHE_HOME/muggled_swinv2, "
                       "else ~/.cache/muggled_swinv2)")
    fetch.add_argument("--base-url", default=RELEASE_URL, help=f"mirror to download from (default: {RELEASE_URL})")
    fetch.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    fetch.set_defaults(run=command_download)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own parser, and its heavy imports, only when asked for
        try:
            from .jobs.bench import main as bench_main

            return bench_main(argv[1:])
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    args = build_parser().parse_args(argv)
    try:
        from .io.images import silence_opencv

        silence_opencv()
        return args.run(args)
    except KeyboardInterrupt:  # also while PyTorch is still being imported
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:  # a file or folder the command could not write or read
        print(f"error: {os_error_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        if not isinstance(error, expected_errors()):
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


def run_and_exit(argv=None):
    """The console script and `python -m muggled_swinv2`: main(), then exit.

    gc.freeze() first: the interpreter's last garbage collection walks every object PyTorch (and
    Ray) made, which took 0.3 s of a command's exit (0.6 s with Ray) on the 2-core machine. By
    then every output is written and closed; nothing frozen needs a finaliser."""
    code = main(argv)
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run_and_exit()
