"""`muggled-swinv2 bench`: speed and memory against transformers' DPTForDepthEstimation (jobs/bench/).

Its options' defaults read PyTorch (the thread count), so this module is imported only when
`bench` is the command.
"""

import argparse

import torch

from ..model.config import RELEASES
from .arguments import DTYPE_NAMES, add_overwrite_argument


def count(text: str) -> int:
    """One positive integer (bench's wording of the error, as its tests pin it)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def counts(text: str) -> list[int]:
    """'1,4' -> [1, 4]."""
    try:
        values = [int(value) for value in text.split(",") if value.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def add_arguments(parser):
    parser.description = "Speed and memory against transformers' DPTForDepthEstimation."
    parser.add_argument("--models", default=",".join(RELEASES), help=f"comma-separated: {', '.join(RELEASES)}")
    parser.add_argument("--sizes", help="comma-separated HxW or H (square) or 'native'; default: see module doc")
    parser.add_argument("--batch-sizes", type=counts, help="comma-separated, e.g. 1,4; default: 1,4 (large: 1)")
    parser.add_argument("--repeats", type=count, default=3, help="timed runs per implementation (median)")
    parser.add_argument("--threads", type=count, default=torch.get_num_threads(), help="CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--dtype", default="float32", choices=DTYPE_NAMES)
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--peers", default="transformers",
                        help="comma-separated: transformers (DPTForDepthEstimation), onnxruntime (our exported graph "
                        "in ONNX Runtime, CPU float32; needs the [onnx] extra); default: transformers")
    parser.add_argument("--no-peer", action="store_true", help="measure this project only")
    parser.add_argument("--plain", action="store_true",
                        help="also time our model with its Winograd convolutions off (interleaved): what they buy")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--seed", type=int, default=0, help="of the random weights")
    parser.add_argument("--json", metavar="OUT", help="write the results here")
    add_overwrite_argument(parser, "the --json file")


def run(args) -> int:
    from ..jobs.bench import BenchOptions, run_bench

    return run_bench(BenchOptions(
        models=args.models, sizes=args.sizes, batch_sizes=args.batch_sizes, repeats=args.repeats, threads=args.threads,
        device=args.device, dtype=args.dtype, compile=args.compile, peers=args.peers, no_peer=args.no_peer,
        plain=args.plain, no_memory=args.no_memory, seed=args.seed, json=args.json, overwrite=args.overwrite,
    ))
