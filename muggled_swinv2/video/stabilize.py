"""Temporal stabilisation of relative inverse depth: one scale and shift per frame, then
smoothing over time of the pixels that did not change.

A monocular model gives each frame's inverse depth with its own unknown scale and shift, so a
still scene pulses from frame to frame; and it answers sensor noise and lighting changes with
small local changes, so a still scene also shimmers. `DepthStabilizer` does two things:

1. Alignment: frame t is mapped to `aligned_t = scale_t * raw_t + shift_t`, one scale and shift
   for the whole video, fitted robustly against a running reference (below).
2. Smoothing: a pixel is smoothed when `aligned_t` lies within `change_threshold` (times the
   frame's mean absolute deviation) of the previous output. When the caller passes the video
   frame, its picture must also have barely changed there (blurred grey, divided by the frame's
   mean brightness so that exposure changes do not count: |log change| < `picture_threshold`),
   and with that second witness the depth may have changed by up to `picture_change_threshold`
   deviations: a weak model answers a change of light with depth changes that large, and motion
   shows in the picture. A smoothed pixel is
   averaged with the previous output, `out_t = out_(t-1) + w * (aligned_t - out_(t-1))`, with
   w = max(1 - smoothing, 1 / (n + 1)) for a pixel smoothed n frames in a row: a plain mean of
   the frames it has been still for, then an exponential average over about 1 / (1 - smoothing)
   frames (a plain exponential average would hold on to whatever the first frame got wrong).
   The others (what moved, what the camera uncovered) are taken as they are, so nothing lags
   behind real motion; so is the whole frame when its picture as a whole changed (thumbnail
   correlation below `min_image_correlation`): a cut that a weak model's depth did not show,
   where some pixels' brightness matches the old scene's by chance. With `smoothing=0` the output is the aligned frame.

Both steps can be undone: the smoothed pixels of each frame are kept (`Stabilized.smoothed`), so
the run lengths n and weights w follow, `aligned_t = out_(t-1) + (out_t - out_(t-1)) / w` there,
and `raw_t = (aligned_t - shift_t) / scale_t` (`recover_raw` does it for the `video` job's npz). Any scale- and
shift-invariant measure of a single frame, such as the MiDaS evaluation protocol, is unchanged by
the alignment.

The fit. Each frame is fitted against the reference: the aligned previous frames, on a
subsampled grid (at most `fit_pixels` pixels, so the cost does not grow with the video size).
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
pixels of the reference move towards the new aligned frame (an exponential average,
`reference = memory * reference + (1 - memory) * aligned`), and pixels that changed are
replaced by the aligned frame, so the reference follows a moving camera.

Scene cuts. A frame is a cut, and resets the stabiliser, when fewer than `min_static` of its
pixels are static AND its normalised values correlate with the reference's by less than
`min_correlation` AND (when the caller passes the video frame too) the frame's picture correlates
with the previous one by less than `min_image_correlation` (grey 32x24 thumbnails, normalised, so
exposure changes do not count); also when the fit gives a scale that is not a positive finite
number, or when the frame's size changes. All three are needed: a weak model answers a lighting
change with a map that differs everywhere by more than `static_threshold` (then the frame is
fitted on all its pixels, trimmed, instead of on the static ones), at times even with a changed
layout, while the picture itself stays the same (measured on the still-camera clip: depth
correlation down to 0.55, picture correlation never below 0.95); a real cut changes the picture. On a reset the frame is mapped so that its median and mean absolute
deviation match the reference's (so the values, and the colours, stay in the same range), the
reference restarts from it, and it is not smoothed. A flat frame (no spread to fit) keeps the
previous frame's scale and shift, and the frame after it is not smoothed.
"""

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Stabilized:
    depth: np.ndarray  # float32 (H, W): the output
    scale: float  # aligned = scale * raw + shift
    shift: float
    reset: bool  # True on the first frame and on scene cuts
    smoothed: np.ndarray  # bool (H, W): the pixels averaged with the previous output


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

    def __init__(self, smoothing: float = 0.95, change_threshold: float = 1.0, picture_threshold: float = 0.3,
                 picture_change_threshold: float = 2.0, static_threshold: float = 0.3, min_static: float = 0.3, min_correlation: float = 0.6,
                 min_image_correlation: float = 0.7, keep: float = 0.8, trim_rounds: int = 2, memory: float = 0.5,
                 fit_pixels: int = 65536):
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.smoothing, self.change_threshold, self.picture_threshold = smoothing, change_threshold, picture_threshold
        self.picture_change_threshold = picture_change_threshold
        self.static_threshold, self.min_static, self.keep = static_threshold, min_static, keep
        self.min_correlation, self.min_image_correlation = min_correlation, min_image_correlation
        self.trim_rounds, self.memory, self.fit_pixels = trim_rounds, memory, fit_pixels
        self.reset()

    def reset(self):
        """Forget the reference: the next frame starts afresh (scale 1, shift 0)."""
        self.reference = None  # float64, subsampled, on the stabilised scale
        self.previous = None  # float32 (H, W): the last output
        self.run_length = None  # int (H, W): frames in a row each pixel was smoothed
        self.brightness = None  # float32 (H, W): the last picture's log_brightness, when pictures are given
        self.shape = None
        self.scale, self.shift = 1.0, 0.0
        self.thumbnail = None  # the previous picture's normalised grey thumbnail, when pictures are given

    def _sample(self, depth: np.ndarray) -> np.ndarray:
        step = max(1, int(np.ceil(np.sqrt(depth.size / self.fit_pixels))))
        return depth[::step, ::step].astype(np.float64).ravel()

    def _same_picture(self, thumbnail: np.ndarray | None) -> bool:
        """Whether the picture barely changed since the last frame (False when it cannot tell)."""
        if thumbnail is None or self.thumbnail is None:
            return False
        return float(np.mean(thumbnail * self.thumbnail)) >= self.min_image_correlation

    def _fit(self, raw: np.ndarray, same_picture: bool) -> tuple[float, float, np.ndarray | None]:
        """(scale, shift, static mask) against the reference, or a scale of nan for a cut."""
        raw_unit, _, raw_spread = robust_normalize(raw)
        reference_unit, _, _ = robust_normalize(self.reference)
        if not raw_spread > 0:
            return self.scale, self.shift, None  # flat frame: nothing to fit, keep the last map
        static = np.abs(raw_unit - reference_unit) < self.static_threshold
        if static.mean() < self.min_static:
            if np.corrcoef(raw_unit, reference_unit)[0, 1] < self.min_correlation and not same_picture:
                return float("nan"), 0.0, None  # another layout and another picture: a scene cut
            static = np.ones_like(static)  # the same layout, changed everywhere: fit on every pixel
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

    def __call__(self, raw_depth: np.ndarray, picture: np.ndarray | None = None) -> Stabilized:
        """Stabilise the next frame's raw inverse depth (H, W); `picture`, the video frame it came
        from (any size, grey or BGR), tells a scene cut from a lighting change."""
        raw = self._sample(raw_depth)
        grey = grey_levels(picture) if picture is not None else None
        thumbnail = picture_thumbnail(grey) if grey is not None else None
        brightness = log_brightness(grey, raw_depth.shape) if grey is not None else None
        same_picture = self._same_picture(thumbnail)
        picture_changed = thumbnail is not None and self.thumbnail is not None and not same_picture
        static = None
        if self.reference is None or raw_depth.shape != self.shape:
            reset, scale, shift = True, 1.0, 0.0  # nothing to match: the first frame, or a new size
        else:
            scale, shift, static = self._fit(raw, same_picture)
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
        self.shape, self.scale, self.shift, self.thumbnail = raw_depth.shape, scale, shift, thumbnail
        aligned = raw_depth.astype(np.float64) * scale + shift
        if reset or self.smoothing == 0 or self.previous is None or picture_changed:
            smoothed = np.zeros(raw_depth.shape, bool)
            run_length = np.zeros(raw_depth.shape, np.int32)
            depth = aligned.astype(np.float32)
        else:
            spread = robust_normalize(scale * raw + shift)[2]
            if brightness is not None and self.brightness is not None:
                smoothed = np.abs(aligned - self.previous) < self.picture_change_threshold * spread
                smoothed &= np.abs(brightness - self.brightness) < self.picture_threshold
            else:
                smoothed = np.abs(aligned - self.previous) < self.change_threshold * spread
            run_length = np.where(smoothed, self.run_length + 1, 0)
            weight = smoothing_weights(run_length, self.smoothing)
            blended = self.previous + weight * (aligned - self.previous)
            depth = np.where(smoothed, blended, aligned).astype(np.float32)
        self.run_length = run_length
        self.previous = None if flat else depth  # nothing is smoothed against a flat (black, blank) frame
        self.brightness = brightness
        return Stabilized(depth, scale, shift, reset, smoothed)


def smoothing_weights(run_length: np.ndarray, smoothing: float) -> np.ndarray:
    """The new frame's weight per pixel, smoothed `run_length` frames in a row (this one included):
    1 / (run_length + 1), a plain mean, until it falls to 1 - smoothing."""
    return np.maximum(1 - smoothing, 1 / (run_length + 1.0))


def grey_levels(picture: np.ndarray) -> np.ndarray:
    """(H, W) float32 grey of a grey or BGR video frame, on the 0-255 scale whatever its dtype
    (uint8, uint16, or float in [0, 1]); made once per frame for the two measures below."""
    grey = picture.astype(np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    full_scale = 255.0 if picture.dtype == np.uint8 else 65535.0 if picture.dtype == np.uint16 else 1.0
    return grey if full_scale == 255.0 else grey * np.float32(255.0 / full_scale)


def log_brightness(grey: np.ndarray, shape_hw) -> np.ndarray:
    """(H, W) float32 log grey level (grey_levels) at the depth map's size, blurred (sensor noise
    is no change) and less the log of its mean (an exposure change is no change)."""
    if grey.shape != tuple(shape_hw):
        grey = cv2.resize(grey, (shape_hw[1], shape_hw[0]), interpolation=cv2.INTER_AREA)
    grey = cv2.GaussianBlur(grey, (0, 0), 2.0)
    return np.log(grey + 8.0) - np.log(float(grey.mean()) + 8.0)


def picture_thumbnail(grey: np.ndarray) -> np.ndarray:
    """A 24x32 thumbnail of grey levels (grey_levels) with zero mean and unit variance (the mean of
    two thumbnails' product is their correlation); zeros for a flat picture."""
    small = cv2.resize(grey, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float64)
    spread = small.std()
    return (small - small.mean()) / spread if spread > 0 else np.zeros_like(small)


def unstabilize(depth: np.ndarray, scale: float, shift: float, previous: np.ndarray | None = None,
                smoothed: np.ndarray | None = None, weight: np.ndarray | None = None) -> np.ndarray:
    """The raw prediction back from an output frame: its scale and shift, and with smoothing the
    previous output frame, the pixels that were smoothed and their weights (smoothing_weights),
    up to float rounding."""
    aligned = depth.astype(np.float64)
    if smoothed is not None and smoothed.any():
        before = previous.astype(np.float64)
        aligned = np.where(smoothed, before + (aligned - before) / weight, aligned)
    return ((aligned - shift) / scale).astype(np.float32)


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """A bool (H, W) mask as bits (1/8 of the bytes), for the npz."""
    return np.packbits(mask, axis=None)


def unpack_mask(bits: np.ndarray, shape_hw) -> np.ndarray:
    return np.unpackbits(bits, count=int(np.prod(shape_hw))).reshape(shape_hw).astype(bool)


def recover_raw(archive) -> list[np.ndarray]:
    """The raw predictions from a `video --raw npz` file (an np.load result or a dict): when
    stabilised, its frame_NNNNNN outputs undone with the per-frame scale and shift, the
    smoothed_NNNNNN packed masks and smoothing; without stabilisation, its frames as they are."""
    frames = sorted(name for name in archive.keys() if name.startswith("frame_"))
    if "scale" not in archive:  # written with --no-stabilize: the frames are the raw predictions
        return [archive[name] for name in frames]
    smoothing = float(archive["smoothing"]) if "smoothing" in archive else 0.0
    raw, previous, run_length = [], None, None
    for index, name in enumerate(frames):
        depth = archive[name]
        mask_name = f"smoothed_{index:06d}"
        smoothed = unpack_mask(archive[mask_name], depth.shape) if mask_name in archive else np.zeros(depth.shape, bool)
        if run_length is None or run_length.shape != depth.shape:
            run_length = np.zeros(depth.shape, np.int32)
        run_length = np.where(smoothed, run_length + 1, 0)
        weight = smoothing_weights(run_length, smoothing)
        raw.append(unstabilize(depth, archive["scale"][index], archive["shift"][index], previous, smoothed, weight))
        previous = depth
    return raw
