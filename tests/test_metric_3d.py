"""ply/mesh in metres with the real camera: from a fit (any metric option) the metric depth and
the fitted camera's fx, fy, cx, cy; from the photo's EXIF focal length without a fit the relative
depth mapping with the EXIF camera; with neither, as before. Points are compared with the pinhole
formula computed here, X = (u + 0.5 - cx) z / fx (pixel centres), on files read back byte by byte."""

import math

import numpy as np

import cv2
from muggled_swinv2.cli import main
from muggled_swinv2.export.geometry import depth_to_z, mesh_z, point_cloud, point_cloud_z, save_point_cloud
from muggled_swinv2.geometry import CameraIntrinsics
from test_metric import exif_tiff, jpeg_with_exif

HEIGHT, WIDTH = 48, 80


def read_ply(path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(points (N, 3) float32, colours (N, 3) uint8, faces (M, 3) or None) of our binary PLY."""
    header, body = path.read_bytes().split(b"end_header\n", 1)
    counts = {line.split()[1]: int(line.split()[2]) for line in header.decode().splitlines()
              if line.startswith("element")}
    vertex = np.frombuffer(body, dtype=[("xyz", "<f4", (3,)), ("rgb", "u1", (3,))], count=counts["vertex"])
    faces = None
    if "face" in counts:
        face = np.frombuffer(body, dtype=[("n", "u1"), ("i", "<i4", (3,))], count=counts["face"],
                             offset=vertex.nbytes)
        assert (face["n"] == 3).all()
        faces = face["i"]
    return vertex["xyz"], vertex["rgb"], faces


def pinhole(z: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(H, W, 3) float64 camera points of depth z (H, W), pixel (u, v) at its centre."""
    v, u = np.mgrid[0:z.shape[0], 0:z.shape[1]].astype(np.float64)
    return np.stack([(u + 0.5 - cx) * z / fx, (v + 0.5 - cy) * z / fy, z], axis=-1)


def test_point_cloud_z_is_the_pinhole_back_projection_and_skips_pixels_without_depth():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    s, t = 0.5, -0.1  # a shift below zero puts the farthest pixels beyond infinity
    d = rng.uniform(0.1, 2.0, (HEIGHT, WIDTH))
    z = np.where(s * d + t > 0, 1 / (s * d + t), np.nan).astype(np.float32)
    assert 0 < np.isnan(z).sum() < z.size / 2
    camera = CameraIntrinsics(fx=70.0, fy=65.0, cx=41.5, cy=22.0, width=WIDTH, height=HEIGHT, focal_source="test")
    points, colors = point_cloud_z(image, z, camera)
    known = ~np.isnan(z)
    expected = pinhole(z.astype(np.float64), 70.0, 65.0, 41.5, 22.0)[known]
    assert points.shape == (known.sum(), 3)
    np.testing.assert_allclose(points, expected, rtol=1e-6)
    np.testing.assert_array_equal(colors, image[known][:, ::-1])
    vertices, _, faces = mesh_z(image, z, camera, max_depth_ratio=1e9)
    np.testing.assert_array_equal(vertices, points)
    assert faces.min() >= 0 and faces.max() < len(vertices)
    grid = np.arange(z.size).reshape(z.shape)  # each face's pixels: all with a depth, neighbours on the grid
    whole = (known[:-1, :-1] & known[:-1, 1:] & known[1:, :-1]).sum() + (known[:-1, 1:] & known[1:, :-1] & known[1:, 1:]).sum()
    assert len(faces) == whole
    pixel_of = grid[known]
    rows, cols = np.divmod(pixel_of[faces], WIDTH)
    assert (np.ptp(rows, axis=1) <= 1).all() and (np.ptp(cols, axis=1) <= 1).all()


def test_with_known_points_ply_and_mesh_are_in_metres_with_the_fitted_camera(tmp_path, small_checkpoint,
                                                                            picture_and_prediction):
    picture, inverse_depth = picture_and_prediction
    d = inverse_depth.astype(np.float64)
    low, high = np.percentile(d, [20, 80])
    s = 1.0 / (high - low)  # 1/z = s d + t with t < 0: the farthest fifth lies beyond infinity
    t = 0.2 - s * low
    z = np.where(s * d + t > 0, 1 / (s * d + t), np.nan)
    pixels = [(x, y) for x, y in [(2, 3), (70, 10), (40, 44), (10, 30), (60, 20), (30, 5)] if z[y, x] == z[y, x]][:4]
    assert len(pixels) == 4
    known = [item for x, y in pixels for item in ("--known", f"{x},{y}={float(z[y, x])!r}")]
    out = tmp_path / "out"
    assert main(["image", str(picture), "-w", str(small_checkpoint), "--out", str(out), "--raw", "ply,mesh",
                 "--focal-px", "50", *known, "--quiet"]) == 0
    metric = np.load(out / "room_metric.npy")  # --known alone adds the metric depth
    np.testing.assert_allclose(metric, z, rtol=1e-5)
    finite = ~np.isnan(z)
    points, colors, _ = read_ply(out / "room.ply")
    assert points.shape == (finite.sum(), 3)
    np.testing.assert_allclose(points, pinhole(z, 50, 50, WIDTH / 2, HEIGHT / 2)[finite], rtol=1e-5)
    vertices, _, faces = read_ply(out / "room_mesh.ply")
    np.testing.assert_array_equal(vertices, points)
    assert len(faces) > 0 and faces.max() < len(vertices)
    assert b"from metric depth (metres)" in (out / "room.ply").read_bytes()[:400]


def test_the_exif_focal_length_without_a_fit_gives_the_exif_camera(tmp_path, small_checkpoint):
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(jpeg_with_exif(exif_tiff("<", focal_35mm=28), WIDTH, HEIGHT))
    out = tmp_path / "out"
    assert main(["image", str(picture), "-w", str(small_checkpoint), "--out", str(out), "--raw", "npy,ply",
                 "--depth-range", "0.5,8", "--quiet"]) == 0
    assert sorted(path.name for path in out.iterdir() if not path.name.startswith(".")) == [
        "photo.npy", "photo.ply", "photo.png"]  # no fit: no metric outputs
    fx = 28 * math.hypot(WIDTH, HEIGHT) / math.hypot(36, 24)
    z = depth_to_z(np.load(out / "photo.npy"), (0.5, 8)).astype(np.float64)
    points, _, _ = read_ply(out / "photo.ply")
    np.testing.assert_allclose(points, pinhole(z, fx, fx, WIDTH / 2, HEIGHT / 2).reshape(-1, 3), rtol=1e-6)
    assert b"EXIF 35 mm equivalent focal length 28 mm" in (out / "photo.ply").read_bytes()[:500]
    # --fov given: the relative camera as before, whatever the EXIF says
    fov_out = tmp_path / "fov"
    assert main(["image", str(picture), "-w", str(small_checkpoint), "--out", str(fov_out), "--raw", "npy,ply",
                 "--fov", "70", "--quiet"]) == 0
    expected = save_point_cloud(tmp_path / "expected.ply", cv2.imread(str(picture)), np.load(fov_out / "photo.npy"), 70)
    assert (fov_out / "photo.ply").read_bytes() == expected.read_bytes()


def test_without_a_fit_or_exif_the_ply_is_unchanged(tmp_path, small_checkpoint, picture_and_prediction):
    picture, _ = picture_and_prediction
    out = tmp_path / "out"
    assert main(["image", str(picture), "-w", str(small_checkpoint), "--out", str(out), "--raw", "npy,ply",
                 "--quiet"]) == 0
    d = np.load(out / "room.npy")
    points, _, _ = read_ply(out / "room.ply")
    np.testing.assert_array_equal(points, point_cloud(cv2.imread(str(picture)), d)[0])
    z = depth_to_z(d).astype(np.float64)  # the relative camera: 60 degrees between the outermost pixel centres
    f = (WIDTH - 1) / 2 / math.tan(math.radians(30))
    np.testing.assert_allclose(points, pinhole(z, f, f, WIDTH / 2, HEIGHT / 2).reshape(-1, 3), rtol=1e-6)
