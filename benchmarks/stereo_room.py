#!/usr/bin/env python3
"""The stereo warp measured on the independently ray-cast room of the tests (tests/rendered_room.py):
PSNR of the synthesised right eye against the room rendered from the moved camera, on the pixels
both cameras see, with the true depth and with the demo model's; the error on the hole pixels for
the background-side fill and the naive one; the warp's cost per frame against the model's.

    python benchmarks/stereo_room.py

The demo model's relative inverse depth d is put on metres by the least-squares fit 1/z = s d + t
to the true depth (the same fit the metric calibration makes), then warped with f B / z.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the independent renderer
import rendered_room as room  # noqa: E402

from muggled_swinv2 import load_model  # noqa: E402
from muggled_swinv2.formats.weights import resolve_weights  # noqa: E402
from muggled_swinv2.geometry.stereo import (disparity_from_metric_depth, fill_disocclusions,  # noqa: E402
                                             fill_from_neighbours, render_view, sample_view, splat_disparity)
from muggled_swinv2.predict import predict_depth  # noqa: E402
from muggled_swinv2.scale_shift import fit_scale_shift  # noqa: E402

WIDTH, HEIGHT, FOV, BASELINE = 640, 480, 62.0, 0.12


def as_uint8(image_chw):
    return image_chw.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def median_seconds(function, repeats=5):
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    focal = room.focal_px(WIDTH, FOV)
    left, left_depth = room.render(WIDTH, HEIGHT, FOV)
    right, right_depth = room.render(WIDTH, HEIGHT, FOV, camera_x=BASELINE)
    image = torch.from_numpy(left).permute(2, 0, 1).float()
    both_see = room.covisible(left_depth, right_depth, focal, BASELINE)
    true_disparity = disparity_from_metric_depth(torch.from_numpy(left_depth).float(), focal, BASELINE)
    splat = splat_disparity(true_disparity, -1.0)
    filled = fill_disocclusions(splat)

    rows = [("true depth: splat, fill, linear sampling (ours)", sample_view(image, filled, -1.0)),
            ("true depth: the same with whole-pixel moves", sample_view(image, filled.round(), -1.0)),
            ("ideal: sampling with the right eye's own true depth", sample_view(
                image, disparity_from_metric_depth(torch.from_numpy(right_depth).float(), focal, BASELINE), -1.0))]

    model = load_model(resolve_weights(None))
    inverse = predict_depth(model, left[:, :, ::-1].copy())
    scale, shift = fit_scale_shift(inverse, 1 / left_depth)
    model_depth = torch.from_numpy(1 / np.maximum(scale * inverse + shift, 1e-3)).float()
    for dilation in (0, 2):
        rows.append((f"demo model's depth (fitted to metres), dilation {dilation}",
                     render_view(image, disparity_from_metric_depth(model_depth, focal, BASELINE), -1.0, dilation)))
    print(f"co-visible pixels: {both_see.mean():.1%}")
    for name, rendered in rows:
        print(f"{room.psnr(as_uint8(rendered), right, both_see):6.2f} dB  {name}")

    holes = torch.isnan(splat.disparity_hw).numpy() & ~both_see
    holes[:, -40:] = False
    naive = sample_view(image, fill_from_neighbours(splat.disparity_hw, torch.minimum), -1.0)
    for name, rendered in (("ours (the occluder's disparity)", rows[0][1]), ("naive (the background's disparity)", naive)):
        error = np.abs(as_uint8(rendered).astype(float) - right)[holes].mean()
        print(f"hole pixels ({holes.sum()}): mean error {error:.1f} grey levels, {name}")

    for threads in (1, 2):
        torch.set_num_threads(threads)
        for height, width in ((480, 640), (1080, 1920)):
            frame = torch.nn.functional.interpolate(image[None], size=(height, width), mode="bilinear")[0]
            disparity = torch.nn.functional.interpolate(true_disparity[None, None], size=(height, width))[0, 0] * width / WIDTH
            seconds = median_seconds(lambda: render_view(frame, disparity, -1.0, 2))
            print(f"warp {width}x{height}, {threads} thread(s): {1000 * seconds:.0f} ms a frame")
        model_seconds = median_seconds(lambda: predict_depth(model, left[:, :, ::-1].copy()), repeats=3)
        print(f"demo model, 640x480 picture, {threads} thread(s): {1000 * model_seconds:.0f} ms a frame")


if __name__ == "__main__":
    main()
