"""Metric depth for one picture of the image job: (picture, inverse depth) -> metric depth and camera.

The options say what the user knows (geometry/calibrate.py: known points, a sparse depth map or
folder of them, a depth range) and about the camera (geometry/camera.py); `calibrate_picture`
fits and applies them for one picture; the image job's metric rows (jobs/images.OUTPUTS) write
`<stem>_metric.npy`, `<stem>_metric_mm.png` (millimetres_png16) and `<stem>_camera.json` (save_json).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..geometry import (
    Calibration, CalibrationError, CameraIntrinsics, apply_calibration, camera_intrinsics, fit_depth_range,
    fit_points, fit_sparse_depth,
)
from ..io.atomic import write_atomically
from ..io.exif import read_exif_focal
from ..io.known_depth import SPARSE_DEPTH_SUFFIXES, read_sparse_depth, resample_nearest_valid

PNG16_MAX_MM = 65535  # the 16-bit PNG's largest distance; farther pixels are written as 0 (unknown)


@dataclass(frozen=True)
class MetricOptions:
    """What the user knows: known points (x, y, z metres), else a sparse depth map (a file, or a
    folder matched by the picture's stem), else the nearest and farthest distances; the fit
    ("affine" or "scale"); the camera's horizontal field of view or focal length in pixels (None:
    EXIF, else 60 degrees)."""

    known_points: tuple[tuple[float, float, float], ...] = ()
    sparse_depth: Path | None = None
    depth_range: tuple[float, float] | None = None
    fit: str = "affine"
    fov_deg: float | None = None
    focal_px: float | None = None


def fit_record(camera: CameraIntrinsics, calibration: Calibration, known_points=()) -> dict:
    """The camera and the fit as JSON-ready values (the `_camera.json` files), each known point
    with its relative error."""
    record = {**camera.record(), **calibration.record(),
              "depth": "metres along the optical axis (z); OpenCV pinhole: x right, y down, z forward, "
                       "pixel (u, v) centred at (u + 0.5, v + 0.5)"}
    if known_points:
        record["known_points"] = [
            {"x": x, "y": y, "z": z, "relative_error": error}
            for (x, y, z), error in zip(known_points, record.pop("relative_errors"))
        ]
    return record


@dataclass
class MetricResult:
    """One picture's metric depth (H, W) float32 metres (NaN: no depth), its camera and its fit."""

    depth: np.ndarray
    camera: CameraIntrinsics
    calibration: Calibration
    known_points: tuple = field(default=())

    @property
    def no_depth(self) -> int:
        return int(np.isnan(self.depth).sum())

    def record(self) -> dict:
        """The `<stem>_camera.json` contents."""
        return {**fit_record(self.camera, self.calibration, self.known_points), "no_depth_pixels": self.no_depth}

    def summary(self) -> str:
        """One line: the fit, the camera, the pixels without depth and the assumptions made (the
        warnings are lines of their own: `warnings`)."""
        line = (f"metric: {self.calibration.summary()}; fx {self.camera.fx:.1f} px ({self.camera.focal_source})"
                f"{f'; {self.no_depth} pixels without depth' if self.no_depth else ''}")
        return "; ".join([line, *self.calibration.notes])

    def warnings(self) -> list[str]:
        """One line per warning of the fit (ill-conditioned: shown even with --quiet)."""
        return [f"metric: warning: {warning}" for warning in self.calibration.warnings]


def sparse_depth_file(options: MetricOptions, source: Path) -> Path:
    """The sparse depth map of a picture: the file given, or the folder's file named as the
    picture (its stem with one of SPARSE_DEPTH_SUFFIXES). CalibrationError when there is none."""
    given = options.sparse_depth
    if not given.is_dir():
        return given
    found = [given / f"{source.stem}{suffix}" for suffix in SPARSE_DEPTH_SUFFIXES if (given / f"{source.stem}{suffix}").is_file()]
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise CalibrationError(f"--sparse-depth {given}: {what} sparse depth map named {source.stem}"
                               f"{{{','.join(SPARSE_DEPTH_SUFFIXES)}}} for the picture {source}")
    return found[0]


def fit_known(inverse_depth: np.ndarray, options: MetricOptions, sparse_path: Path | None) -> Calibration:
    """The fit of what the user knows to one inverse depth (H, W): the known points, else the
    sparse map at `sparse_path` (read and brought to the prediction's size), else the depth range.
    CalibrationError (one line, naming the map) when the fit is refused."""
    if options.known_points:
        return fit_points(inverse_depth, options.known_points, options.fit)
    if sparse_path is not None:
        sparse = resample_nearest_valid(read_sparse_depth(sparse_path), inverse_depth.shape)
        try:
            return fit_sparse_depth(inverse_depth, sparse, options.fit)
        except CalibrationError as error:
            raise CalibrationError(f"sparse depth {sparse_path}: {error}") from None
    if options.depth_range is not None:
        return fit_depth_range(inverse_depth, *options.depth_range)
    raise CalibrationError("metric depth needs what you know: --known, --known-file, --sparse-depth or --depth-range")


def calibrate_picture(source: Path, inverse_depth: np.ndarray, options: MetricOptions) -> MetricResult:
    """Fit what the user knows to one picture's inverse depth (H, W) and apply it; the camera from
    the options or the picture's EXIF. CalibrationError (one line) when the fit is refused."""
    sparse_path = sparse_depth_file(options, source) if options.sparse_depth is not None else None
    calibration = fit_known(inverse_depth, options, sparse_path)
    height, width = inverse_depth.shape
    camera = camera_intrinsics(width, height, options.fov_deg, options.focal_px, read_exif_focal(source))
    return MetricResult(apply_calibration(inverse_depth, calibration), camera, calibration, options.known_points)


# ----------------------------------------------------------------------------- a video's frames


def sparse_depth_frames(folder: Path) -> list[Path]:
    """A folder's sparse maps (SPARSE_DEPTH_SUFFIXES) in name order: the n-th is the video's n-th
    frame's (000000.npy, 000001.npy, ... or any names that sort in frame order)."""
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in SPARSE_DEPTH_SUFFIXES)


class ClipCalibration:
    """Metric depth for the frames of one video, from what the user knows.

    Stabilised frames (video/stabilize.py) share one scale and shift, so one fit made on the first
    frame holds for the whole clip: known points and a sparse map file are fitted on the first
    frame (they describe it), --depth-range on the first frame of each scene (after a cut, the
    nearest and farthest in view are the new scene's). At a scene cut, the stabiliser maps the new
    scene onto the old one's median and spread; a first-frame fit of points or a map carries on
    over it, and the metres after a cut are then a guess, which `cuts_carried` counts. A folder of
    sparse maps is fitted frame by frame (the n-th map sorted by name for the n-th frame); frames
    after the last map keep the last fit (stabilised only). Without stabilisation each frame has
    its own scale, so only per-frame fits apply: a folder of maps or the depth range.
    """

    def __init__(self, options: MetricOptions, frame_hw: tuple[int, int], stabilized: bool):
        self.options, self.stabilized = options, stabilized
        height, width = frame_hw
        self.camera = camera_intrinsics(width, height, options.fov_deg, options.focal_px)  # a video has no EXIF
        per_frame = options.sparse_depth is not None and options.sparse_depth.is_dir()
        self.maps = sparse_depth_frames(options.sparse_depth) if per_frame else None
        self.fits: list[tuple[int, Calibration]] = []  # (frame index, the fit made there)
        self.cuts_carried = 0  # scene cuts over which a first-frame fit of points or a map carried on
        self.without_map = 0  # frames after the folder's last map, which kept the last fit

    @property
    def current(self) -> Calibration | None:
        return self.fits[-1][1] if self.fits else None

    def __call__(self, index: int, inverse_depth: np.ndarray, reset: bool) -> tuple[np.ndarray, Calibration]:
        """Frame `index`'s metric depth (H, W) float32 metres (NaN: none) and the fit it got, from
        its output inverse depth (H, W); `reset`: the stabiliser restarted here (a scene cut).
        CalibrationError (one line naming the frame) when a frame's fit is refused."""
        refit = self.current is None or not self.stabilized or (reset and self.options.depth_range is not None)
        sparse_path = None
        if self.maps is not None:
            if index < len(self.maps):
                refit, sparse_path = True, self.maps[index]
            elif self.stabilized:
                refit, self.without_map = False, self.without_map + 1
            else:
                raise CalibrationError(f"--sparse-depth {self.options.sparse_depth}: no map for frame {index + 1} "
                                       f"(the folder has {len(self.maps)})")
        elif self.options.sparse_depth is not None:
            sparse_path = self.options.sparse_depth
        if refit:
            try:
                self.fits.append((index, fit_known(inverse_depth, self.options, sparse_path)))
            except CalibrationError as error:
                raise CalibrationError(f"frame {index + 1}: {error}") from None
        elif reset:
            self.cuts_carried += 1
        return apply_calibration(inverse_depth, self.current), self.current

    def summary(self, frames: int) -> str:
        """One line: the first fit, how many more, the camera, what carried over."""
        first = self.fits[0][1]
        parts = [f"metric: {first.summary()}" + (f" on frame 1, then {len(self.fits) - 1} more fits"
                                                  if len(self.fits) > 1 else " on frame 1, for all frames"),
                 f"fx {self.camera.fx:.1f} px ({self.camera.focal_source})", *first.notes, *first.warnings]
        if self.cuts_carried:
            parts.append(f"{self.cuts_carried} scene cut{'s' if self.cuts_carried != 1 else ''} crossed with the first "
                         f"frame's fit (metres after a cut assume the stabiliser's matched median and spread)")
        if self.without_map:
            parts.append(f"{self.without_map} frames after the last sparse map kept its fit")
        return "; ".join(parts)

    def record(self, frames: int) -> dict:
        """The video's `<stem>_camera.json`: the camera, the first fit (as a picture's), each fit's frame."""
        record = fit_record(self.camera, self.fits[0][1], self.options.known_points)
        record["frames"] = frames
        record["fits"] = [{"frame": index, "scale": fit.scale, "shift": fit.shift, "points": fit.points,
                           "outliers": fit.outliers} for index, fit in self.fits]
        record["scene_cuts_crossed"] = self.cuts_carried
        record["frames_without_map"] = self.without_map
        return record


def save_json(path, record: dict) -> None:
    text = json.dumps(record, indent=1) + "\n"
    write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def millimetres_png16(depth: np.ndarray) -> np.ndarray:
    """Metres (NaN: unknown) -> uint16 millimetres, 0 where unknown or beyond 65.535 m."""
    millimetres = np.round(np.nan_to_num(depth, nan=0.0) * 1000.0)
    return np.where((millimetres >= 1) & (millimetres <= PNG16_MAX_MM), millimetres, 0).astype(np.uint16)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["ClipCalibration", "MetricOptions", "MetricResult", "calibrate_picture", "fit_known", "sparse_depth_frames"]
