"""How much video depth flickers, on synthetic clips with exact depth (synthetic/scenes.py).

Two clips of one indoor scene:
- `still_clip`: a still camera; the light moves, the exposure hunts and flickers, the colour
  balance wanders and every frame gets fresh sensor noise. The true depth never changes.
- `moving_clip`: a camera tracking slowly sideways (a fixed step along the world x axis). Planes
  parallel to the motion (floor, ceiling, back wall) keep their depth at every pixel while their
  texture slides past; side walls and object edges change.

Measures, for a sequence of predictions (relative inverse depth):
- flicker: over consecutive frames, the mean |d_t - d_(t-1)| over the pixels whose true depth did
  not change (relative change under 1e-4, sky excluded), divided by the range of the prediction
  (the median over frames of its 1st-99th percentile spread), averaged over the frame pairs. Scale
  free: a sequence and any one affine map of it give the same figure.
- per-frame AbsRel: the MiDaS protocol (evaluation/metrics.py) on each frame, averaged.
"""

from dataclasses import dataclass

import numpy as np

from ..synthetic.scenes import describe_scene, render
from .metrics import score_depth, valid_depth_mask

UNCHANGED = 1e-4  # relative change of true depth below which a pixel "did not change"


def indoor_scene(seed: int):
    """The first indoor scene (room or corridor: no sky) at or after `seed`, and its seed."""
    while True:
        description = describe_scene(np.random.default_rng(seed))
        if not description.outdoor:
            return description, seed
        seed += 1


def to_uint8(image: np.ndarray, rng: np.random.Generator, gain: float, cast: np.ndarray, noise: float) -> np.ndarray:
    image = image * gain * cast + rng.normal(0, noise, image.shape).astype(np.float32)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def still_clip(seed: int = 2_000_000, frames: int = 24, size_hw=(192, 256), noise: float = 0.02):
    """(BGR uint8 frames, true depths) of a still camera under changing light (see the module docstring)."""
    description, _ = indoor_scene(seed)
    rng = np.random.default_rng(seed + 7)
    light = description.light_direction.copy()
    images, depths = [], []
    for index in range(frames):
        phase = 2 * np.pi * index / frames
        turned = np.array([light[0] + 0.6 * np.cos(phase), light[1], light[2] + 0.6 * np.sin(phase)], np.float32)
        description.light_direction = turned / np.linalg.norm(turned)
        image, depth = render(description, size_hw)
        gain = 1.0 + 0.25 * np.sin(2 * phase) + rng.normal(0, 0.05)  # auto-exposure hunting, mains flicker
        cast = rng.uniform(0.95, 1.05, 3).astype(np.float32)
        images.append(to_uint8(image, rng, gain, cast, noise))
        depths.append(depth)
    return images, depths


def moving_clip(seed: int = 2_000_000, frames: int = 24, size_hw=(192, 256), step: float = 0.02, noise: float = 0.01):
    """(BGR uint8 frames, true depths) of a camera moving `step` metres sideways per frame."""
    description, _ = indoor_scene(seed)
    rng = np.random.default_rng(seed + 11)
    start = description.camera.x - step * frames / 2
    images, depths = [], []
    for index in range(frames):
        description.camera.x = start + step * index
        image, depth = render(description, size_hw)
        images.append(to_uint8(image, rng, 1.0, np.ones(3, np.float32), noise))
        depths.append(depth)
    return images, depths


def unchanged_pixels(depth_before: np.ndarray, depth_after: np.ndarray) -> np.ndarray:
    """Pixels with a valid true depth in both frames that changed by less than UNCHANGED (relative)."""
    valid = valid_depth_mask(depth_before) & valid_depth_mask(depth_after)
    change = np.abs(np.where(valid, depth_after - depth_before, np.inf))
    return valid & (change <= UNCHANGED * np.where(valid, depth_before, 0))


def prediction_range(predictions, depths) -> float:
    spreads = []
    for prediction, depth in zip(predictions, depths):
        values = prediction[valid_depth_mask(depth)]
        low, high = np.percentile(values, [1, 99]) if values.size else (0.0, 0.0)
        spreads.append(high - low)
    return float(np.median(spreads))


def flicker(predictions, depths) -> float:
    """Mean over consecutive frames of the mean |change| where the true depth did not change, as a
    fraction of the prediction's range (see the module docstring)."""
    scale = prediction_range(predictions, depths)
    changes = []
    for index in range(1, len(predictions)):
        still = unchanged_pixels(depths[index - 1], depths[index])
        if still.any():
            changes.append(np.abs(predictions[index][still].astype(np.float64) - predictions[index - 1][still]).mean())
    if not changes or not scale > 0:
        return float("nan")
    return float(np.mean(changes) / scale)


def mean_absrel(predictions, depths) -> float:
    return float(np.mean([score_depth(prediction, depth).absrel for prediction, depth in zip(predictions, depths)]))


@dataclass
class FlickerRow:
    clip: str
    frames: int
    still_fraction: float  # of the valid pixels, the share whose true depth did not change
    flicker_raw: float
    flicker_stable: float
    absrel_raw: float
    absrel_stable: float
    resets: int  # stabiliser resets after the first frame

    def cells(self) -> list[str]:
        ratio = self.flicker_raw / self.flicker_stable if self.flicker_stable > 0 else float("inf")
        worse = self.absrel_stable / self.absrel_raw - 1
        return [self.clip, str(self.frames), f"{self.still_fraction:.0%}", f"{self.flicker_raw:.4f}",
                f"{self.flicker_stable:.4f}", f"{ratio:.1f}x", f"{self.absrel_raw:.4f}", f"{self.absrel_stable:.4f}",
                f"{worse:+.2%}", str(self.resets)]


HEADER = ["clip", "frames", "unchanged px", "flicker raw", "flicker stabilised", "flicker ratio",
          "AbsRel raw", "AbsRel stabilised", "AbsRel change", "resets"]


def score_clip(name: str, raw, stable, depths, resets: int) -> FlickerRow:
    still = [unchanged_pixels(a, b).sum() / max(valid_depth_mask(b).sum(), 1) for a, b in zip(depths, depths[1:])]
    return FlickerRow(name, len(raw), float(np.mean(still)), flicker(raw, depths), flicker(stable, depths),
                      mean_absrel(raw, depths), mean_absrel(stable, depths), resets)


def markdown_table(rows: list[FlickerRow]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)
