#!/usr/bin/env python3
"""Flicker of video depth with and without temporal stabilisation, on synthetic clips with exact depth.

    python benchmarks/video_flicker.py                          # the demo model (or the one in weights/)
    python benchmarks/video_flicker.py --weights weights/dpt_swin2_tiny_256.pt --frames 48 --json flicker.json

Renders four clips of one indoor scene with their true motion (muggled_swinv2/evaluation/flicker.py):
a still camera (moving light, exposure changes, sensor noise), a camera moving sideways, one moving
forward and turning, and a ball crossing in front of a still camera; writes each as a video,
runs the `video` job on it (stabilised, with --raw npz, which holds what gives the raw predictions
back), and prints a Markdown table: flicker (mean change of inverse depth at corresponding points,
less the true change, as a fraction of the range) and per-frame AbsRel (MiDaS protocol), raw and
stabilised.
"""

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from muggled_swinv2.cli import positive_int
from muggled_swinv2.evaluation.flicker import CLIPS, Clip, markdown_table, score_clip
from muggled_swinv2 import CheckpointError, load_model
from muggled_swinv2.formats.weights import WeightsError, resolve_weights
from muggled_swinv2.io.video import VideoError
from muggled_swinv2.jobs.video import VideoJobOptions, run_video_job
from muggled_swinv2.video.depth_npz import recover_raw


def size_hw(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, e.g. 192x256, got {text!r}") from None
    if height < 16 or width < 16:
        raise argparse.ArgumentTypeError(f"{text}: at least 16x16")
    return height, width


def measure(model, name: str, clip: Clip, folder: Path, options: VideoJobOptions):
    source = clip.write_avi(folder / f"{name}.avi")
    target = folder / f"{name}_depth.avi"
    summary = run_video_job(model, source, target, options, quiet=True)
    if summary.frames != len(clip.images):
        raise VideoError(f"{source}: {summary.frames} of {len(clip.images)} frames came back")
    with np.load(target.with_suffix(".npz")) as archive:
        stable = [archive[f"frame_{index:06d}"] for index in range(summary.frames)]
        raw = recover_raw(archive)
    return score_clip(name, raw, stable, clip, summary.resets), summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", "-w", help="checkpoint (default: the one in weights/, else the demo model)")
    parser.add_argument("--frames", type=positive_int, default=24, help="frames per clip (default 24)")
    parser.add_argument("--size", type=size_hw, default=(192, 256), help="clip size HEIGHTxWIDTH (default 192x256)")
    parser.add_argument("--seed", type=int, default=2_000_000, help="first test-split scene to try (indoor ones only)")
    parser.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
    parser.add_argument("--keep", help="folder to keep the clips and depth videos in (default: a temp folder)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        weights = resolve_weights(args.weights)
        model = load_model(weights)
        options = VideoJobOptions(raw_npz=True, stabilize=True)
        rows = []
        with tempfile.TemporaryDirectory() as temp:
            folder = Path(args.keep) if args.keep else Path(temp)
            folder.mkdir(parents=True, exist_ok=True)
            for name, make in CLIPS.items():
                clip = make(args.seed, args.frames, args.size)
                row, summary = measure(model, name.replace(" ", "_"), clip, folder, options)
                row.clip = name
                rows.append(row)
                print(f"{name}: {summary.line()}", file=sys.stderr)
    except (CheckpointError, WeightsError, VideoError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"weights: {weights.name}, {args.frames} frames of {args.size[0]}x{args.size[1]}, scene seed >= {args.seed}")
    print(markdown_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(row) for row in rows], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
