#!/usr/bin/env python3
"""How metric is the metric depth? AbsRel of calibrated predictions on rendered rooms with exact depth.

    python benchmarks/metric_fit.py                     # 8 rooms at 320x240, the demo and a random-weight model
    python benchmarks/metric_fit.py --scenes 4 --seeds 5 --json metric.json

For each room of the synthetic test split (muggled_swinv2/synthetic) the model predicts relative
inverse depth; the reference is the best affine fit in inverse depth to ALL true pixels (the MiDaS
protocol's alignment, evaluation/metrics.py). Against it, the calibrations a user can make:
N known points at random pixels (several draws per room), sparse maps of the true depth (every
k-th pixel; with 5% noise; with 20% of the pixels gross outliers) and the true nearest and
farthest distances (--depth-range). Every metric output is scored as the protocol scores the best
fit (inverse depth clamped at 1 / the farthest true depth, AbsRel over all pixels). The table
gives the median AbsRel and its ratio to the best fit's (min-max over rooms and draws).
Last, the focal length: each room's camera written as an integer 35 mm equivalent (as cameras
store it in EXIF) and read back with the CIPA diagonal formula.
"""

import argparse
import json
import math

import numpy as np
import torch

from muggled_swinv2 import (CalibrationError, camera_intrinsics, fit_depth_range, fit_points, fit_sparse_depth,
                            load_model)
from muggled_swinv2.demo import DEMO_WEIGHTS
from muggled_swinv2.evaluation.metrics import score_depth
from muggled_swinv2.geometry import ExifFocal
from muggled_swinv2.model.config import SMALL_CONFIGS
from muggled_swinv2.predict import predict_depth
from muggled_swinv2.reference import native_model, random_midas_state_dict
from muggled_swinv2.scale_shift import fit_scale_shift
from muggled_swinv2.synthetic.scenes import SPLITS, camera_effects, describe_scene, render

SIZE_HW = (240, 320)


def rooms(count: int):
    """(seed, image, depth, camera) of the first `count` rooms of the test split."""
    seed = SPLITS["test"][0]
    while count:
        rng = np.random.default_rng(seed)
        description = describe_scene(rng)
        if description.kind == "room":
            image, depth = render(description, SIZE_HW)
            yield seed, camera_effects(rng, image), depth, description.camera
            count -= 1
        seed += 1


def absrel(inverse_depth, depth, scale: float, shift: float) -> float:
    """AbsRel of 1 / (scale * d + shift), clamped as the protocol clamps (at the farthest true depth)."""
    aligned = np.maximum(scale * inverse_depth.astype(np.float64) + shift, 1.0 / depth.max())
    return float(np.mean(np.abs(1.0 / aligned - depth) / depth))


def sparse_map(depth, step: int, rng, noise: float = 0.0, outliers: float = 0.0):
    sparse = np.full(depth.shape, np.nan)
    sparse[step // 2::step, step // 2::step] = depth[step // 2::step, step // 2::step]
    known = np.isfinite(sparse)
    sparse[known] *= rng.normal(1.0, noise, known.sum()) if noise else 1.0
    wrong = known & (rng.random(depth.shape) < outliers)
    sparse[wrong] *= rng.uniform(0.3, 3.0, wrong.sum())
    return sparse


def calibrations(inverse_depth, depth, room: int, seeds: int):
    """{row name: [(scale, shift) or None where the fit refused]}."""
    height, width = depth.shape
    rows = {}
    for count in (2, 4, 6, 8):
        fits = []
        for seed in range(seeds):
            rng = np.random.default_rng((room, seed))
            pixels = rng.choice(height * width, count, replace=False)
            points = [(pixel % width, pixel // width, depth.flat[pixel]) for pixel in pixels]
            fits.append(refused_or(fit_points, inverse_depth, points))
        rows[f"{count} known points"] = fits
    for name, step, noise, outliers in [("sparse, every 4th pixel", 4, 0, 0), ("sparse, every 8th pixel", 8, 0, 0),
                                        ("sparse, every 16th pixel", 16, 0, 0),
                                        ("sparse, every 8th, 5% noise", 8, 0.05, 0),
                                        ("sparse, every 8th, 20% outliers", 8, 0, 0.2)]:
        sparse = sparse_map(depth, step, np.random.default_rng(0), noise, outliers)
        rows[name] = [refused_or(fit_sparse_depth, inverse_depth, sparse)]
    rows["true nearest and farthest (--depth-range)"] = [
        refused_or(fit_depth_range, inverse_depth, float(depth.min()), float(depth.max()))]
    return rows


def refused_or(fit, *args):
    """(scale, shift) of a calibration, None where it refuses (a fit that contradicts the prediction)."""
    try:
        calibration = fit(*args)
    except CalibrationError:
        return None
    return calibration.scale, calibration.shift


def measure(model, scenes, seeds: int) -> tuple[dict, list, list]:
    """The table's cells, the best fit's AbsRel per room, the rooms whose best fit has scale <= 0
    (the model orders them wrongly: every calibration refuses there, and they are left out)."""
    table, best, wrong_order = {}, [], []
    for room, image, depth, _ in scenes:
        with torch.inference_mode():
            inverse_depth = predict_depth(model, image)
        if not fit_scale_shift(inverse_depth, 1.0 / depth)[0] > 0:
            wrong_order.append(room)
            continue
        reference = score_depth(inverse_depth, depth).absrel
        best.append(reference)
        for name, fits in calibrations(inverse_depth, depth, room, seeds).items():
            scores = table.setdefault(name, {"absrel": [], "ratio": [], "refused": 0})
            for fit in fits:
                if fit is None:
                    scores["refused"] += 1
                    continue
                value = absrel(inverse_depth, depth, *fit)
                scores["absrel"].append(value)
                scores["ratio"].append(value / reference)
    return table, best, wrong_order


def markdown(results: dict) -> str:
    models = list(results)
    lines = ["| what is known | " + " | ".join(f"{model}: AbsRel, x best fit (min-max)" for model in models) + " |",
             "|---|" + "---|" * len(models)]
    cells = {model: [f"{np.median(results[model]['best']):.3f}, 1"] for model in models}
    names = ["best affine fit to all pixels"]
    for name in results[models[0]]["table"]:
        names.append(name)
        for model in models:
            scores = results[model]["table"][name]
            ratio = scores["ratio"]
            refused = f" ({scores['refused']} refused)" if scores["refused"] else ""
            cells[model].append(f"{np.median(scores['absrel']):.3f}, {np.median(ratio):.2f}x "
                                f"({min(ratio):.2f}-{max(ratio):.2f}){refused}")
    for index, name in enumerate(names):
        lines.append(f"| {name} | " + " | ".join(cells[model][index] for model in models) + " |")
    return "\n".join(lines)


def exif_focal_errors(scenes) -> list[float]:
    """Relative error of fx read from an integer 35 mm equivalent, per room."""
    height, width = SIZE_HW
    errors = []
    for _, _, _, camera in scenes:
        true_fx = camera.focal(width)
        focal_35mm = round(true_fx * math.hypot(36, 24) / math.hypot(width, height))
        fx = camera_intrinsics(width, height, exif=ExifFocal(focal_35mm=focal_35mm)).fx
        errors.append(abs(fx / true_fx - 1))
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=8, help="rooms of the test split (default 8)")
    parser.add_argument("--seeds", type=int, default=10, help="random draws of the known points per room (default 10)")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    torch.manual_seed(0)
    scenes = list(rooms(args.scenes))
    models = {"demo model": load_model(DEMO_WEIGHTS),
              "random weights": native_model(random_midas_state_dict(SMALL_CONFIGS["micro"]))}
    results = {}
    for name, model in models.items():
        table, best, wrong_order = measure(model, scenes, args.seeds)
        results[name] = {"best": best, "table": table, "wrong_order": wrong_order}
    print(f"{len(scenes)} rooms ({SIZE_HW[1]}x{SIZE_HW[0]}, test seeds {[scene[0] for scene in scenes]}), "
          f"{args.seeds} draws of the known points per room")
    print(markdown(results))
    for name, result in results.items():
        if result["wrong_order"]:
            print(f"{name}: left out {len(result['wrong_order'])} rooms whose best fit has scale <= 0 "
                  f"(seeds {result['wrong_order']})")
    errors = exif_focal_errors(scenes)
    print(f"\nfx from an integer EXIF 35 mm equivalent: error {100 * np.median(errors):.2f}% median, "
          f"{100 * max(errors):.2f}% at most")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"results": results, "exif_focal_errors": errors}, file, indent=1)


if __name__ == "__main__":
    main()
