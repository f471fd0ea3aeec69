"""Inverse depth -> something to look at: normalisation and colour maps."""

import numpy as np

import cv2

COLORMAPS = {
    "gray": None,
    "inferno": cv2.COLORMAP_INFERNO,
    "magma": cv2.COLORMAP_MAGMA,
    "plasma": cv2.COLORMAP_PLASMA,
    "turbo": cv2.COLORMAP_TURBO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "jet": cv2.COLORMAP_JET,
}


def normalize(depth: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Depth scaled to [0, 1] between low and high (default: its own min and max); flat -> zeros."""
    low = float(depth.min()) if low is None else low
    high = float(depth.max()) if high is None else high
    if not high > low:
        return np.zeros(depth.shape, np.float32)
    return np.clip((depth.astype(np.float32) - low) / (high - low), 0.0, 1.0)


def colorize(unit_depth: np.ndarray, colormap: str = "inferno") -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 BGR image; near (1) is bright."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose from {', '.join(COLORMAPS)}")
    gray = np.round(unit_depth * 255.0).astype(np.uint8)
    if COLORMAPS[colormap] is None:
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    return cv2.applyColorMap(gray, COLORMAPS[colormap])


def to_uint16(depth: np.ndarray) -> np.ndarray:
    """Min-max scaled to the full 16-bit range (MiDaS's grayscale PNG)."""
    return np.round(normalize(depth) * 65535.0).astype(np.uint16)
