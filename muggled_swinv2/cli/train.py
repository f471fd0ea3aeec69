"""`muggled-swinv2 train --out OUT`: train a depth model from scratch (--config) or fine-tune one (--init)."""

import sys
from pathlib import Path

from .arguments import UsageError, add_overwrite_argument, add_quiet_argument, count_int, positive_float, positive_int


def add_arguments(parser):
    parser.add_argument("--out", "-o", required=True, help="weights to write (our .safetensors); the training state goes to OUT.state.pt")
    parser.add_argument("--config", help="small architecture to train from scratch: micro (the demo model's) or nano")
    parser.add_argument("--init", help="checkpoint to fine-tune (MiDaS .pt, Hugging Face or ours); its architecture is kept")
    parser.add_argument("--data", default="synthetic", help="'synthetic' (rendered scenes) or a folder with images/ and depth/ (or disparity/)")
    parser.add_argument("--val-data", help="folder of validation pairs (default: the synthetic validation split, or every 10th pair of --data)")
    parser.add_argument("--gt-scale", type=positive_float, default=1.0, help="16-bit PNG ground truth is divided by this (e.g. 1000 for millimetres)")
    parser.add_argument("--scenes", type=positive_int, default=3000, help="synthetic training scenes to render (default 3000)")
    parser.add_argument("--steps", type=positive_int, default=1000, help="optimizer steps (default 1000)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="crops per micro-batch (default 8)")
    parser.add_argument("--accumulate", type=positive_int, default=1, help="micro-batches per step (gradient accumulation)")
    parser.add_argument("--size", type=positive_int, default=192, help="side of the square training crops, a multiple of 32 (default 192)")
    parser.add_argument("--lr", type=positive_float, default=5e-4, help="peak learning rate of AdamW (default 5e-4)")
    parser.add_argument("--warmup", type=count_int, default=200, help="linear warm-up steps before the cosine decay (default 200)")
    parser.add_argument("--seed", type=count_int, default=0, help="same seed and data -> same weights on the CPU")
    parser.add_argument("--val-every", type=positive_int, default=250, help="validate (and save) every N steps")
    parser.add_argument("--val-count", type=positive_int, default=48, help="validation images (default 48)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT.state.pt")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                        help="mixed precision of the passes; auto: bfloat16 where the GPU or CPU has it natively, "
                             "else float32 (float16, CUDA only, risks overflow in the SwinV2 encoder); "
                             "weights, optimizer and loss stay float32")
    parser.add_argument("--workers", type=count_int, help="processes making batches ahead, 0 for none "
                        "(default: none on a CPU, which the model needs whole; up to 8 beside a GPU); same batches either way")
    add_overwrite_argument(parser, "OUT (and OUT.state.pt)")
    add_quiet_argument(parser)


def run(args) -> int:
    from ..devices import select_device
    from ..io.outputs import check_writable_folder
    from ..training.trainer import TrainOptions, train, training_summary

    if not args.config and not args.init and not args.resume:
        raise UsageError("say what to train: --config NAME (from scratch) or --init CHECKPOINT (fine-tuning)")
    if args.config and args.init:
        raise UsageError("--config and --init exclude each other: fine-tuning keeps the architecture of --init")
    if args.data != "synthetic" and not Path(args.data).is_dir():
        raise UsageError(f"--data {args.data}: not 'synthetic' and not a folder")
    check_writable_folder(Path(args.out).parent, "--out folder")
    options = TrainOptions(
        out=args.out, config=args.config, init=args.init, data=args.data, val_data=args.val_data,
        gt_scale=args.gt_scale, scenes=args.scenes, steps=args.steps, batch_size=args.batch_size,
        accumulate=args.accumulate, size=args.size, lr=args.lr, warmup=args.warmup, seed=args.seed,
        val_every=args.val_every, val_count=args.val_count,
        device=str(select_device(args.device)), precision=args.precision, workers=args.workers, quiet=args.quiet,
    )
    if options.size % 32:
        raise UsageError(f"--size {options.size}: must be a multiple of 32")
    result = train(options, resume=args.resume, overwrite=args.overwrite, option_name=flag)
    print(training_summary(args.out, result, flag), file=sys.stderr)
    return 0


def flag(setting: str) -> str:
    """A setting of train() as this command names it: "val_data" -> "--val-data"."""
    return "--" + setting.replace("_", "-")
