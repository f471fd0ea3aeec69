"""Metric depth for one picture of the image job: (picture, inverse depth) -> metric depth and camera.

The options say what the user knows (geometry/calibrate.py: known points, a sparse depth map or
folder of them, a depth range) and about the camera (geometry/camera.py); `calibrate_picture`
fits and applies them for one picture; the writers below write `<stem>_metric.npy`,
`<stem>_metric_mm.png` and `<stem>_camera.json` (through the image job's output rule).
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
from ..io.images import save_image, save_npy
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
        record = {**self.camera.record(), **self.calibration.record(), "no_depth_pixels": self.no_depth,
                  "depth": "metres along the optical axis (z); OpenCV pinhole: x right, y down, z forward, "
                           "pixel (u, v) centred at (u + 0.5, v + 0.5)"}
        if self.known_points:
            record["known_points"] = [
                {"x": x, "y": y, "z": z, "relative_error": error}
                for (x, y, z), error in zip(self.known_points, record.pop("relative_errors"))
            ]
        return record

    def summary(self) -> str:
        """One line: the fit, the camera, the pixels without depth, and any warning."""
        line = (f"metric: {self.calibration.summary()}; fx {self.camera.fx:.1f} px ({self.camera.focal_source})"
                f"{f'; {self.no_depth} pixels without depth' if self.no_depth else ''}")
        return "; ".join([line, *self.calibration.notes, *self.calibration.warnings])


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


def calibrate_picture(source: Path, inverse_depth: np.ndarray, options: MetricOptions) -> MetricResult:
    """Fit what the user knows to one picture's inverse depth (H, W) and apply it; the camera from
    the options or the picture's EXIF. CalibrationError (one line) when the fit is refused."""
    if options.known_points:
        calibration = fit_points(inverse_depth, options.known_points, options.fit)
    elif options.sparse_depth is not None:
        path = sparse_depth_file(options, source)
        sparse = resample_nearest_valid(read_sparse_depth(path), inverse_depth.shape)
        try:
            calibration = fit_sparse_depth(inverse_depth, sparse, options.fit)
        except CalibrationError as error:
            raise CalibrationError(f"sparse depth {path}: {error}") from None
    elif options.depth_range is not None:
        calibration = fit_depth_range(inverse_depth, *options.depth_range)
    else:
        raise CalibrationError("metric depth needs what you know: --known, --known-file, --sparse-depth or --depth-range")
    height, width = inverse_depth.shape
    camera = camera_intrinsics(width, height, options.fov_deg, options.focal_px, read_exif_focal(source))
    return MetricResult(apply_calibration(inverse_depth, calibration), camera, calibration, options.known_points)


def millimetres_png16(depth: np.ndarray) -> np.ndarray:
    """Metres (NaN: unknown) -> uint16 millimetres, 0 where unknown or beyond 65.535 m."""
    millimetres = np.round(np.nan_to_num(depth, nan=0.0) * 1000.0)
    return np.where((millimetres >= 1) & (millimetres <= PNG16_MAX_MM), millimetres, 0).astype(np.uint16)


def save_camera_json(path, result: MetricResult) -> None:
    text = json.dumps(result.record(), indent=1) + "\n"
    write_atomically(path, lambda file: file.write(text.encode("utf-8")))


# Output kind -> writer(path, MetricResult) (jobs/images.py's OUTPUTS names their files).
METRIC_WRITERS = {
    "metric": lambda path, result: save_npy(path, result.depth),
    "metric-png16": lambda path, result: save_image(path, millimetres_png16(result.depth)),
    "camera": save_camera_json,
}
