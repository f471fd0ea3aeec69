"""Command line: `muggled-swinv2 <command> ...` (also `python -m muggled_swinv2`)."""

import argparse
import sys

from .checkpoint import CheckpointError, load_model


def command_info(args) -> int:
    model = load_model(args.weights)
    config = model.config
    parameters = sum(tensor.numel() for tensor in model.parameters())
    rows = [
        ("file", args.weights),
        ("format", model.checkpoint_format),
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muggled-swinv2", description="SwinV2-DPT monocular depth estimation")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="describe a checkpoint")
    info.add_argument("weights", help="checkpoint file (MiDaS v3.1 SwinV2 .pt)")
    info.set_defaults(run=command_info)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
