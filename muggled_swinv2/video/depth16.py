"""The `video --raw depth16` file: the depth frames as a lossless 16-bit grey video (FFV1 gray16le
in `.mkv`, io/av_video.DepthVideoWriter), for compositing and VFX tools. This module is the one
place its encoding is named.

Values: the inverse depth the video shows (stabilised unless `--no-stabilize`; bigger = nearer),
one linear map for the whole file so that a value means the same depth in every frame:

    inverse_depth = low + value / 65535 * (high - low)

`low` and `high` are the first frame's range widened by half its span each way (the stabiliser
keeps later frames on the first one's scale; what still falls outside is clipped, and counted).
They are written into the container's tags DEPTH_LOW, DEPTH_HIGH and DEPTH_ENCODING.
"""

from pathlib import Path

import numpy as np

from ..io.av_video import DepthVideoWriter

LEVELS = 65535
HEADROOM = 0.5  # the first frame's span added below and above it


def depth16_path(target: Path) -> Path:
    """depth.mp4 -> depth_depth16.mkv (beside the colour video)."""
    return target.with_name(f"{target.stem}_depth16.mkv")


def encoding_range(first_depth_hw: np.ndarray) -> tuple[float, float]:
    """(low, high) of the map, from the first frame's finite values (a flat frame gets a unit span)."""
    finite = first_depth_hw[np.isfinite(first_depth_hw)]
    lowest, highest = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = highest - lowest if highest > lowest else 1.0
    return lowest - HEADROOM * span, highest + HEADROOM * span


def encode(depth_hw: np.ndarray, low: float, high: float) -> np.ndarray:
    """Inverse depth (H, W) float -> (H, W) uint16 on the file's map (NaN -> 0)."""
    scaled = (np.nan_to_num(depth_hw.astype(np.float64), nan=low) - low) / (high - low) * LEVELS
    return np.clip(np.round(scaled), 0, LEVELS).astype(np.uint16)


def decode(values_hw: np.ndarray, low: float, high: float) -> np.ndarray:
    """(H, W) uint16 -> inverse depth float32 (within half a step, 1 / 131070 of the range)."""
    return (low + values_hw.astype(np.float64) / LEVELS * (high - low)).astype(np.float32)


class Depth16Writer:
    """The depth frames into `path`; the file is opened at the first frame, whose range sets the map."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = path, fps
        self.writer: DepthVideoWriter | None = None
        self.low = self.high = None
        self.clipped_frames = 0

    @property
    def frames(self) -> int:
        return self.writer.frames if self.writer is not None else 0

    def write(self, depth_hw: np.ndarray) -> None:
        if self.writer is None:
            self.low, self.high = encoding_range(depth_hw)
            tags = {"DEPTH_LOW": repr(self.low), "DEPTH_HIGH": repr(self.high),
                    "DEPTH_ENCODING": "inverse depth (bigger = nearer) = DEPTH_LOW + value / 65535 * (DEPTH_HIGH - DEPTH_LOW)"}
            self.writer = DepthVideoWriter(self.path, self.fps, depth_hw.shape[::-1], metadata=tags)
        finite = depth_hw[np.isfinite(depth_hw)]
        if finite.size and (finite.min() < self.low or finite.max() > self.high):
            self.clipped_frames += 1
        self.writer.write(encode(depth_hw, self.low, self.high))

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.finish()

    def abandon(self) -> None:
        if self.writer is not None:
            self.writer.abandon()
