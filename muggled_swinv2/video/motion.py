"""Dense motion between consecutive video frames, and warping a previous depth map along it.

The stabiliser (video/stabilize.py) smooths each pixel with the previous output. On a moving
camera the previous output must first follow the pixels: `MotionEstimator` finds, for every
pixel of the current frame, where it was in the previous frame (the backward flow), and which of
those answers to trust; `warp` then samples a previous map there.

Flow. OpenCV's DIS optical flow (`cv2.DISOpticalFlow`, preset FAST) on grey frames downscaled to
at most `flow_side` pixels on the long side and scaled to one mean brightness (DIS matches
brightness; an exposure change is no motion): a few milliseconds a pair, and plenty for depth
maps, which are smooth. Both directions are computed: backward (current -> previous) to warp,
forward (previous -> current) to check it.

Small frames. DIS picks its pyramid from the image's sides; for an image under 32 pixels across or
96 along (FAST preset) it falls back to a choice that raises an OpenCV error (11x11), fills the flow
with NaN (16x320) or crashes the process (20x80, 24x320), all measured with OpenCV 5.1. The flow
image is therefore at least `DIS_SHORT_SIDE` by `DIS_LONG_SIDE` (fine for every size from there to
320x320, measured): a thin frame is shrunk less across than along (1280x32 -> 320x32), a small one
enlarged (40x30 -> 96x32); the flow is scaled per axis on use. A frame with a side under `min_side`
pixels (8x8, 2000x8) has no motion to speak of: it gets no flow, the stabiliser treats it as
without motion compensation, and `MotionEstimator.too_small` says so.
"""

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MotionSettings:
    flow_side: int = 320  # long side of the grey frames the flow is computed on (pixels)
    still_flow: float = 0.3  # the camera is still when the median vector is shorter (depth-map pixels)
    consistency: float = 0.01  # forward-backward tolerance, relative part (of |b|^2 + |f|^2)
    consistency_floor: float = 0.5  # forward-backward tolerance, absolute part (squared flow pixels)
    boundary: float = 0.01  # motion boundary: |grad b|^2 > boundary * |b|^2 + boundary_floor
    boundary_floor: float = 0.01
    min_side: int = 16  # frames with a side under this many pixels get no flow (see the module docstring)


DIS_SHORT_SIDE, DIS_LONG_SIDE = 32, 96  # the least flow image on which DIS's pyramid is sound (module docstring)


@dataclass
class Motion:
    """Where each pixel of the current frame was in the previous one."""

    flow_low: np.ndarray  # float16 (h, w, 2): backward flow (dx, dy) at the flow resolution, in its pixels
    trusted: np.ndarray  # bool (H, W): at the depth map's size (see the module docstring)

    @property
    def still(self) -> bool:
        """True for a still camera (every vector zero, every pixel trusted): warping is the identity."""
        return not self.flow_low.any()


def flow_shape(shape_hw, settings: MotionSettings) -> tuple[int, int] | None:
    """(h, w) of the flow image of frames (H, W): the long side at most `flow_side`, and at least
    DIS_SHORT_SIDE by DIS_LONG_SIDE (a thin frame is shrunk less across, a small one enlarged);
    None when a side of the frame is under `min_side` (no flow)."""
    if min(shape_hw) < settings.min_side:
        return None
    factor = min(1.0, settings.flow_side / max(shape_hw))
    height, width = (max(DIS_SHORT_SIDE, round(side * factor)) for side in shape_hw)
    if height >= width:
        return max(height, DIS_LONG_SIDE), width
    return height, max(width, DIS_LONG_SIDE)


def flow_grey(grey: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """uint8 `shape_hw` (flow_shape) of a frame's grey levels (H, W) on the 0-255 scale
    (stabilize.grey_levels), scaled to a mean of 128: DIS matches brightness, and an exposure
    change is no motion."""
    grey = grey.astype(np.float32) * np.float32(128 / max(float(grey.mean()), 1.0))
    if grey.shape != tuple(shape_hw):
        shrunk = shape_hw[0] <= grey.shape[0] and shape_hw[1] <= grey.shape[1]
        grey = cv2.resize(grey, (shape_hw[1], shape_hw[0]), interpolation=cv2.INTER_AREA if shrunk else cv2.INTER_LINEAR)
    return np.clip(grey + 0.5, 0, 255).astype(np.uint8)


def upsample_flow(flow_low: np.ndarray, shape_hw) -> np.ndarray:
    """float32 (H, W, 2) flow in the depth map's pixels from the flow-resolution one."""
    height, width = shape_hw
    low_height, low_width = flow_low.shape[:2]
    flow = flow_low.astype(np.float32)
    if (low_height, low_width) != (height, width):
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        flow *= np.array([width / low_width, height / low_height], np.float32)
    return flow


def sample_map(flow_hw2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(map_x, map_y) float32 (H, W): the previous-frame position of every current pixel."""
    height, width = flow_hw2.shape[:2]
    cols, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cols + flow_hw2[..., 0], rows + flow_hw2[..., 1]


def warp(previous: np.ndarray, flow_hw2: np.ndarray, nearest: bool = False) -> np.ndarray:
    """The previous frame's map (H, W) sampled where each current pixel was (bilinear, or nearest
    for counts); outside the frame the border is repeated (those pixels are not trusted anyway)."""
    map_x, map_y = sample_map(flow_hw2)
    return cv2.remap(previous, map_x, map_y, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def trusted_flow(backward: np.ndarray, forward: np.ndarray, settings: MotionSettings) -> np.ndarray:
    """bool (h, w): backward vectors that land inside the frame, agree with the forward flow where
    they land, and are off motion boundaries (see the module docstring)."""
    height, width = backward.shape[:2]
    map_x, map_y = sample_map(backward)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    forward_there = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    round_trip = np.sum((backward + forward_there) ** 2, axis=2)
    lengths = np.sum(backward**2, axis=2) + np.sum(forward_there**2, axis=2)
    consistent = round_trip < settings.consistency * lengths + settings.consistency_floor
    gradient = sum(cv2.Sobel(backward[..., channel], cv2.CV_32F, dx, 1 - dx, ksize=1) ** 2
                   for channel in range(2) for dx in (0, 1)) / 4
    smooth = gradient < settings.boundary * np.sum(backward**2, axis=2) + settings.boundary_floor
    trusted = (inside & consistent & smooth).astype(np.uint8)
    return cv2.erode(trusted, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE).astype(bool)  # a margin


class MotionEstimator:
    """Feed it the video frames in order; `__call__` gives the motion from the previous one."""

    def __init__(self, settings: MotionSettings = MotionSettings()):
        self.settings = settings
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self.previous_grey = None
        self.too_small = None  # (H, W) of the last frame too small for the flow (see flow_shape), if any

    def reset(self):
        self.previous_grey = None

    def __call__(self, grey: np.ndarray, shape_hw) -> Motion | None:
        """The motion from the previous frame to this one (its grey levels (H, W), 0-255), at the
        depth map's size `shape_hw`; None for the first frame, after a change of frame size, and
        for frames too small for the flow (then `too_small` holds their size)."""
        size_hw = flow_shape(grey.shape, self.settings)
        if size_hw is None:
            self.too_small, self.previous_grey = grey.shape, None
            return None
        grey = flow_grey(grey, size_hw)
        previous, self.previous_grey = self.previous_grey, grey
        if previous is None or previous.shape != grey.shape:
            return None
        backward = self.flow.calc(grey, previous, None)
        if not np.isfinite(backward).all():  # never seen at the sizes of flow_shape; no motion is better than NaN
            return None
        height, width = shape_hw
        in_depth_pixels = np.array([width / grey.shape[1], height / grey.shape[0]], np.float32)
        length = np.sqrt(np.sum((backward * in_depth_pixels) ** 2, axis=2))  # in depth-map pixels
        if np.median(length) < self.settings.still_flow:
            return Motion(np.zeros(backward.shape, np.float16), np.ones(shape_hw, bool))  # a still camera
        forward = self.flow.calc(previous, grey, None)
        trusted_low = trusted_flow(backward, forward, self.settings)
        trusted = cv2.resize(trusted_low.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
        return Motion(backward.astype(np.float16), trusted)
