"""Metric depth from what the user knows: the fits (exact recovery, outliers, leave-one-out), the
camera (field of view, EXIF formula), the readers (sparse maps in metres and millimetres, CSV,
EXIF bytes built here), and every bad input's one-line message."""

import math
import struct

import numpy as np
import pytest

import cv2
from muggled_swinv2 import (
    CalibrationError, apply_calibration, back_project, camera_intrinsics, fit_depth_range, fit_points,
    fit_sparse_depth,
)
from muggled_swinv2.geometry import ExifFocal
from muggled_swinv2.io.exif import read_exif_focal, shown_size, tiff_focal
from muggled_swinv2.io.images import save_pfm
from muggled_swinv2.io.known_depth import read_known_points, read_sparse_depth, resample_nearest_valid
from muggled_swinv2.scale_shift import fit_scale_shift

SCALE, SHIFT = 0.37, 0.052  # 1/z = SCALE * d + SHIFT


def prediction(height=48, width=64, seed=0) -> np.ndarray:
    """A smooth float64 inverse depth map with values 0.5..3."""
    rows, columns = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).uniform(0, 0.2, (height, width))
    return 0.5 + 2.3 * rows / (height - 1) + 0.1 * np.sin(columns / 5) + noise


def true_depth(inverse_depth):
    return 1.0 / (SCALE * inverse_depth + SHIFT)


def known(inverse_depth, pixels):
    z = true_depth(inverse_depth)
    return [(x, y, z[y, x]) for x, y in pixels]


# ----------------------------------------------------------------------------- the fits


def test_points_recover_scale_and_shift_exactly():
    d = prediction()
    calibration = fit_points(d, known(d, [(3, 2), (60, 10), (30, 25), (8, 44), (50, 47)]))
    assert calibration.scale == pytest.approx(SCALE, rel=1e-12)
    assert calibration.shift == pytest.approx(SHIFT, rel=1e-12)
    assert max(calibration.relative_errors) < 1e-12 and calibration.leave_one_out_error < 1e-12
    depth = apply_calibration(d, calibration)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, true_depth(d), rtol=1e-6)
    assert calibration.warnings == () and calibration.notes == ()


def test_leave_one_out_is_each_point_predicted_by_the_others():
    d = prediction()
    points = known(d, [(3, 2), (60, 10), (30, 25), (8, 44)])
    points[2] = (30, 25, points[2][2] * 1.3)  # one measurement 30% off
    calibration = fit_points(d, points)
    held_out = []
    for index in range(4):
        others = [point for other, point in enumerate(points) if other != index]
        slope, intercept = np.polyfit([d[y, x] for x, y, _ in others], [1 / z for _, _, z in others], 1)
        x, y, z = points[index]
        held_out.append(abs(1 / (slope * d[y, x] + intercept) - z) / z)
    assert calibration.leave_one_out_error == pytest.approx(np.mean(held_out), rel=1e-9)
    assert calibration.leave_one_out_error > max(calibration.relative_errors) / 4 > 0.01
    # with 3 points there is no leave-one-out estimate
    assert math.isnan(fit_points(d, points[:3]).leave_one_out_error)


def test_scale_fit_takes_one_point_and_says_it_assumes_shift_zero():
    d = prediction()
    calibration = fit_points(d, [(10, 20, 2.5)], fit="scale")
    assert calibration.shift == 0 and calibration.scale == pytest.approx(1 / (2.5 * d[20, 10]), rel=1e-12)
    assert calibration.relative_errors == (pytest.approx(0, abs=1e-12),)
    assert "shift 0" in calibration.notes[0]


def test_sparse_map_with_20_percent_gross_outliers():
    d = prediction(96, 128)
    rng = np.random.default_rng(1)
    sparse = np.full(d.shape, np.nan)
    sparse[::4, ::4] = true_depth(d)[::4, ::4]
    known_pixels = np.isfinite(sparse)
    wrong = known_pixels & (rng.random(d.shape) < 0.2)
    sparse[wrong] *= rng.choice([0.3, 0.5, 2.0, 3.0], wrong.sum())  # flying pixels, reflections
    calibration = fit_sparse_depth(d, sparse)
    assert calibration.scale == pytest.approx(SCALE, rel=1e-9)
    assert calibration.shift == pytest.approx(SHIFT, rel=1e-9)
    assert calibration.points == known_pixels.sum() and calibration.outliers == wrong.sum()
    # plain least squares is pulled away by the same outliers: the robust fit is what recovers s, t
    plain_scale, _ = fit_scale_shift(d, 1 / sparse, known_pixels)
    assert abs(plain_scale / SCALE - 1) > 0.05


def test_sparse_map_without_outliers_equals_least_squares_on_noisy_data():
    d = prediction(96, 128)
    rng = np.random.default_rng(2)
    sparse = true_depth(d) * rng.normal(1, 0.002, d.shape)  # 0.2% noise: all inliers
    calibration = fit_sparse_depth(d, sparse)
    scale, shift = fit_scale_shift(d, 1 / sparse)
    assert calibration.outliers == 0
    assert (calibration.scale, calibration.shift) == pytest.approx((scale, shift), rel=1e-12)


def test_a_dense_map_is_fitted_on_a_regular_sample(monkeypatch):
    from muggled_swinv2.geometry import calibrate

    monkeypatch.setattr(calibrate, "MAX_FIT_PIXELS", 1000)
    d = prediction(96, 128)
    calibration = fit_sparse_depth(d, true_depth(d))
    assert (calibration.scale, calibration.shift) == pytest.approx((SCALE, SHIFT), rel=1e-9)
    assert calibration.points == len(range(0, 96 * 128, 13)) and calibration.outliers == 0
    assert calibration.notes == ("fitted to one in 13 of the 12288 known pixels (a regular sample)",)


def test_no_depth_where_the_fit_puts_pixels_at_or_beyond_infinity():
    d = np.array([[2.0, 1.0, 0.5], [0.0, np.nan, -1.0]])
    calibration = fit_points(d, [(0, 0, 1.0), (1, 0, 2.0)])  # 1/z = 0.5 d + 0 ... (2, 1) -> (1, 0.5)
    assert (calibration.scale, calibration.shift) == pytest.approx((0.5, 0.0), abs=1e-12)
    depth = apply_calibration(d, calibration)
    np.testing.assert_array_equal(np.isnan(depth), [[False, False, False], [True, True, True]])
    np.testing.assert_allclose(depth[0], [1.0, 2.0, 4.0])


def test_depth_range_puts_the_percentiles_at_near_and_far():
    d = prediction()
    calibration = fit_depth_range(d, 0.5, 12.0)
    low, high = np.percentile(d, [1, 99])
    assert 1 / (calibration.scale * high + calibration.shift) == pytest.approx(0.5)
    assert 1 / (calibration.scale * low + calibration.shift) == pytest.approx(12.0)
    assert "12 m" in calibration.notes[0]


def test_ill_conditioned_fits_are_warned_about():
    d = prediction()
    near_one_depth = fit_points(d, [(0, 0, 3.2), (63, 47, 3.0)])
    assert any("nearly one depth" in line for line in near_one_depth.warnings)
    small_part = fit_points(d, known(d, [(10, 10), (12, 20), (14, 15)]))
    assert any("small part of the picture" in line for line in small_part.warnings)
    assert not fit_points(d, known(d, [(0, 0), (63, 47)])).warnings


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("points, fit, message", [
    ([(64, 3, 2.0), (1, 1, 3.0)], "affine", "known point 1 (64,3=2): outside the 64x48 picture"),
    ([(1, 1, 2.0), (5, -1, 3.0)], "affine", "known point 2 (5,-1=3): outside"),
    ([(1, 1, 2.0), (5, 5, 0.0)], "affine", "known point 2 (5,5=0): the distance must be a positive"),
    ([(100, 100, 2.0), (5, 5, 0.0)], "affine", "known point 2 (5,5=0): the distance must be a positive"),
    ([(1, 1, -2.0), (5, 5, 1.0)], "affine", "known point 1 (1,1=-2): the distance must be a positive"),
    ([(1, 1, float("nan")), (5, 5, 1.0)], "affine", "known point 1 (1,1=nan): the distance"),
    ([(1, 1, float("inf")), (5, 5, 1.0)], "affine", "known point 1 (1,1=inf): the distance"),
    ([(1, 1, 2.0)], "affine", "1 known point: an affine fit needs 2 or more"),
    ([(1, 1, 2.0), (30, 40, 2.0), (60, 5, 2.0)], "affine", "all known points are at one depth (2 m)"),
    ([(1, 1, 2.0)], "median", "fit 'median': expected one of affine, scale"),
    ([], "scale", "no known points"),
])
def test_bad_points(points, fit, message):
    with pytest.raises(CalibrationError) as raised:
        fit_points(prediction(), points, fit=fit)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_points_that_contradict_the_prediction():
    d = prediction()
    with pytest.raises(CalibrationError, match="contradict the prediction"):
        fit_points(d, [(0, 0, 1.0), (0, 47, 5.0)])  # the bottom row is predicted nearest


def test_sparse_map_without_a_valid_pixel():
    d = prediction()
    for values in (0.0, np.nan, np.inf, -1.0):
        with pytest.raises(CalibrationError, match="no valid pixel"):
            fit_sparse_depth(d, np.full(d.shape, values))


def test_sparse_map_with_one_pixel_or_one_depth():
    d = prediction()
    one = np.full(d.shape, np.nan)
    one[3, 4] = 2.0
    with pytest.raises(CalibrationError, match=r"^1 known pixel in the sparse depth map: an affine fit needs 2"):
        fit_sparse_depth(d, one)
    assert fit_sparse_depth(d, one, fit="scale").scale == pytest.approx(1 / (2.0 * d[3, 4]))
    with pytest.raises(CalibrationError, match="all known pixels of the sparse depth map are at one depth"):
        fit_sparse_depth(d, np.full(d.shape, 3.0))


@pytest.mark.parametrize("fov", [0, 180, -5, 200, float("nan")])
def test_field_of_view_outside_0_180(fov):
    with pytest.raises(CalibrationError, match=r"field of view .*between 0 and 180"):
        camera_intrinsics(64, 48, fov_deg=fov)


# ----------------------------------------------------------------------------- the camera


def test_camera_from_fov_focal_px_and_the_default():
    camera = camera_intrinsics(640, 480, fov_deg=90)
    assert camera.fx == pytest.approx(320) and camera.fy == camera.fx
    assert (camera.cx, camera.cy, camera.width, camera.height) == (320, 240, 640, 480)
    assert camera.fov_deg == pytest.approx(90)
    assert camera_intrinsics(640, 480, focal_px=500.0, fov_deg=90).fx == 500  # --focal-px first
    default = camera_intrinsics(640, 480)
    assert default.fx == pytest.approx(320 / math.tan(math.radians(30)))
    assert "assumed a 60-degree" in default.focal_source


def test_exif_35mm_formula_is_the_cipa_diagonal():
    camera = camera_intrinsics(4032, 3024, exif=ExifFocal(focal_35mm=26, focal_mm=4.25))
    assert camera.fx == pytest.approx(26 * 5040 / math.sqrt(36**2 + 24**2), rel=1e-12)  # 3028.66
    assert camera.fx == pytest.approx(3028.66, abs=0.01)
    assert "35 mm equivalent" in camera.focal_source
    # FocalLength with the focal plane resolution: 4.25 mm at 1000 pixels per cm -> 425 pixels
    plane = camera_intrinsics(4032, 3024, exif=ExifFocal(focal_mm=4.25, focal_plane_x_resolution=1000,
                                                         focal_plane_unit=3))
    assert plane.fx == pytest.approx(425)
    # the field of view given on the command line wins over EXIF
    assert camera_intrinsics(4032, 3024, fov_deg=90, exif=ExifFocal(focal_35mm=26)).fx == pytest.approx(2016)


def test_back_projection():
    camera = camera_intrinsics(4, 2, focal_px=2.0)
    depth = np.full((2, 4), 3.0, np.float32)
    depth[1, 3] = np.nan
    points = back_project(depth, camera)
    # pixel (u, v) = (0, 0): centre at (0.5, 0.5), principal point (2, 1)
    np.testing.assert_allclose(points[0, 0], [(0.5 - 2) * 3 / 2, (0.5 - 1) * 3 / 2, 3])
    np.testing.assert_allclose(points[1, 2], [(2.5 - 2) * 3 / 2, (1.5 - 1) * 3 / 2, 3])
    assert np.isnan(points[1, 3]).all()


# ----------------------------------------------------------------------------- EXIF bytes


def exif_tiff(order: str, focal_35mm=None, focal=None, plane=None, unit=None, orientation=None) -> bytes:
    """A TIFF structure: IFD0 with the Exif pointer (and the orientation), the Exif IFD with the focal tags."""
    entries = []  # (tag, type, value: int or (numerator, denominator))
    if focal_35mm is not None:
        entries.append((0xA405, 3, focal_35mm))
    if focal is not None:
        entries.append((0x920A, 5, focal))
    if plane is not None:
        entries.append((0xA20E, 5, plane))
    if unit is not None:
        entries.append((0xA210, 3, unit))
    ifd0 = 8
    ifd0_entries = [(0x0112, 3, orientation)] if orientation is not None else []
    exif_ifd = ifd0 + 2 + 12 * (len(ifd0_entries) + 1) + 4
    data_at = exif_ifd + 2 + 12 * len(entries) + 4
    head = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, ifd0)
    head += struct.pack(order + "H", len(ifd0_entries) + 1)
    for tag, kind, value in ifd0_entries:
        head += struct.pack(order + "HHIH", tag, kind, 1, value) + b"\0\0"
    head += struct.pack(order + "HHII", 0x8769, 4, 1, exif_ifd) + b"\0\0\0\0"
    body, data = struct.pack(order + "H", len(entries)), b""
    for tag, kind, value in sorted(entries):
        if kind == 3:
            body += struct.pack(order + "HHIH", tag, kind, 1, value) + b"\0\0"
        else:
            body += struct.pack(order + "HHII", tag, kind, 1, data_at + len(data))
            data += struct.pack(order + "II", *value)
    return head + body + b"\0\0\0\0" + data


def jpeg_with_exif(tiff: bytes, width=80, height=60) -> bytes:
    ok, encoded = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))
    segment = b"Exif\0\0" + tiff
    return encoded[:2].tobytes() + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + encoded[2:].tobytes()


def test_exif_focal_from_a_jpeg_built_here(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_with_exif(exif_tiff("<", focal_35mm=28, focal=(425, 100), plane=(5000, 3), unit=3)))
    exif = read_exif_focal(path)
    assert exif == ExifFocal(focal_35mm=28, focal_mm=4.25, focal_plane_x_resolution=5000 / 3, focal_plane_unit=3)
    image = cv2.imread(str(path))
    assert image.shape == (60, 80, 3)  # the file is still a valid JPEG
    camera = camera_intrinsics(80, 60, exif=exif)
    assert camera.fx == pytest.approx(28 * 100 / 43.2666, rel=1e-5)


def test_exif_orientation_turns_the_shown_size(tmp_path):
    path = tmp_path / "turned.jpg"
    path.write_bytes(jpeg_with_exif(exif_tiff(">", focal_35mm=28, orientation=6), width=80, height=60))
    assert shown_size(path) == (60, 80)
    assert cv2.imread(str(path)).shape[:2] == (80, 60)  # OpenCV shows it turned, as read_image does
    assert read_exif_focal(path).focal_35mm == 28
    upright = tmp_path / "upright.jpg"
    upright.write_bytes(jpeg_with_exif(exif_tiff("<", orientation=1), width=80, height=60))
    assert shown_size(upright) == (80, 60)


def test_exif_big_endian_and_without_focal_tags(tmp_path):
    assert tiff_focal(exif_tiff(">", focal=(50, 1), plane=(2000, 1), unit=2)) == ExifFocal(
        focal_mm=50, focal_plane_x_resolution=2000, focal_plane_unit=2)
    plain = tmp_path / "plain.jpg"
    plain.write_bytes(cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    assert read_exif_focal(plain) == ExifFocal()
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(jpeg_with_exif(exif_tiff("<", focal_35mm=28)[:20]))
    assert read_exif_focal(damaged) == ExifFocal()
    assert "assumed a 60-degree" in camera_intrinsics(8, 8, exif=read_exif_focal(damaged)).focal_source


# ----------------------------------------------------------------------------- sparse maps and CSV


def test_sparse_maps_in_metres_and_millimetres(tmp_path):
    metres = np.array([[0.0, 1.5, np.nan], [np.inf, 2.25, -1.0]], np.float32)
    expected = np.array([[np.nan, 1.5, np.nan], [np.nan, 2.25, np.nan]], np.float32)
    np.save(tmp_path / "map.npy", metres)
    save_pfm(tmp_path / "map.pfm", metres)
    cv2.imwrite(str(tmp_path / "map.tiff"), metres)
    cv2.imwrite(str(tmp_path / "map.png"), np.array([[0, 1500, 0], [0, 2250, 0]], np.uint16))
    for name in ("map.npy", "map.pfm", "map.tiff", "map.png"):
        np.testing.assert_array_equal(read_sparse_depth(tmp_path / name), expected, err_msg=name)


@pytest.mark.parametrize("name, content, message", [
    ("broken.npy", b"not numpy", "cannot be read"),
    ("broken.png", b"\x89PNG\r\n\x1a\n broken", "cannot be read"),
    ("eight.png", None, "uint8 pixels; expected 16-bit millimetres"),
    ("zeros.npy", None, "no valid pixel"),
    ("map.jpg", b"", "unknown format"),
    ("missing.npy", "missing", "cannot be read (No such file or directory)"),
])
def test_bad_sparse_maps(tmp_path, name, content, message):
    path = tmp_path / name
    if name == "eight.png":
        cv2.imwrite(str(path), np.full((4, 4), 7, np.uint8))
    elif name == "zeros.npy":
        np.save(path, np.zeros((4, 4)))
    elif content != "missing":
        path.write_bytes(content)
    with pytest.raises(CalibrationError) as raised:
        read_sparse_depth(path)
    assert str(raised.value).startswith(f"sparse depth {path}: ") and message in str(raised.value)


def test_nearest_valid_resampling_never_interpolates():
    depth = np.arange(16, dtype=np.float32).reshape(4, 4) + 1
    depth[1, 1] = np.nan
    shrunk = resample_nearest_valid(depth, (2, 2))
    assert np.isin(shrunk, depth).all()  # every value is a map value: the unknown pixel lost to a known one
    enlarged = resample_nearest_valid(depth, (8, 8))
    np.testing.assert_array_equal(enlarged, np.repeat(np.repeat(depth, 2, 0), 2, 1))
    # a LiDAR-like map, one known pixel in 16: each one lands on the picture, none invented
    lidar = np.full((40, 40), np.nan, np.float32)
    lidar[::4, ::4] = np.arange(100).reshape(10, 10) + 1
    onto = resample_nearest_valid(lidar, (20, 20))
    assert np.isfinite(onto).sum() == 100 and set(onto[np.isfinite(onto)]) == set(lidar[np.isfinite(lidar)])
    with pytest.raises(CalibrationError, match="aspect ratio"):
        resample_nearest_valid(depth, (4, 8))


def test_known_points_csv(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("x,y,z\n# measured with a tape\n10, 20, 1.5\n\n30,40,2.25  # the door\n")
    np.testing.assert_array_equal(read_known_points(path), [[10, 20, 1.5], [30, 40, 2.25]])
    path.write_text("10,20,1.5\n30,40\n")
    with pytest.raises(CalibrationError, match=r"points.csv line 2: expected x,y,z"):
        read_known_points(path)
    path.write_text("x,y,z\n")
    with pytest.raises(CalibrationError, match="no points in it"):
        read_known_points(path)
