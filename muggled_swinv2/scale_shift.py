"""The least-squares scale and shift that puts one relative depth map onto another.

A relative model's inverse depth is known up to a scale and a shift, so comparing it with anything
(the ground truth in the MiDaS protocol, evaluation/metrics.py; the previous frames of a video,
video/stabilize.py) starts with s, t = argmin sum (s * x + t - y)^2. Numpy only, imported by both.
"""

import numpy as np


def fit_scale_shift(x: np.ndarray, y: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """Least-squares (scale, shift) with scale * x + shift ~ y over the `valid` pixels (all when
    None), in float64 and from the centred values (exact for an affine map up to rounding, even
    far from zero). A flat x (its spread below 1e-6 of its magnitude: float rounding) defines no
    scale: (nan, nan)."""
    if valid is not None:
        x, y = x[valid], y[valid]
    x, y = x.astype(np.float64, copy=False).ravel(), y.astype(np.float64, copy=False).ravel()
    if x.size == 0:
        return float("nan"), float("nan")
    x_mean, y_mean = x.mean(), y.mean()
    x_centred = x - x_mean
    variance = float(np.dot(x_centred, x_centred))
    if not variance > 1e-12 * float(np.dot(x, x)):
        return float("nan"), float("nan")
    scale = float(np.dot(x_centred, y - y_mean)) / variance
    return scale, float(y_mean - scale * x_mean)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["fit_scale_shift"]
