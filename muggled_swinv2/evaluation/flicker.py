"""How much video depth flickers, on synthetic clips with exact depth and exact motion (synthetic/scenes.py).

Clips of one indoor scene, each with the true motion of every pixel (`TrueMotion`):
- `still_clip`: a still camera; the light moves, the exposure hunts and flickers, the colour
  balance wanders and every frame gets fresh sensor noise. The true depth never changes.
- `moving_clip`: a camera tracking slowly sideways (a fixed step along the world x axis).
- `turning_clip`: a camera moving forward and turning (yaw) a little every frame: every depth
  changes, the view slides and grows.
- `object_clip`: a still camera and a ball rolling across the view in front of the room.

Measures, for a sequence of predictions (relative inverse depth):
- flicker: over consecutive frames, the mean change of the prediction at corresponding points
  (each pixel of frame t against where the same surface point was in frame t-1, sampled there),
  less the change of its true inverse depth (the point's depth changes when the camera moves
  towards it) on the prediction's scale, over the points seen in both frames; divided by the range
  of the prediction (the median over frames of its 1st-99th percentile spread), averaged over the
  frame pairs. The prediction's scale is one least-squares gain of prediction against true inverse
  depth over the whole clip. Scale free: a sequence and any one affine map of it give the same
  figure; on a still camera it is the plain mean |d_t - d_(t-1)|, so a moving clip's figure means
  what a still one's does. Without the motions (`flicker(predictions, depths)`), only the pixels
  whose true depth did not change (relative change under 1e-4) are compared, in place.
- per-frame AbsRel: the MiDaS protocol (evaluation/metrics.py) on each frame, averaged.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..scale_shift import fit_scale_shift
from ..synthetic.scenes import Camera, Surface, describe_scene, render, sphere
from .metrics import score_depth, valid_depth_mask

UNCHANGED = 1e-4  # relative change of true depth below which a pixel "did not change"
SEEN = 0.01  # relative depth mismatch above which a projected point is hidden in the other frame


@dataclass
class TrueMotion:
    """Where each pixel of frame t was in frame t-1, from the scene's geometry."""

    previous_xy: np.ndarray  # float32 (H, W, 2): column, row of the same surface point in frame t-1
    previous_inverse_depth: np.ndarray  # float32 (H, W): 1 / that point's depth in camera t-1
    seen: np.ndarray  # bool (H, W): the point is in both frames (inside, not hidden, not sky)


@dataclass
class Clip:
    images: list  # BGR uint8 (H, W, 3) frames
    depths: list  # float32 (H, W) true depth, inf = sky
    motions: list  # TrueMotion per frame from the second on (len(images) - 1)

    def write_avi(self, path: Path, fps: float = 15.0) -> Path:
        """The frames as a Motion-JPEG .avi at `path` (by OpenCV): the video the benchmarks give
        the `video` job. Returns `path`."""
        height, width = self.images[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
        for image in self.images:
            writer.write(image)
        writer.release()
        return path


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


def true_motion(before: Camera, after: Camera, depth_before: np.ndarray, depth_after: np.ndarray,
                moved: np.ndarray | None = None, displacement: np.ndarray | None = None) -> TrueMotion:
    """The motion of every pixel of the `after` frame back to the `before` frame; the pixels in
    `moved` (bool (H, W)) belong to an object that moved by `displacement` (world, metres)."""
    size_hw = depth_after.shape
    origin, directions = after.rays(size_hw)
    finite = np.isfinite(depth_after).ravel()
    points = origin + np.where(finite, depth_after.ravel(), 0)[:, None] * directions
    if moved is not None:
        points[moved.ravel()] -= displacement
    column, row, depth = before.project(points, size_hw)
    height, width = size_hw
    inside = finite & (depth > 0) & (column >= -0.5) & (column <= width - 0.5) & (row >= -0.5) & (row <= height - 0.5)
    previous_xy = np.stack([column, row], axis=1).reshape(height, width, 2).astype(np.float32)
    depth_there = cv2.remap(np.where(np.isfinite(depth_before), depth_before, 0).astype(np.float32),
                            previous_xy[..., 0], previous_xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).ravel()
    seen = inside & (np.abs(depth_there - depth) <= SEEN * depth)  # near a depth edge the sample disagrees too
    with np.errstate(divide="ignore"):
        inverse = np.where(seen, 1 / depth, 0).astype(np.float32)
    return TrueMotion(previous_xy, inverse.reshape(size_hw), seen.reshape(size_hw))


def camera_clip(description, cameras: list[Camera], size_hw, noise: float, seed: int) -> Clip:
    """The scene seen from each camera in turn, under a steady light, with fresh sensor noise."""
    rng = np.random.default_rng(seed)
    images, depths, motions = [], [], []
    for index, camera in enumerate(cameras):
        description.camera = camera
        image, depth = render(description, size_hw)
        images.append(to_uint8(image, rng, 1.0, np.ones(3, np.float32), noise))
        depths.append(depth)
        if index:
            motions.append(true_motion(cameras[index - 1], camera, depths[-2], depth))
    return Clip(images, depths, motions)


def still_clip(seed: int = 2_000_000, frames: int = 24, size_hw=(192, 256), noise: float = 0.02) -> Clip:
    """A still camera under changing light (see the module docstring)."""
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
    camera = description.camera
    return Clip(images, depths, [true_motion(camera, camera, before, after) for before, after in zip(depths, depths[1:])])


def moving_clip(seed: int = 2_000_000, frames: int = 24, size_hw=(192, 256), step: float = 0.02, noise: float = 0.01) -> Clip:
    """A camera moving `step` metres sideways per frame ("moving camera")."""
    description, _ = indoor_scene(seed)
    start = description.camera
    cameras = [Camera(**{**vars(start), "x": start.x + step * (index - frames / 2)}) for index in range(frames)]
    return camera_clip(description, cameras, size_hw, noise, seed + 11)


def turning_clip(seed: int = 2_000_000, frames: int = 24, size_hw=(192, 256), step: float = 0.02,
                 turn: float = 0.01, noise: float = 0.01) -> Clip:
    """A camera moving `step` metres forward and turning `turn` radians (yaw) per frame."""
    description, _ = indoor_scene(seed)
    start = description.camera
    cameras = []
    for index in range(frames):
        yaw = start.yaw + turn * (index - frames / 2)
        travelled = step * index
        cameras.append(Camera(**{**vars(start), "yaw": yaw, "x": start.x + travelled * np.sin(yaw),
                                 "z": start.z + travelled * np.cos(yaw)}))
    return camera_clip(description, cameras, size_hw, noise, seed + 13)


def object_clip(seed: int = 2_000_000, frames: int = 24, size_hw=(192, 256), distance: float = 2.0,
                radius: float = 0.35, noise: float = 0.01) -> Clip:
    """A still camera and a plain ball crossing 80% of the view, `distance` metres ahead."""
    description, _ = indoor_scene(seed)
    camera = description.camera
    rng = np.random.default_rng(seed + 17)
    rotation = camera.rotation()
    ahead = np.array([camera.x, camera.height, camera.z], np.float32) + distance * rotation[:, 2]
    across = 0.8 * distance * np.tan(np.radians(camera.fov_deg) / 2)
    step = rotation[:, 0] * (2 * across / max(frames - 1, 1))
    plain = np.full((8, 8, 3), rng.uniform(0.3, 0.9, 3), np.float32)
    room = list(description.surfaces)
    origin, directions = camera.rays(size_hw)
    images, depths, motions = [], [], []
    for index in range(frames):
        centre = ahead + rotation[:, 0] * (-across) + step * index
        ball = sphere(centre, radius)
        description.surfaces = room + [Surface(ball, plain, 1.0)]
        image, depth = render(description, size_hw)
        images.append(to_uint8(image, rng, 1.0, np.ones(3, np.float32), noise))
        depths.append(depth)
        if index:
            on_ball = (ball(origin, directions)[0] == depth.ravel()).reshape(size_hw)
            motions.append(true_motion(camera, camera, depths[-2], depth, on_ball, step))
    description.surfaces = room
    return Clip(images, depths, motions)


CLIPS = {"still camera": still_clip, "moving camera": moving_clip, "forward and turning": turning_clip,
         "object crossing": object_clip}


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


def prediction_gain(predictions, depths) -> float:
    """One least-squares scale of the predictions against the true inverse depth, over the clip."""
    valid = np.concatenate([valid_depth_mask(depth).ravel() for depth in depths])
    predicted = np.concatenate([prediction.ravel() for prediction in predictions])
    with np.errstate(divide="ignore"):
        inverse = np.concatenate([np.where(valid_depth_mask(depth), 1 / depth, 0).ravel() for depth in depths])
    return fit_scale_shift(inverse, predicted, valid)[0]


def flicker(predictions, depths, motions: list[TrueMotion] | None = None) -> float:
    """Mean over consecutive frames of the mean unexplained change at corresponding points (with
    `motions`), or of the mean |change| where the true depth did not change (without), as a
    fraction of the prediction's range (see the module docstring)."""
    scale = prediction_range(predictions, depths)
    gain = prediction_gain(predictions, depths) if motions is not None else 0.0
    changes = []
    for index in range(1, len(predictions)):
        now = predictions[index].astype(np.float64)
        if motions is None:
            compared = unchanged_pixels(depths[index - 1], depths[index])
            before = predictions[index - 1].astype(np.float64)
            expected = 0.0
        else:
            motion = motions[index - 1]
            compared = motion.seen
            xy = motion.previous_xy
            before = cv2.remap(predictions[index - 1].astype(np.float32), xy[..., 0], xy[..., 1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
            with np.errstate(divide="ignore"):
                expected = gain * (np.where(compared, 1 / depths[index], 0) - motion.previous_inverse_depth)
        if compared.any():
            changes.append(np.abs(now - before - expected)[compared].mean())
    if not changes or not scale > 0:
        return float("nan")
    return float(np.mean(changes) / scale)


def mean_absrel(predictions, depths) -> float:
    return float(np.mean([score_depth(prediction, depth).absrel for prediction, depth in zip(predictions, depths)]))


@dataclass
class FlickerRow:
    clip: str
    frames: int
    tracked_fraction: float  # of the valid pixels, the share seen in the frame before too
    flicker_raw: float
    flicker_stable: float
    absrel_raw: float
    absrel_stable: float
    resets: int  # stabiliser resets after the first frame

    def cells(self) -> list[str]:
        ratio = self.flicker_raw / self.flicker_stable if self.flicker_stable > 0 else float("inf")
        worse = self.absrel_stable / self.absrel_raw - 1
        return [self.clip, str(self.frames), f"{self.tracked_fraction:.0%}", f"{self.flicker_raw:.4f}",
                f"{self.flicker_stable:.4f}", f"{ratio:.1f}x", f"{self.absrel_raw:.4f}", f"{self.absrel_stable:.4f}",
                f"{worse:+.2%}", str(self.resets)]


HEADER = ["clip", "frames", "tracked px", "flicker raw", "flicker stabilised", "flicker ratio",
          "AbsRel raw", "AbsRel stabilised", "AbsRel change", "resets"]


def score_clip(name: str, raw, stable, clip: Clip, resets: int) -> FlickerRow:
    tracked = [motion.seen.sum() / max(valid_depth_mask(depth).sum(), 1) for motion, depth in zip(clip.motions, clip.depths[1:])]
    return FlickerRow(name, len(raw), float(np.mean(tracked)), flicker(raw, clip.depths, clip.motions),
                      flicker(stable, clip.depths, clip.motions), mean_absrel(raw, clip.depths),
                      mean_absrel(stable, clip.depths), resets)


def markdown_table(rows: list[FlickerRow]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["CLIPS", "Clip", "markdown_table", "moving_clip", "score_clip", "still_clip"]
