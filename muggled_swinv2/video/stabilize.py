"""Temporal stabilisation of relative inverse depth: one scale and shift per frame.

A monocular model gives each frame's inverse depth with its own unknown scale and shift, so a
still scene pulses from frame to frame. `DepthStabilizer` brings every frame onto one common
scale and shift: frame t comes out as `scale_t * raw_t + shift_t`, an affine map of the raw
prediction (nothing is smoothed per pixel), so the raw frame is always recoverable as
`(stabilized - shift_t) / scale_t`, and any scale- and shift-invariant measure of a frame (such
as the MiDaS evaluation protocol) is unchanged by it.

The fit. Each frame is fitted against a running *reference*: the stabilised previous frames, on
a subsampled grid (at most `fit_pixels` pixels, so the cost does not grow with the video size).
1. Both are normalised robustly, n(v) = (v - median v) / mean |v - median v| (MiDaS's own
   scale/shift normalisation), which makes them comparable whatever the frame's scale.
2. Pixels whose normalised values differ by less than `static_threshold` are "static": they
   barely changed between the frames. Moving objects, and what the camera motion uncovered,
   fall out here, so they do not drag the fit.
3. Least squares of `scale * raw + shift` against the reference on the static pixels, then
   `trim_rounds` refits on the `keep` fraction with the smallest residuals (a trimmed, robust
   least squares). On a frame that is an exact affine map of the reference this recovers the
   map exactly, up to float rounding.

The reference. The first frame starts it with scale 1 and shift 0. After each frame, static
pixels of the reference move towards the new stabilised frame (an exponential average,
`reference = memory * reference + (1 - memory) * stabilised`), and pixels that changed are
replaced by the stabilised frame, so the reference follows a moving camera.

Scene cuts. A frame is a cut, and resets the stabiliser, when fewer than `min_static` of its
pixels are static, when the fit gives a scale that is not a positive finite number, or when the
frame's size changes. On a reset the frame is mapped so that its median and mean absolute
deviation match the reference's (so the values, and the colours, stay in the same range), and
the reference restarts from it. A flat frame (no spread to fit) keeps the previous frame's scale
and shift.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Stabilized:
    depth: np.ndarray  # float32 (H, W): scale * raw + shift
    scale: float
    shift: float
    reset: bool  # True on the first frame and on scene cuts


def robust_normalize(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(values - median) / mean absolute deviation, with the median and deviation (0 if flat)."""
    median = float(np.median(values))
    spread = float(np.mean(np.abs(values - median)))
    if not spread > 0:
        return np.zeros_like(values), median, 0.0
    return (values - median) / spread, median, spread


def fit_scale_shift(raw: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least-squares (scale, shift) with scale * raw + shift ~ target (float64); (nan, nan) if raw is flat."""
    raw_mean, target_mean = raw.mean(), target.mean()
    centred = raw - raw_mean
    variance = float(np.dot(centred, centred))
    if not variance > 0:
        return float("nan"), float("nan")
    scale = float(np.dot(centred, target - target_mean)) / variance
    return scale, float(target_mean - scale * raw_mean)


class DepthStabilizer:
    """Puts the frames of a video onto one scale and shift (see the module docstring)."""

    def __init__(self, static_threshold: float = 0.3, min_static: float = 0.3, keep: float = 0.8,
                 trim_rounds: int = 2, memory: float = 0.5, fit_pixels: int = 65536):
        self.static_threshold, self.min_static, self.keep = static_threshold, min_static, keep
        self.trim_rounds, self.memory, self.fit_pixels = trim_rounds, memory, fit_pixels
        self.reset()

    def reset(self):
        """Forget the reference: the next frame starts afresh (scale 1, shift 0)."""
        self.reference = None  # float64, subsampled, on the stabilised scale
        self.shape = None
        self.scale, self.shift = 1.0, 0.0

    def _sample(self, depth: np.ndarray) -> np.ndarray:
        step = max(1, int(np.ceil(np.sqrt(depth.size / self.fit_pixels))))
        return depth[::step, ::step].astype(np.float64).ravel()

    def _fit(self, raw: np.ndarray) -> tuple[float, float, np.ndarray | None]:
        """(scale, shift, static mask) against the reference, or a scale of nan for a cut."""
        raw_unit, _, raw_spread = robust_normalize(raw)
        reference_unit, _, _ = robust_normalize(self.reference)
        if not raw_spread > 0:
            return self.scale, self.shift, None  # flat frame: nothing to fit, keep the last map
        static = np.abs(raw_unit - reference_unit) < self.static_threshold
        if static.mean() < self.min_static:
            return float("nan"), 0.0, None
        chosen = static
        scale, shift = fit_scale_shift(raw[chosen], self.reference[chosen])
        for _ in range(self.trim_rounds):
            residual = np.abs(scale * raw + shift - self.reference)
            kept = int(self.keep * chosen.sum())
            if kept < 2 or not np.isfinite(scale):
                break
            limit = np.partition(residual[chosen], kept - 1)[kept - 1]
            chosen = static & (residual <= limit)
            scale, shift = fit_scale_shift(raw[chosen], self.reference[chosen])
        return scale, shift, static

    def __call__(self, raw_depth: np.ndarray) -> Stabilized:
        """Stabilise the next frame's raw inverse depth (H, W)."""
        raw = self._sample(raw_depth)
        static = None
        if self.reference is None or raw_depth.shape != self.shape:
            reset, scale, shift = True, 1.0, 0.0  # nothing to match: the first frame, or a new size
        else:
            scale, shift, static = self._fit(raw)
            reset = not (np.isfinite(scale) and scale > 0 and np.isfinite(shift))
            if reset:  # a scene cut: match the reference's median and spread
                _, raw_median, raw_spread = robust_normalize(raw)
                _, reference_median, reference_spread = robust_normalize(self.reference)
                scale = reference_spread / raw_spread if raw_spread > 0 and reference_spread > 0 else 1.0
                shift = reference_median - scale * raw_median
        flat = not robust_normalize(raw)[2] > 0
        if reset or not flat:  # a flat frame leaves the reference as it was
            stabilized = scale * raw + shift
            if static is None:
                self.reference = stabilized
            else:
                blended = self.memory * self.reference + (1 - self.memory) * stabilized
                self.reference = np.where(static, blended, stabilized)
        self.shape, self.scale, self.shift = raw_depth.shape, scale, shift
        depth = (raw_depth.astype(np.float64) * scale + shift).astype(np.float32)
        return Stabilized(depth, scale, shift, reset)


def unstabilize(depth: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """The raw prediction back from a stabilised frame and its scale and shift."""
    return ((depth.astype(np.float64) - shift) / scale).astype(np.float32)
