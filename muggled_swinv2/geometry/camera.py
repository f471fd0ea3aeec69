"""The pinhole camera of a picture: its intrinsics, where the focal length came from, 3D points.

Convention (OpenCV): x right, y down, z forward; pixel (u, v) (column, row) covers [u, u + 1) x
[v, v + 1), so its centre is at u + 0.5, and the principal point is the picture's centre
(cx, cy) = (W / 2, H / 2). Square pixels: fy = fx. A point at depth z seen at pixel (u, v):

    X = (u + 0.5 - cx) * z / fx,   Y = (v + 0.5 - cy) * z / fy,   Z = z.

The focal length in pixels, first found of:
- `focal_px` (--focal-px), or the horizontal field of view `fov_deg` (--fov): fx = (W / 2) / tan(fov / 2);
- EXIF FocalLengthIn35mmFilm: the 35 mm equivalent, defined by the diagonal (CIPA DC-008), so
  fx = f35 * sqrt(W^2 + H^2) / 43.27 (43.27 mm = the diagonal of 36 x 24 mm);
- EXIF FocalLength (mm) with FocalPlaneXResolution (pixels per FocalPlaneResolutionUnit on the
  sensor): fx = FocalLength * resolution / unit in mm (this assumes the picture has the sensor's
  resolution: a resized photo keeps its EXIF);
- otherwise a 60-degree horizontal field of view, said in the source.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

from .calibrate import CalibrationError

DEFAULT_FOV_DEG = 60.0
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)  # 43.27
RESOLUTION_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}  # EXIF FocalPlaneResolutionUnit: inch, cm, mm, um


@dataclass(frozen=True)
class ExifFocal:
    """The focal tags of a photo's EXIF (None where absent): FocalLengthIn35mmFilm (mm),
    FocalLength (mm), FocalPlaneXResolution (pixels per unit) and FocalPlaneResolutionUnit (2 inch,
    3 cm)."""

    focal_35mm: float | None = None
    focal_mm: float | None = None
    focal_plane_x_resolution: float | None = None
    focal_plane_unit: int | None = None


@dataclass(frozen=True)
class CameraIntrinsics:
    """fx, fy, cx, cy in pixels for a width x height picture; focal_source says where fx came from."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    focal_source: str

    @property
    def fov_deg(self) -> float:
        """The horizontal field of view, edge to edge."""
        return math.degrees(2 * math.atan(self.width / 2 / self.fx))

    def record(self) -> dict:
        return asdict(self)


def check_fov(fov_deg: float) -> float:
    if not (isinstance(fov_deg, (int, float)) and 0 < fov_deg < 180):
        raise CalibrationError(f"field of view {fov_deg!r}: expected degrees between 0 and 180 (exclusive)")
    return float(fov_deg)


def focal_from_fov(width: int, fov_deg: float) -> float:
    return width / 2 / math.tan(math.radians(check_fov(fov_deg)) / 2)


def focal_from_exif(width: int, height: int, exif: ExifFocal) -> tuple[float, str] | None:
    """(fx, source) from the EXIF tags, or None when they give no focal length."""
    if exif.focal_35mm and exif.focal_35mm > 0:
        fx = exif.focal_35mm * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM
        return fx, f"EXIF 35 mm equivalent focal length {exif.focal_35mm:g} mm"
    unit_mm = RESOLUTION_UNIT_MM.get(exif.focal_plane_unit or 2)
    if exif.focal_mm and exif.focal_mm > 0 and exif.focal_plane_x_resolution and exif.focal_plane_x_resolution > 0 \
            and unit_mm:
        fx = exif.focal_mm * exif.focal_plane_x_resolution / unit_mm
        return fx, f"EXIF focal length {exif.focal_mm:g} mm at {exif.focal_plane_x_resolution:g} pixels per {unit_mm:g} mm"
    return None


def camera_intrinsics(width: int, height: int, fov_deg: float | None = None, focal_px: float | None = None,
                      exif: ExifFocal | None = None) -> CameraIntrinsics:
    """The intrinsics of a width x height picture from the first of focal_px, fov_deg (horizontal,
    degrees), the EXIF focal tags, else a 60-degree field of view (see the module doc).
    CalibrationError (one line) for a field of view outside (0, 180) or a focal length that is not
    a positive number."""
    if focal_px is not None:
        if not (isinstance(focal_px, (int, float)) and math.isfinite(focal_px) and focal_px > 0):
            raise CalibrationError(f"focal length {focal_px!r} pixels: expected a positive number")
        fx, source = float(focal_px), f"--focal-px {focal_px:g}"
    elif fov_deg is not None:
        fx, source = focal_from_fov(width, fov_deg), f"--fov {fov_deg:g} degrees"
    elif exif is not None and (found := focal_from_exif(width, height, exif)):
        fx, source = found
    else:
        fx = focal_from_fov(width, DEFAULT_FOV_DEG)
        source = f"assumed a {DEFAULT_FOV_DEG:g}-degree horizontal field of view (no --fov, --focal-px or EXIF focal length)"
    return CameraIntrinsics(fx=fx, fy=fx, cx=width / 2, cy=height / 2, width=width, height=height, focal_source=source)


def back_project(depth: np.ndarray, camera: CameraIntrinsics) -> np.ndarray:
    """Metric depth (H, W) -> camera-frame points (H, W, 3) float32, metres (NaN depth -> NaN points)."""
    depth = np.asarray(depth, dtype=np.float32)
    if depth.shape != (camera.height, camera.width):
        raise CalibrationError(f"depth {depth.shape} does not match the {camera.width}x{camera.height} camera")
    columns = (np.arange(camera.width, dtype=np.float64) + 0.5 - camera.cx) / camera.fx
    rows = (np.arange(camera.height, dtype=np.float64) + 0.5 - camera.cy) / camera.fy
    points = np.empty((*depth.shape, 3), dtype=np.float32)
    points[..., 0] = columns[None, :] * depth
    points[..., 1] = rows[:, None] * depth
    points[..., 2] = depth
    return points
