#!/usr/bin/env python3
"""How far does a first-frame calibration drift over a moving clip? Metric video on synthetic clips with exact depth.

    python benchmarks/metric_video_drift.py                 # the demo model, 48 frames of 192x256
    python benchmarks/metric_video_drift.py --frames 24 --json drift.json

For each clip of muggled_swinv2/evaluation/flicker.py with a camera that moves (sideways; forward
and turning) and the still one as a control, the `video` job runs stabilised with metric options
made from the FIRST frame's true depth only: a sparse map of every 8th pixel (the best a
first-frame fit can do) and 8 known points at random pixels. Every frame's metric output (from the
npz: its frame and the fit, clamped as the MiDaS protocol clamps, at the farthest true depth) is
scored by AbsRel against that frame's true depth, next to the best affine fit of that frame to
all its true pixels (the floor: what a perfect per-frame calibration would give). The table gives
the AbsRel on the first frame, the mean over the first and the last quarter of the clip, and the
last frame; drift is the last quarter's excess over the best fit less the first quarter's.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from muggled_swinv2 import load_model
from muggled_swinv2.demo import DEMO_WEIGHTS
from muggled_swinv2.evaluation.flicker import CLIPS
from muggled_swinv2.jobs.metric import MetricOptions
from muggled_swinv2.jobs.video import VideoJobOptions, run_video_job
from muggled_swinv2.scale_shift import fit_scale_shift
from muggled_swinv2.video.depth_npz import read_metric

CLIP_NAMES = ("still camera", "moving camera", "forward and turning")


def absrel(inverse_depth, depth, scale: float, shift: float) -> float:
    """AbsRel of 1 / (scale * d + shift) over the pixels with a true depth, the inverse depth
    clamped at 1 / the farthest true depth (as the protocol clamps; no pixel goes unscored)."""
    valid = np.isfinite(depth) & (depth > 0)
    aligned = np.maximum(scale * inverse_depth[valid].astype(np.float64) + shift, 1.0 / depth[valid].max())
    return float(np.mean(np.abs(1.0 / aligned - depth[valid]) / depth[valid]))


def best_fit(inverse_depth, depth) -> float:
    valid = np.isfinite(depth) & (depth > 0)
    target = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0)
    scale, shift = fit_scale_shift(inverse_depth.astype(np.float64), target, valid)
    return absrel(inverse_depth, depth, scale, shift)


def knowledge(depth, folder: Path, rng) -> dict[str, MetricOptions]:
    """The first frame's calibrations: a sparse map of every 8th pixel, 8 known points."""
    sparse = np.full(depth.shape, np.nan, np.float32)
    sparse[::8, ::8] = depth[::8, ::8]
    np.save(folder / "first_frame_sparse.npy", sparse)
    valid_rows, valid_columns = np.nonzero(np.isfinite(depth) & (depth > 0))
    chosen = rng.choice(len(valid_rows), 8, replace=False)
    points = tuple((float(valid_columns[i]), float(valid_rows[i]), float(depth[valid_rows[i], valid_columns[i]]))
                   for i in chosen)
    return {"sparse map, every 8th px": MetricOptions(sparse_depth=folder / "first_frame_sparse.npy"),
            "8 known points": MetricOptions(known_points=points)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=48, help="frames per clip (default 48)")
    parser.add_argument("--seed", type=int, default=2_000_000, help="first test-split scene to try (indoor ones only)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(DEMO_WEIGHTS)
    rows = []
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        for name in CLIP_NAMES:
            clip = CLIPS[name](args.seed, args.frames, (192, 256))
            source = clip.write_avi(folder / "clip.avi")
            for what, metric in knowledge(clip.depths[0], folder, np.random.default_rng(0)).items():
                target = folder / "depth.avi"
                options = VideoJobOptions(raw_npz=True, stabilize=True, metric=metric, overwrite=True)
                summary = run_video_job(model, source, target, options, quiet=True)
                with np.load(target.with_suffix(".npz")) as archive:
                    frames = [archive[f"frame_{index:06d}"] for index in range(summary.frames)]
                    _, scales, shifts = read_metric(archive)
                calibrated = [absrel(frame, depth, scale, shift)
                              for frame, depth, scale, shift in zip(frames, clip.depths, scales, shifts)]
                best = [best_fit(frame, depth) for frame, depth in zip(frames, clip.depths)]
                quarter = max(1, len(frames) // 4)
                first, last = np.mean(calibrated[:quarter]), np.mean(calibrated[-quarter:])
                drift = (last - np.mean(best[-quarter:])) - (first - np.mean(best[:quarter]))
                rows.append({"clip": name, "calibration": what, "frames": len(frames), "resets": summary.resets,
                             "first_frame": calibrated[0], "first_quarter": first, "last_quarter": last,
                             "last_frame": calibrated[-1], "best_first_quarter": float(np.mean(best[:quarter])),
                             "best_last_quarter": float(np.mean(best[-quarter:])), "drift": float(drift),
                             "per_frame": calibrated, "best_per_frame": best})
                print(f"{name}, {what}: {summary.line()}", file=sys.stderr)
    print(f"demo model, {args.frames} frames of 192x256, scene seed >= {args.seed}; AbsRel of the metric depth\n")
    print("| clip | first-frame calibration | frame 1 | first quarter | last quarter | last frame | best per-frame fit "
          "(first / last quarter) | drift |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['clip']} | {row['calibration']} | {row['first_frame']:.3f} | {row['first_quarter']:.3f} | "
              f"{row['last_quarter']:.3f} | {row['last_frame']:.3f} | {row['best_first_quarter']:.3f} / "
              f"{row['best_last_quarter']:.3f} | {row['drift']:+.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
