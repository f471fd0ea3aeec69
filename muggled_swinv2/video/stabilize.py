"""Temporal stabilisation of relative inverse depth, in two steps per frame.

A monocular model gives each frame's inverse depth with its own unknown scale and shift, so a
still scene pulses from frame to frame; and it answers sensor noise and lighting changes with
small local changes, so a still scene also shimmers. `DepthStabilizer` answers each in a step:

1. Alignment (`ReferenceAligner`): frame t becomes `aligned_t = scale_t * raw_t + shift_t`, its
   scale and shift fitted robustly against a running reference of the aligned previous frames,
   so that the whole video shares one scale and shift; scene cuts restart the reference.
2. Smoothing (`TemporalSmoother`): pixels that did not change are averaged with the previous
   output over time; what moved, and what the camera uncovered, is taken as it is, so nothing
   lags behind real motion.

On a moving camera (when the pictures are given) both steps follow the pixels (video/motion.py):
the reference and the previous output are warped along the optical flow onto the current frame,
and only pixels whose motion is trusted are fitted and smoothed; elsewhere (occluded, uncovered,
new at the frame's edge) the aligned frame is taken as it is. A still camera is the case of zero
motion, smoothed exactly as without motion compensation.

When the caller passes the video frame too, its picture is a second witness (`PictureCues`): it
tells a lighting change, to which a weak model answers with changed depth, from a real change.
Every threshold is a field of `StabilizerSettings`, documented there.

Both steps can be undone: the smoothed pixels of each frame are kept (`Stabilized.smoothed`), and
on a moving camera the flow it followed (`Stabilized.flow_low`, float16 at the flow's resolution,
about 1/16 of a depth frame's bytes at 640x480), so the warped previous output out'_(t-1), the
run lengths n and weights w follow, `aligned_t = out'_(t-1) + (out_t - out'_(t-1)) / w` there,
and `raw_t = (aligned_t - shift_t) / scale_t` (`depth_npz.recover_raw` does it for the `video` job's npz).
Any scale- and shift-invariant measure of a single frame, such as the MiDaS evaluation protocol,
is unchanged by the alignment.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from ..scale_shift import fit_scale_shift
from .motion import Motion, MotionEstimator, MotionSettings, upsample_flow, warp


@dataclass(frozen=True)
class StabilizerSettings:
    """The stabiliser's thresholds. Depth changes are measured in mean absolute deviations of the
    frame ("deviations"), so they mean the same whatever the frame's scale."""

    smoothing: float = 0.93
    """How long unchanged pixels are averaged, in [0, 1). A pixel smoothed n frames in a row takes
    the new frame with weight w = max(1 - smoothing, 1 / (n + 1)): a plain mean of the frames it
    has been still for, then an exponential average over about 1 / (1 - smoothing) frames (a plain
    exponential average would hold on to whatever the first frame got wrong). 0: no smoothing, the
    output is the aligned frame. (0.93 rather than 0.95: a model's depth of a still background
    drifts as an object crosses it, and a longer average lags behind: +1.06% AbsRel on the
    object-crossing clip with 0.95, +0.83% with 0.93, for 3.5x instead of 3.7x less flicker on the
    still clip; docs/video.md.)"""

    change_threshold: float = 1.0
    """Smoothing without the picture: a pixel is unchanged when its aligned value lies within this
    many deviations of the previous output."""

    picture_threshold: float = 0.3
    """Smoothing with the picture: a pixel's picture is unchanged when its log brightness (blurred
    grey, less the log of the frame's mean, so that exposure changes do not count) changed by less
    than this."""

    picture_change_threshold: float = 2.0
    """Smoothing with the picture: where the picture is unchanged, the depth may have changed by up
    to this many deviations and the pixel is still smoothed: a weak model answers a change of light
    with depth changes that large, while motion shows in the picture."""

    static_threshold: float = 0.3
    """Alignment: a pixel is static when its robustly normalised value, (v - median) / mean |v -
    median| (MiDaS's own scale/shift normalisation), differs from the reference's by less than this.
    Only static pixels are fitted, so moving objects and uncovered background do not drag the fit."""

    min_static: float = 0.3
    """Scene cuts, first of three conditions: fewer than this fraction of the pixels are static.
    (With fewer static pixels but no cut, the frame is fitted on all its pixels, trimmed.)"""

    min_correlation: float = 0.6
    """Scene cuts, second condition: the normalised depth correlates with the reference's by less
    than this. A weak model answers a lighting change with a map that differs everywhere, at times
    even with a changed layout (depth correlation down to 0.55 measured on the still-camera clip)."""

    min_image_correlation: float = 0.7
    """Scene cuts, third condition, when the pictures are given: the picture's grey 32x24 thumbnail
    (normalised, so exposure changes do not count) correlates with the previous one by less than
    this (never below 0.95 on the still-camera clip; a real cut changes the picture). A frame whose
    picture changed this much is not smoothed either, even if its depth was fitted: a cut the
    model's depth did not show, where some pixels' brightness matches the old scene's by chance."""

    keep: float = 0.8
    """Alignment: each refit of the trimmed least squares keeps this fraction of the static pixels,
    those with the smallest residuals."""

    trim_rounds: int = 2
    """Alignment: refits after the first least-squares fit."""

    memory: float = 0.5
    """The reference after each frame: static pixels move towards the new aligned frame,
    `reference = memory * reference + (1 - memory) * aligned`; changed pixels are replaced by it,
    so the reference follows a moving camera."""

    fit_pixels: int = 65536
    """At most this many pixels (a regular subsampling grid) are fitted and kept as the reference,
    so the cost of the alignment does not grow with the video size."""

    motion: MotionSettings | None = MotionSettings()
    """Motion compensation (video/motion.py), when the pictures are given and the camera moves:
    the previous output and the reference are warped along the optical flow onto the frame before
    they are compared, fitted and averaged, and only pixels whose motion is trusted (inside the
    frame, forward-backward consistent, off motion boundaries: not occluded or uncovered) are
    smoothed. A still camera (zero motion) is smoothed as without it. None: each pixel is compared
    with the same pixel of the previous frame, whatever the motion."""

    moving_smoothing: float = 0.7
    """`smoothing` for the frames of a moving camera: a shorter average (about 3 frames), as a
    surface the camera approaches changes its depth from frame to frame and a long average would
    hold it back (+1.8% AbsRel on the forward-moving clip with 0.95, against +0.3% with 0.7)."""

    def __post_init__(self):
        for name in ("smoothing", "moving_smoothing"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


@dataclass
class Stabilized:
    depth: np.ndarray  # float32 (H, W): the output
    scale: float  # aligned = scale * raw + shift
    shift: float
    reset: bool  # True on the first frame and on scene cuts
    smoothed: np.ndarray  # bool (H, W): the pixels averaged with the (warped) previous output
    flow_low: np.ndarray | None = None  # float16 (h, w, 2): the motion followed (Motion.flow_low), None: none
    unfitted: bool = False  # no scale could be fitted (ReferenceAligner): mapped by median and spread, not a cut


class DepthStabilizer:
    """Puts the frames of a video onto one scale and shift and smooths what did not change over
    time: per frame, `ReferenceAligner` then `TemporalSmoother` (see the module docstring)."""

    def __init__(self, settings: StabilizerSettings = StabilizerSettings()):
        self.settings = settings
        self.aligner = ReferenceAligner(settings)
        self.smoother = TemporalSmoother(settings)
        self.motion = MotionEstimator(settings.motion) if settings.motion is not None else None
        self.thumbnail = None  # the previous picture's picture_thumbnail, when pictures are given

    def reset(self):
        """Forget the past: the next frame starts afresh (scale 1, shift 0, not smoothed)."""
        self.aligner.reset()
        self.smoother.reset()
        if self.motion is not None:
            self.motion.reset()
        self.thumbnail = None

    def __call__(self, raw_depth: np.ndarray, picture: np.ndarray | None = None) -> Stabilized:
        """Stabilise the next frame's raw inverse depth (H, W); `picture`, the video frame it came
        from (any size, grey or BGR), tells a scene cut or motion from a lighting change."""
        grey = grey_levels(picture) if picture is not None else None
        thumbnail = picture_thumbnail(grey) if grey is not None else None
        brightness = log_brightness(grey, raw_depth.shape) if grey is not None else None
        same_picture = None  # whether the picture barely changed since the last frame (None: cannot tell)
        if thumbnail is not None and self.thumbnail is not None:
            same_picture = float(np.mean(thumbnail * self.thumbnail)) >= self.settings.min_image_correlation
        self.thumbnail = thumbnail
        motion = self.motion(grey, raw_depth.shape) if grey is not None and self.motion is not None else None
        if motion is not None and motion.still:
            motion = None  # zero motion: the same pixel of the previous frame, as without motion compensation

        alignment = self.aligner(raw_depth, same_picture is True, motion)
        aligned_hw = raw_depth.astype(np.float64) * alignment.scale + alignment.shift
        depth, smoothed = self.smoother(aligned_hw, alignment.spread, brightness,
                                        restart=alignment.reset or alignment.unfitted or same_picture is False,
                                        remember=not (alignment.flat or alignment.unfitted), motion=motion)
        flow_low = motion.flow_low if motion is not None else None
        return Stabilized(depth, alignment.scale, alignment.shift, alignment.reset, smoothed, flow_low, alignment.unfitted)


@dataclass
class Alignment:
    scale: float  # aligned = scale * raw + shift
    shift: float
    reset: bool  # the reference restarted: the first frame, a new frame size, or a scene cut
    flat: bool  # the frame has no spread (a black or blank frame): the last scale and shift are kept
    spread: float  # mean absolute deviation of the aligned frame (on the fitted sample)
    unfitted: bool = False  # the fit failed (no positive finite scale): mapped by median and spread, reference kept


class ReferenceAligner:
    """Step 1: each frame's scale and shift, fitted against a running reference.

    The reference is the aligned previous frames, on a subsampled grid (`fit_pixels`). The first
    frame starts it with scale 1 and shift 0. The fit, for each next frame:
    1. Frame and reference are normalised robustly, n(v) = (v - median v) / mean |v - median v|,
       which makes them comparable whatever the frame's scale; pixels whose normalised values
       differ by less than `static_threshold` are static (they barely changed).
    2. Least squares of `scale * raw + shift` against the reference on the static pixels, then
       `trim_rounds` refits on the `keep` fraction with the smallest residuals (a trimmed, robust
       least squares). On a frame that is an exact affine map of the reference this recovers the
       map exactly, up to float rounding.
    3. The reference then moves towards the aligned frame (`memory`).

    A frame is a scene cut when fewer than `min_static` of its pixels are static AND its normalised
    values correlate with the reference's by less than `min_correlation` AND (when pictures are
    given) its picture changed (`min_image_correlation`); also when the frame's size changes. All
    three are needed: a weak model answers a lighting change with a map that differs everywhere by
    more than `static_threshold` (such a frame is fitted on all its pixels, trimmed), at times even
    with a changed layout, while the picture stays the same. A cut frame is mapped so that its
    median and mean absolute deviation match the reference's (the values, and the colours, stay in
    the same range), and the reference restarts from it. A flat frame (no spread to fit) keeps the
    previous frame's scale and shift and leaves the reference as it was.

    A fit that gives a scale that is not a positive finite number (a weak model, or a small network
    size, can give a frame whose depth runs against the reference's) is no scene cut: the frame is
    `unfitted`. It is mapped by median and spread, as a cut is, but the reference, which still
    holds the scene, is kept (the next frame is fitted against it), and the frame is neither
    smoothed nor smoothed against (as a flat frame).
    """

    def __init__(self, settings: StabilizerSettings):
        self.settings = settings
        self.reset()

    def reset(self):
        self.reference = None  # float64, subsampled, on the stabilised scale
        self.shape = None  # the (H, W) of the frames the reference was made from
        self.scale, self.shift = 1.0, 0.0  # the last frame's

    def step(self, shape_hw) -> int:
        """The subsampling step of the fitted grid: at most about `fit_pixels` pixels."""
        return max(1, int(np.ceil(np.sqrt(shape_hw[0] * shape_hw[1] / self.settings.fit_pixels))))

    def sample(self, depth_hw: np.ndarray) -> np.ndarray:
        """The fitted pixels of a frame: float64 (h, w), on the grid of `step`."""
        step = self.step(depth_hw.shape)
        return depth_hw[::step, ::step].astype(np.float64)

    def follow(self, motion: Motion, shape_hw) -> np.ndarray:
        """Warp the reference along the motion (onto the current frame); the trusted grid pixels."""
        step = self.step(shape_hw)
        flow = upsample_flow(motion.flow_low, shape_hw)[::step, ::step] / step
        self.reference = warp(self.reference, flow)
        return motion.trusted[::step, ::step]

    def __call__(self, raw_depth: np.ndarray, same_picture: bool, motion: Motion | None = None) -> Alignment:
        """The scale and shift of the next frame's raw inverse depth (H, W); `same_picture`: its
        picture is known to have barely changed since the last frame (then it is not a cut);
        `motion`: from the previous frame, which the reference then follows."""
        raw = self.sample(raw_depth)
        raw_unit, raw_median, raw_spread = robust_normalize(raw)
        flat = not raw_spread > 0
        fitted = None  # the fitted pixels (bool, on the sample), when a fit was made
        unfitted = False
        if self.reference is None or raw_depth.shape != self.shape:
            reset, scale, shift = True, 1.0, 0.0  # nothing to match: the first frame, or a new size
        else:
            trusted = self.follow(motion, raw_depth.shape) if motion is not None else True
            reference_unit, reference_median, reference_spread = robust_normalize(self.reference)
            if flat:
                scale, shift = self.scale, self.shift  # nothing to fit: keep the last map
            else:
                fitted = self._fitted_pixels(raw_unit, reference_unit, same_picture, trusted)
                scale, shift = (float("nan"), 0.0) if fitted is None else self._fit(raw, fitted)
            reset = fitted is None and not flat  # a scene cut
            unfitted = not reset and not (np.isfinite(scale) and scale > 0 and np.isfinite(shift))
            if reset or unfitted:  # match the reference's median and spread
                scale = reference_spread / raw_spread if raw_spread > 0 and reference_spread > 0 else 1.0
                shift = reference_median - scale * raw_median
        aligned = scale * raw + shift
        if reset or not (flat or unfitted):  # a flat or unfitted frame leaves the reference as it was
            if fitted is None:
                self.reference = aligned
            else:
                blended = self.settings.memory * self.reference + (1 - self.settings.memory) * aligned
                self.reference = np.where(fitted, blended, aligned)
        self.shape, self.scale, self.shift = raw_depth.shape, scale, shift
        return Alignment(scale, shift, reset, flat, robust_normalize(aligned)[2], unfitted)

    def _fitted_pixels(self, raw_unit: np.ndarray, reference_unit: np.ndarray, same_picture: bool,
                       trusted: np.ndarray | bool) -> np.ndarray | None:
        """The pixels to fit on (bool): the static ones (where the motion is trusted), or all of
        them when the frame changed everywhere but kept its layout; None for a scene cut."""
        settings = self.settings
        static = (np.abs(raw_unit - reference_unit) < settings.static_threshold) & trusted
        if static.mean() < settings.min_static:
            if np.corrcoef(raw_unit.ravel(), reference_unit.ravel())[0, 1] < settings.min_correlation and not same_picture:
                return None  # another layout and another picture: a scene cut
            static = np.ones_like(static)  # the same layout, changed everywhere: fit on every pixel
        return static

    def _fit(self, raw: np.ndarray, fitted: np.ndarray) -> tuple[float, float]:
        """Trimmed least squares of scale * raw + shift ~ reference over the `fitted` pixels."""
        chosen = fitted
        scale, shift = fit_scale_shift(raw[chosen], self.reference[chosen])
        for _ in range(self.settings.trim_rounds):
            residual = np.abs(scale * raw + shift - self.reference)
            kept = int(self.settings.keep * chosen.sum())
            if kept < 2 or not np.isfinite(scale):
                break
            limit = np.partition(residual[chosen], kept - 1)[kept - 1]
            chosen = fitted & (residual <= limit)
            scale, shift = fit_scale_shift(raw[chosen], self.reference[chosen])
        return scale, shift


class TemporalSmoother:
    """Step 2: the aligned frame averaged over time where it did not change.

    A pixel is unchanged when its aligned value lies within `change_threshold` deviations of the
    previous output; when the pictures are given, when instead its picture barely changed
    (`picture_threshold`) and its depth by at most `picture_change_threshold` deviations. An
    unchanged pixel is averaged with the previous output, `out_t = out_(t-1) + w * (aligned_t -
    out_(t-1))`, with w = smoothing_weights(n) for a pixel unchanged n frames in a row; the others
    (what moved, what the camera uncovered) are taken as they are. Given a moving camera's
    `motion`, the previous output, brightness and run lengths are first warped onto the frame,
    only trusted pixels may be smoothed, and the frame's average is `moving_smoothing`'s.
    """

    def __init__(self, settings: StabilizerSettings):
        self.settings = settings
        self.reset()

    def reset(self):
        self.previous = None  # float32 (H, W): the last output (None after a flat frame)
        self.run_length = None  # int (H, W): frames in a row each pixel was smoothed
        self.brightness = None  # float32 (H, W): the last picture's log_brightness, when pictures are given

    def __call__(self, aligned_hw: np.ndarray, spread: float, brightness: np.ndarray | None,
                 restart: bool, remember: bool, motion: Motion | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(output float32 (H, W), smoothed pixels bool (H, W)) for the aligned frame (float64,
        with `spread` its mean absolute deviation) and its picture's log_brightness (or None).
        `restart`: take the frame as it is (a reset, or a changed picture); `remember`: smooth
        the next frame against this one (False for a flat frame)."""
        settings = self.settings
        if restart or settings.smoothing == 0 or self.previous is None:
            smoothed = np.zeros(aligned_hw.shape, bool)
            run_length = np.zeros(aligned_hw.shape, np.int32)
            depth = aligned_hw.astype(np.float32)
        else:
            previous, previous_brightness, run_length, smoothing = self.previous, self.brightness, self.run_length, settings.smoothing
            if motion is not None:
                flow = upsample_flow(motion.flow_low, aligned_hw.shape)
                previous, run_length = warp_previous(previous, run_length, flow)
                if previous_brightness is not None:
                    previous_brightness = warp(previous_brightness, flow)
                smoothing = settings.moving_smoothing
            if brightness is not None and previous_brightness is not None:
                smoothed = np.abs(aligned_hw - previous) < settings.picture_change_threshold * spread
                smoothed &= np.abs(brightness - previous_brightness) < settings.picture_threshold
            else:
                smoothed = np.abs(aligned_hw - previous) < settings.change_threshold * spread
            if motion is not None:
                smoothed &= motion.trusted  # not occluded, not uncovered, inside the frame
            run_length = np.where(smoothed, run_length + 1, 0)
            weight = smoothing_weights(run_length, smoothing)
            blended = previous + weight * (aligned_hw - previous)
            depth = np.where(smoothed, blended, aligned_hw).astype(np.float32)
        self.run_length = run_length
        self.previous = depth if remember else None  # nothing is smoothed against a flat (black, blank) frame
        self.brightness = brightness
        return depth, smoothed


def warp_previous(previous: np.ndarray, run_length: np.ndarray, flow_hw2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The previous output (bilinear) and run lengths (nearest) moved onto the current frame."""
    return warp(previous, flow_hw2), warp(run_length.astype(np.float32), flow_hw2, nearest=True).astype(np.int32)


def robust_normalize(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(values - median) / mean absolute deviation, with the median and deviation (0 if flat)."""
    median = float(np.median(values))
    spread = float(np.mean(np.abs(values - median)))
    if not spread > 0:
        return np.zeros_like(values), median, 0.0
    return (values - median) / spread, median, spread



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


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["DepthStabilizer", "Stabilized", "StabilizerSettings", "smoothing_weights", "unstabilize",
           "warp_previous"]
