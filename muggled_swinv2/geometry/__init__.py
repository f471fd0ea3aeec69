"""Metric depth and the camera, from what the user knows (numpy only, no file I/O).

A relative model's inverse depth d is affine in metric inverse depth, 1 / z = s * d + t, with an
unknown scale s > 0 and shift t. `calibrate.py` fits s, t to known distances (a few points, a
sparse depth map from a LiDAR or an RGB-D camera, or the nearest and farthest distances in view)
and applies them; `camera.py` gives the pinhole intrinsics (from a field of view, a focal length in
pixels or the photo's EXIF) and turns metric depth into 3D points.

    calibration = fit_points(inverse_depth_hw, [(x, y, z), ...])     # z in metres
    depth_hw = apply_calibration(inverse_depth_hw, calibration)      # float32 metres, NaN = none
    camera = camera_intrinsics(width, height, fov_deg=70)
    points_hw3 = back_project(depth_hw, camera)

`stereo.py` renders a second eye from a picture and its depth, `stereo_layouts.py` packs two eyes
into the frames people view and reports their comfort (imported from their modules: torch).
"""

from .calibrate import (
    Calibration, CalibrationError, apply_calibration, check_known_points, check_points_inside, fit_depth_range,
    fit_points, fit_sparse_depth,
)
from .camera import CameraIntrinsics, ExifFocal, back_project, camera_intrinsics

__all__ = [
    "Calibration", "CalibrationError", "CameraIntrinsics", "ExifFocal", "apply_calibration", "back_project",
    "camera_intrinsics", "check_known_points", "check_points_inside", "fit_depth_range", "fit_points", "fit_sparse_depth",
]
