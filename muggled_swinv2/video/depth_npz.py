"""The `video --raw npz` file, both directions: the float depth frames and what undoes their
stabilisation. This module is the one place its entries are named.

Entries (each an .npy inside the zip, written as the video is):
- `frame_NNNNNN`: float32 (H, W) inverse depth as the video shows it (stabilised unless
  `--no-stabilize`, then the model's raw predictions);
and when stabilised (video/stabilize.py), what `recover_raw` needs to get the raw predictions back:
- `smoothed_NNNNNN`: the frame's smoothed pixels, a bool (H, W) mask packed into bits;
- `flow_NNNNNN`: float16 (h, w, 2), the motion the smoothing followed (moving-camera frames only);
- `scale`, `shift`: float64 (frames,), `aligned = scale * raw + shift` per frame;
- `reset`: bool (frames,), True on the first frame and on scene cuts;
- `smoothing`, `moving_smoothing`: float64 scalars, the settings the smoothing weights followed;
and with metric depth (jobs/metric.py's ClipCalibration: --known, --sparse-depth, --depth-range):
- `metric_NNNNNN`: float32 (H, W) metres along the optical axis, NaN where there is no depth;
- `metric_scale`, `metric_shift`: float64 (frames,), the fit each frame got:
  metric = 1 / (metric_scale * frame + metric_shift) (geometry.apply_calibration).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.video import AtomicNpzWriter
from .motion import upsample_flow
from .stabilize import Stabilized, StabilizerSettings, smoothing_weights, unstabilize, warp_previous


def frame_name(index: int) -> str:
    return f"frame_{index:06d}"


def smoothed_name(index: int) -> str:
    return f"smoothed_{index:06d}"


def flow_name(index: int) -> str:
    return f"flow_{index:06d}"


def metric_name(index: int) -> str:
    return f"metric_{index:06d}"


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """A bool (H, W) mask as bits (1/8 of the bytes), for the npz."""
    return np.packbits(mask, axis=None)


def unpack_mask(bits: np.ndarray, shape_hw) -> np.ndarray:
    return np.unpackbits(bits, count=int(np.prod(shape_hw))).reshape(shape_hw).astype(bool)


@dataclass(frozen=True)
class FrameMetric:
    """A frame's metric depth (H, W) float32 metres (NaN: none) and the fit 1/z = scale * frame + shift."""
    depth: np.ndarray
    scale: float
    shift: float


class DepthNpzWriter:
    """Streams the frames (and with `settings`, a stabilised video's undo entries) into the npz,
    published by `finish` (io.video.AtomicNpzWriter: nothing at the path until then, no frames no file)."""

    def __init__(self, path: Path, settings: StabilizerSettings | None):
        self.archive = AtomicNpzWriter(path)
        self.settings = settings  # None: not stabilised, the frames are the raw predictions
        self.frames = 0
        self.scales, self.shifts, self.resets = [], [], []
        self.metric_scales, self.metric_shifts = [], []

    def write(self, depth: np.ndarray, stable: Stabilized | None = None, metric: FrameMetric | None = None) -> None:
        """One output frame (H, W), how the stabiliser made it (None without stabilisation), and its
        metric depth with the fit it came from (None without)."""
        if metric is not None:
            self.archive.write_array(metric_name(self.frames), metric.depth.astype(np.float32))
            self.metric_scales.append(metric.scale)
            self.metric_shifts.append(metric.shift)
        if stable is not None:
            self.archive.write_array(smoothed_name(self.frames), pack_mask(stable.smoothed))
            if stable.flow_low is not None:  # a moving camera: the motion the smoothing followed
                self.archive.write_array(flow_name(self.frames), stable.flow_low)
        self.archive.write_array(frame_name(self.frames), depth.astype(np.float32))
        self.frames += 1
        if stable is not None:
            self.scales.append(stable.scale)
            self.shifts.append(stable.shift)
            self.resets.append(stable.reset)

    def finish(self) -> None:
        """Add the stabilisation's per-video entries and publish the file; no frames: no file."""
        if not self.frames:
            self.abandon()
            return
        if self.metric_scales:
            self.archive.write_array("metric_scale", np.array(self.metric_scales, np.float64))
            self.archive.write_array("metric_shift", np.array(self.metric_shifts, np.float64))
        if self.settings is not None:
            self.archive.write_array("scale", np.array(self.scales, np.float64))
            self.archive.write_array("shift", np.array(self.shifts, np.float64))
            self.archive.write_array("reset", np.array(self.resets, bool))
            self.archive.write_array("smoothing", np.array(self.settings.smoothing, np.float64))
            self.archive.write_array("moving_smoothing", np.array(self.settings.moving_smoothing, np.float64))
        self.archive.finish()

    def abandon(self) -> None:
        self.archive.abandon()


def recover_raw(archive) -> list[np.ndarray]:
    """The raw predictions from a `video --raw npz` file (an np.load result or a dict): when
    stabilised, its frame_NNNNNN outputs undone with the per-frame scale and shift, the
    smoothed_NNNNNN packed masks, the flow_NNNNNN flows of a moving camera's frames and smoothing
    (moving_smoothing for those frames); without stabilisation, its frames as they are."""
    frames = sorted(name for name in archive.keys() if name.startswith("frame_"))
    if "scale" not in archive:  # written with --no-stabilize: the frames are the raw predictions
        return [archive[name] for name in frames]
    smoothing = float(archive["smoothing"]) if "smoothing" in archive else 0.0
    moving_smoothing = float(archive["moving_smoothing"]) if "moving_smoothing" in archive else smoothing
    raw, previous, run_length = [], None, None
    for index, name in enumerate(frames):
        depth = archive[name]
        mask_name, flow_key = smoothed_name(index), flow_name(index)
        smoothed = unpack_mask(archive[mask_name], depth.shape) if mask_name in archive else np.zeros(depth.shape, bool)
        if run_length is None or run_length.shape != depth.shape:
            run_length = np.zeros(depth.shape, np.int32)
        frame_smoothing = smoothing
        if flow_key in archive and smoothed.any():  # a moving camera: the previous frame followed the pixels
            previous, run_length = warp_previous(previous, run_length, upsample_flow(archive[flow_key], depth.shape))
            frame_smoothing = moving_smoothing
        run_length = np.where(smoothed, run_length + 1, 0)
        weight = smoothing_weights(run_length, frame_smoothing)
        raw.append(unstabilize(depth, archive["scale"][index], archive["shift"][index], previous, smoothed, weight))
        previous = depth
    return raw


def read_metric(archive) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(metric frames (H, W) float32 metres, NaN: none; the per-frame fit's scale (frames,), shift
    (frames,)) from a `video --raw npz` file written with metric depth; ([], empty, empty) without."""
    frames = sorted(name for name in archive.keys() if name.startswith("metric_") and name[7:].isdigit())
    if not frames:
        return [], np.zeros(0), np.zeros(0)
    return [archive[name] for name in frames], np.asarray(archive["metric_scale"]), np.asarray(archive["metric_shift"])


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["DepthNpzWriter", "FrameMetric", "pack_mask", "read_metric", "recover_raw", "unpack_mask"]
