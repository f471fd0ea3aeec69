#!/usr/bin/env python3
"""CPU milliseconds per frame of the depth stabiliser, with and without motion compensation.

    python benchmarks/stabilizer_cost.py --frames 24 --height 192 --width 256

On the synthetic clips of muggled_swinv2/evaluation/flicker.py (the true inverse depth with noise
stands in for the model's output: the cost does not depend on the values), times the
stabiliser's call per frame, given the video frame: as shipped (the optical flow on a moving
camera's frames), and with StabilizerSettings(motion=None). The difference is the flow's cost.
CPU time of the process, on one OpenCV thread (its pool's spinning threads would count too), so
that a busy machine does not inflate it.
"""

import argparse
import statistics
import sys
import time

import numpy as np

from muggled_swinv2.cli import positive_int
from muggled_swinv2.evaluation.flicker import moving_clip, still_clip
from muggled_swinv2.video.pipeline import one_opencv_thread
from muggled_swinv2.video.stabilize import DepthStabilizer, StabilizerSettings


def milliseconds_per_frame(settings: StabilizerSettings, pictures, depths, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        stabilizer = DepthStabilizer(settings)
        started = time.process_time()
        for picture, depth in zip(pictures, depths):
            stabilizer(depth, picture)
        times.append((time.process_time() - started) * 1000 / len(pictures))
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=positive_int, default=24)
    parser.add_argument("--height", type=positive_int, default=192)
    parser.add_argument("--width", type=positive_int, default=256)
    parser.add_argument("--rounds", type=positive_int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"stabiliser, CPU ms per frame at {args.height}x{args.width} (median of {args.rounds} rounds)")
    with one_opencv_thread():  # as the video job runs the stabiliser
        for name, make in [("still camera", still_clip), ("moving camera", moving_clip)]:
            clip = make(frames=args.frames, size_hw=(args.height, args.width))
            depths = [(1 / clip_depth + 0.01 * rng.standard_normal(clip_depth.shape)).astype(np.float32) for clip_depth in clip.depths]
            with_motion = milliseconds_per_frame(StabilizerSettings(), clip.images, depths, args.rounds)
            without = milliseconds_per_frame(StabilizerSettings(motion=None), clip.images, depths, args.rounds)
            print(f"  {name}: {with_motion:.1f} with motion compensation, {without:.1f} without, flow {with_motion - without:+.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
