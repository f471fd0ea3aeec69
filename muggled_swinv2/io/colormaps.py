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


def parse_range(text: str) -> tuple[tuple[float, bool], tuple[float, bool]]:
    """'LOW,HIGH' -> ((low, is_percentile), (high, is_percentile)). Each bound is a value of inverse
    depth (the same for every map: comparable colours) or a percentile of each map, such as '2%'."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2:
        raise ValueError(f"expected LOW,HIGH (values, or percentiles such as 2%,98%), got {text!r}")
    bounds = []
    for part in parts:
        percentile = part.endswith("%")
        try:
            value = float(part[:-1] if percentile else part)
        except ValueError:
            raise ValueError(f"{part!r} is not a number or a percentile such as 2%") from None
        if not np.isfinite(value) or (percentile and not 0 <= value <= 100):
            raise ValueError(f"{part!r} is out of range")
        bounds.append((value, percentile))
    if bounds[0][1] == bounds[1][1] and not bounds[1][0] > bounds[0][0]:
        raise ValueError(f"HIGH must be above LOW, got {text!r}")
    return bounds[0], bounds[1]


def unit_depth(depth: np.ndarray, bounds=None, invert: bool = False) -> np.ndarray:
    """Depth in [0, 1] for display: between its own min and max, or between `bounds` (see
    parse_range); near is 1, or far with `invert`."""
    limits = [None, None]
    for index, (value, percentile) in enumerate(bounds or ()):
        limits[index] = float(np.percentile(depth, value)) if percentile else value
    unit = normalize(depth, *limits)
    return 1.0 - unit if invert else unit


def colorize(unit_depth: np.ndarray, colormap: str = "inferno") -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 BGR image; near (1) is bright."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose from {', '.join(COLORMAPS)}")
    gray = np.round(unit_depth * 255.0).astype(np.uint8)
    if COLORMAPS[colormap] is None:
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    return cv2.applyColorMap(gray, COLORMAPS[colormap])


class RunningRange:
    """Colour range that follows the depth smoothly: an exponential moving average of each
    frame's min and max (each frame's own min/max would make the colours flicker)."""

    def __init__(self, momentum: float = 0.9):
        self.momentum = momentum
        self.low = self.high = None

    def update(self, depth: np.ndarray) -> tuple[float, float]:
        low, high = float(depth.min()), float(depth.max())
        if self.low is None:
            self.low, self.high = low, high
        else:
            self.low = self.momentum * self.low + (1 - self.momentum) * low
            self.high = self.momentum * self.high + (1 - self.momentum) * high
        return self.low, self.high


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["COLORMAPS", "RunningRange", "colorize", "normalize", "parse_range", "unit_depth"]
