"""Point clouds and meshes from depth: the camera geometry, the depth rule, the mesh cut, and the
files read back by an independent reader (plyfile)."""

import math

import numpy as np
import pytest

import cv2
from muggled_swinv2.cli import main
from muggled_swinv2.export.geometry import (
    GeometryError, depth_to_z, mesh, point_cloud, save_mesh, save_point_cloud,
)
from pictures import photo

plyfile = pytest.importorskip("plyfile")


def test_camera_geometry():
    height, width, fov = 5, 9, 70.0
    inverse_depth = np.linspace(1, 3, height * width).reshape(height, width)
    image = photo(height, width)
    points, colors = point_cloud(image, inverse_depth, fov_deg=fov, depth_range=(2, 8))
    grid = points.reshape(height, width, 3)
    z = grid[..., 2]
    # The centre pixel lies on the optical axis.
    assert grid[2, 4, 0] == 0 and grid[2, 4, 1] == 0 and z[2, 4] > 0
    # The outermost columns lie at -+tan(fov / 2) * z; rows use the same focal length (square pixels).
    tangent = math.tan(math.radians(fov) / 2)
    np.testing.assert_allclose(grid[:, 0, 0], -tangent * z[:, 0], rtol=1e-6)
    np.testing.assert_allclose(grid[:, -1, 0], tangent * z[:, -1], rtol=1e-6)
    np.testing.assert_allclose(grid[0, :, 1], -tangent * (height - 1) / (width - 1) * z[0], rtol=1e-6)
    # x right, y down: column index grows with x / z, row index with y / z.
    assert np.all(np.diff(grid[..., 0] / z, axis=1) > 0) and np.all(np.diff(grid[..., 1] / z, axis=0) > 0)
    # Nearer (bigger) inverse depth -> smaller z; the range maps onto [near, far].
    order = np.argsort(inverse_depth.ravel())
    assert np.all(np.diff(z.ravel()[order]) < 0)
    assert z.max() == pytest.approx(8) and z.min() == pytest.approx(2)
    # Colours are the pixels' RGB in row-major order.
    np.testing.assert_array_equal(colors, image[:, :, ::-1].reshape(-1, 3))


def test_depth_rule_is_linear_in_inverse_depth():
    inverse_depth = np.array([[0.0, 1.0, 4.0]])
    z = depth_to_z(inverse_depth, (1, 5))
    np.testing.assert_allclose(1 / z, [[1 / 5, 1 / 5 + 0.25 * (1 - 1 / 5), 1]], rtol=1e-6)
    assert np.all(depth_to_z(np.full((2, 2), 3.0), (1, 5)) == 5)  # a flat map lies at FAR


def test_point_step_and_mesh_cut_at_discontinuities():
    height, width = 8, 12
    inverse_depth = np.ones((height, width))
    inverse_depth[:, 6:] = 10.0  # a near object on the right half: one depth edge between columns 5 and 6
    image = photo(height, width)
    vertices, colors, faces = mesh(image, inverse_depth, depth_range=(1, 10))
    assert len(vertices) == height * width and faces.dtype == np.int32
    columns = faces % width
    # Every triangle that spans columns 5 and 6 is cut; all others are kept.
    spans_edge = (columns.min(axis=1) <= 5) & (columns.max(axis=1) >= 6)
    assert not spans_edge.any()
    assert len(faces) == 2 * (height - 1) * (width - 2)
    # Triangles face the camera (-z): counter-clockwise seen from it.
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    assert np.all(np.cross(b - a, c - a)[:, 2] < 0)
    # Without the cut, the full grid.
    assert len(mesh(image, inverse_depth, max_depth_ratio=100)[2]) == 2 * (height - 1) * (width - 1)
    sparse, _ = point_cloud(image, inverse_depth, step=3)
    assert len(sparse) == math.ceil(height / 3) * math.ceil(width / 3)


def test_files_read_back_by_plyfile(tmp_path):
    height, width = 6, 10
    inverse_depth = np.random.default_rng(0).uniform(1, 2, (height, width))
    image = photo(height, width)
    cloud_path = save_point_cloud(tmp_path / "cloud.ply", image, inverse_depth, 50, (1, 4))
    points, colors = point_cloud(image, inverse_depth, 50, (1, 4))
    cloud = plyfile.PlyData.read(str(cloud_path))
    assert not cloud.text and cloud.byte_order == "<"
    assert any("x right, y down, z forward" in comment for comment in cloud.comments)
    vertex = cloud["vertex"]
    assert vertex.count == height * width and vertex.data.dtype["x"] == np.float32 and vertex.data.dtype["red"] == np.uint8
    np.testing.assert_array_equal(np.stack([vertex["x"], vertex["y"], vertex["z"]], 1), points)
    np.testing.assert_array_equal(np.stack([vertex["red"], vertex["green"], vertex["blue"]], 1), colors)

    mesh_path = save_mesh(tmp_path / "mesh.ply", image, inverse_depth, 50, (1, 4), step=2)
    vertices, _, faces = mesh(image, inverse_depth, 50, (1, 4), step=2)
    read = plyfile.PlyData.read(str(mesh_path))
    assert read["vertex"].count == len(vertices) and read["face"].count == len(faces) > 0
    np.testing.assert_array_equal(np.stack(read["face"]["vertex_indices"]), faces)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cloud.ply", "mesh.ply"]  # no temp files


def test_bad_inputs_are_one_line():
    image, inverse_depth = photo(4, 4), np.ones((4, 4))
    for call, message in [
        (lambda: point_cloud(image, np.ones((4, 5))), "differ in size"),
        (lambda: point_cloud(image, inverse_depth, fov_deg=180), "field of view 180"),
        (lambda: point_cloud(image, inverse_depth, depth_range=(5, 1)), "expected 0 < NEAR < FAR"),
        (lambda: point_cloud(image, inverse_depth, step=0), "point step 0"),
        (lambda: mesh(image, inverse_depth, max_depth_ratio=0.5), "max depth ratio 0.5"),
    ]:
        with pytest.raises(GeometryError, match=message) as error:
            call()
        assert "\n" not in str(error.value)


def test_image_command_writes_ply_and_mesh(tmp_path, capsys, small_checkpoint):
    cv2.imwrite(str(tmp_path / "room.png"), photo(40, 60, seed=3))
    out = tmp_path / "out"
    code = main(["image", str(tmp_path / "room.png"), "--out", str(out), "--raw", "ply,mesh,npy", "-w",
                 str(small_checkpoint), "--fov", "45", "--depth-range", "0.5,5", "--point-step", "2", "-q"])
    assert code == 0, capsys.readouterr().err
    assert sorted(path.name for path in out.iterdir() if not path.name.startswith(".")) == [
        "room.npy", "room.ply", "room.png", "room_mesh.ply"]
    inverse_depth = np.load(out / "room.npy")
    image = cv2.imread(str(tmp_path / "room.png"))
    points, _ = point_cloud(image, inverse_depth, 45, (0.5, 5), step=2)
    vertex = plyfile.PlyData.read(str(out / "room.ply"))["vertex"]
    np.testing.assert_allclose(np.stack([vertex["x"], vertex["y"], vertex["z"]], 1), points, rtol=1e-6)
    assert plyfile.PlyData.read(str(out / "room_mesh.ply"))["face"].count > 0


@pytest.mark.parametrize("option, value", [("--depth-range", "5,1"), ("--depth-range", "x"), ("--fov", "0"),
                                           ("--point-step", "0")])
def test_bad_3d_options_are_usage_errors(tmp_path, capsys, small_checkpoint, option, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["image", str(tmp_path), option, value, "-w", str(small_checkpoint)])
    assert exit_info.value.code == 2 and option in capsys.readouterr().err
