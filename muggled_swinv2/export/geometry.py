"""3D from a depth map: coloured point clouds and grid meshes, written as binary PLY (numpy only).

    from muggled_swinv2.export.geometry import save_point_cloud, save_mesh
    inverse_depth = model.predict(image)
    save_point_cloud("scene.ply", image, inverse_depth, fov_deg=60, depth_range=(1, 10))
    save_mesh("scene_mesh.ply", image, inverse_depth, fov_deg=60, depth_range=(1, 10))

or, for the arrays themselves (a viewer, say): `point_cloud(...)` -> (points, colors) and
`mesh(...)` -> (vertices, colors, faces).

With depth in metres and a calibrated camera (geometry/: a fit to what the user knows, the EXIF
focal length), `save_point_cloud_z` / `save_mesh_z` (and `point_cloud_z`, `mesh_z`) take the depth
z (H, W) and the camera's intrinsics (geometry.CameraIntrinsics: fx, fy, cx, cy, pixel (u, v)
centred at u + 0.5) instead; pixels without depth (NaN) get no point, and no triangle.

Camera: a pinhole at the origin looking along +z, the OpenCV convention: x to the right, y down,
z forward (away from the camera), in the units of `depth_range`. The horizontal field of view
`fov_deg` spans the centres of the outermost pixel columns, the principal point is the image centre
and pixels are square, so pixel (u, v) at depth z lies at

    x = (u - (W - 1) / 2) * z / f,   y = (v - (H - 1) / 2) * z / f,   f = ((W - 1) / 2) / tan(fov / 2).

Depth: the models give RELATIVE inverse depth (unknown scale and shift), so a 3D shape needs a
choice. `depth_to_z` maps the map's inverse-depth range [min, max] linearly onto
[1 / far, 1 / near] and inverts it: the farthest pixel lands at `far`, the nearest at `near`, and
what lies between follows the model's inverse depth. The shape is right only up to that choice.
"""

import math
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..geometry import CameraIntrinsics, back_project
from ..io.atomic import write_atomically

DEFAULT_FOV_DEG = 60.0
DEFAULT_DEPTH_RANGE = (1.0, 10.0)
DEFAULT_MAX_DEPTH_RATIO = 1.1  # a triangle whose far corner is >10% farther than its near one is cut
CAMERA_COMMENT = "camera: OpenCV pinhole at the origin, x right, y down, z forward"


class GeometryError(UserError, ValueError):
    """Bad input to the 3D functions; the message is one line."""


def check_camera(fov_deg: float, depth_range) -> tuple[float, float]:
    if not (isinstance(fov_deg, (int, float)) and 0 < fov_deg < 180):
        raise GeometryError(f"field of view {fov_deg!r}: expected degrees between 0 and 180 (exclusive)")
    try:
        near, far = (float(value) for value in depth_range)
    except (TypeError, ValueError):
        raise GeometryError(f"depth range {depth_range!r}: expected two numbers NEAR,FAR") from None
    if not (0 < near < far < math.inf):
        raise GeometryError(f"depth range {near:g},{far:g}: expected 0 < NEAR < FAR")
    return near, far


def depth_to_z(inverse_depth: np.ndarray, depth_range=DEFAULT_DEPTH_RANGE) -> np.ndarray:
    """Relative inverse depth (H, W) -> depth z (H, W) float32 in [near, far] (see the module doc).

    Non-finite values count as the farthest; a constant map lies wholly at `far`."""
    near, far = check_camera(DEFAULT_FOV_DEG, depth_range)
    values = np.asarray(inverse_depth, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.full(values.shape, far, dtype=np.float32)
    low, high = values[finite].min(), values[finite].max()
    fraction = (np.where(finite, values, low) - low) / (high - low) if high > low else np.zeros(values.shape)
    disparity = 1.0 / far + fraction * (1.0 / near - 1.0 / far)
    return (1.0 / disparity).astype(np.float32)


def focal_length(width: int, fov_deg: float) -> float:
    """Pixels per unit of x / z, so that the outermost columns lie at x = +-tan(fov / 2) * z."""
    return max(width - 1, 1) / 2 / math.tan(math.radians(fov_deg) / 2)


def rgb8(image: np.ndarray) -> np.ndarray:
    """An OpenCV image (gray, BGR or BGRA; uint8, uint16 or float in [0, 1]) -> (H, W, 3) RGB uint8."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim != 3 or image.shape[2] not in (3, 4):
        raise GeometryError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    rgb = image[:, :, 2::-1]
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb)
    if rgb.dtype == np.uint16:
        return (rgb / 257.0).round().astype(np.uint8)
    if np.issubdtype(rgb.dtype, np.floating):
        return (np.clip(np.nan_to_num(rgb), 0, 1) * 255).round().astype(np.uint8)
    raise GeometryError(f"unsupported image dtype {rgb.dtype} (use uint8, uint16 or float)")


def relative_camera(width: int, height: int, fov_deg: float) -> CameraIntrinsics:
    """The camera of relative depth (the module doc): `fov_deg` spans the outermost pixels' centres.
    In the pixel-centre convention of geometry/camera.py (u + 0.5 - cx) that is cx = W / 2."""
    f = focal_length(width, fov_deg)
    return CameraIntrinsics(fx=f, fy=f, cx=width / 2, cy=height / 2, width=width, height=height,
                            focal_source=f"horizontal fov {fov_deg:g} deg between the outermost pixel centres")


def check_step(step) -> None:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise GeometryError(f"point step {step!r}: expected a positive integer")


def _grid_z(image, depth_z, camera: CameraIntrinsics, step: int):
    """Camera-space points (h, w, 3) float32 (NaN where z is not a positive finite number) and
    colours (h, w, 3) uint8 of every step-th pixel, from depth z (H, W) and the camera."""
    depth_z = np.asarray(depth_z, dtype=np.float32)
    if depth_z.ndim != 2 or 0 in depth_z.shape:
        raise GeometryError(f"expected an (H, W) depth map, got shape {depth_z.shape}")
    if np.asarray(image).shape[:2] != depth_z.shape:
        raise GeometryError(f"image {np.asarray(image).shape[:2]} and depth {depth_z.shape} differ in size")
    if (camera.height, camera.width) != depth_z.shape:
        raise GeometryError(f"depth {depth_z.shape} does not match the {camera.width}x{camera.height} camera")
    check_step(step)
    depth_z = np.where(np.isfinite(depth_z) & (depth_z > 0), depth_z, np.float32(np.nan))
    return back_project(depth_z, camera)[::step, ::step], rgb8(image)[::step, ::step]


def _grid(image, inverse_depth, fov_deg, depth_range, step: int):
    """Camera-space points (h, w, 3) float32 and colours (h, w, 3) uint8 of every step-th pixel."""
    check_camera(fov_deg, depth_range)
    inverse_depth = np.asarray(inverse_depth)
    if inverse_depth.ndim != 2 or 0 in inverse_depth.shape:
        raise GeometryError(f"expected an (H, W) inverse depth map, got shape {inverse_depth.shape}")
    height, width = inverse_depth.shape
    return _grid_z(image, depth_to_z(inverse_depth, depth_range), relative_camera(width, height, fov_deg), step)


def _cloud(points: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The grid's points with a depth, in row-major order: (N, 3) float32, (N, 3) uint8."""
    points, colors = points.reshape(-1, 3), colors.reshape(-1, 3)
    known = np.isfinite(points[:, 2])
    return np.ascontiguousarray(points[known]), np.ascontiguousarray(colors[known])


def _mesh(points: np.ndarray, colors: np.ndarray, max_depth_ratio: float):
    """The grid's triangles (see `mesh`), less those with a corner without depth, over its points
    with a depth (renumbered)."""
    if not (isinstance(max_depth_ratio, (int, float)) and max_depth_ratio >= 1):
        raise GeometryError(f"max depth ratio {max_depth_ratio!r}: expected a number >= 1")
    rows, cols = points.shape[:2]
    index = np.arange(rows * cols, dtype=np.int32).reshape(rows, cols)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    z = points[..., 2].reshape(-1)[faces]
    faces = faces[np.isfinite(z).all(axis=1) & (z.max(axis=1) <= max_depth_ratio * z.min(axis=1))]
    known = np.isfinite(points[..., 2].reshape(-1))
    renumber = np.cumsum(known, dtype=np.int64).astype(np.int32) - 1  # old vertex index -> new one
    vertices, vertex_colors = _cloud(points, colors)
    return vertices, vertex_colors, np.ascontiguousarray(renumber[faces], dtype=np.int32)


def point_cloud(image, inverse_depth, fov_deg: float = DEFAULT_FOV_DEG, depth_range=DEFAULT_DEPTH_RANGE,
                step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 3) float32 x y z, colors (N, 3) uint8 RGB), one per step-th pixel in row-major order.

    image: the OpenCV image the depth is of (same H x W); inverse_depth: (H, W) as model.predict
    returns it."""
    return _cloud(*_grid(image, inverse_depth, fov_deg, depth_range, step))


def point_cloud_z(image, depth_z, camera: CameraIntrinsics, step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """As `point_cloud`, from depth z (H, W) (metres; NaN, inf, <= 0: no point) and the camera:
    pixel (u, v) at X = (u + 0.5 - cx) z / fx, Y = (v + 0.5 - cy) z / fy, Z = z."""
    return _cloud(*_grid_z(image, depth_z, camera, step))


def mesh(image, inverse_depth, fov_deg: float = DEFAULT_FOV_DEG, depth_range=DEFAULT_DEPTH_RANGE, step: int = 1,
         max_depth_ratio: float = DEFAULT_MAX_DEPTH_RATIO) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices (N, 3) float32, colors (N, 3) uint8, faces (M, 3) int32) of a grid mesh.

    Every 2x2 block of neighbouring grid points gives two triangles, (a, c, b) and (b, c, d) for
    a b / c d, wound so that they face the camera. A triangle whose farthest corner is more than
    `max_depth_ratio` times as far as its nearest one spans a depth discontinuity (an object's edge
    against the background) and is cut away, so that edges do not become walls.
    """
    return _mesh(*_grid(image, inverse_depth, fov_deg, depth_range, step), max_depth_ratio)


def mesh_z(image, depth_z, camera: CameraIntrinsics, step: int = 1,
           max_depth_ratio: float = DEFAULT_MAX_DEPTH_RATIO) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As `mesh`, from depth z (H, W) and the camera (see `point_cloud_z`); the vertices are the
    pixels with a depth, and no triangle has a corner without one."""
    return _mesh(*_grid_z(image, depth_z, camera, step), max_depth_ratio)


def ply_bytes(points: np.ndarray, colors: np.ndarray, faces: np.ndarray | None = None, comments=()) -> bytes:
    """Binary little-endian PLY: vertices (float x y z, uchar red green blue), optional triangles."""
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    if len(points) != len(colors):
        raise GeometryError(f"{len(points)} points but {len(colors)} colours")
    vertex = np.empty(len(points), dtype=[("xyz", "<f4", (3,)), ("rgb", "u1", (3,))])
    vertex["xyz"], vertex["rgb"] = points, colors
    header = ["ply", "format binary_little_endian 1.0", *(f"comment {line}" for line in comments),
              f"element vertex {len(points)}", "property float x", "property float y", "property float z",
              "property uchar red", "property uchar green", "property uchar blue"]
    body = [vertex.tobytes()]
    if faces is not None:
        faces = np.asarray(faces, dtype=np.int32).reshape(-1, 3)
        face = np.empty(len(faces), dtype=[("count", "u1"), ("indices", "<i4", (3,))])
        face["count"], face["indices"] = 3, faces
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
        body.append(face.tobytes())
    return ("\n".join(header + ["end_header"]) + "\n").encode("ascii") + b"".join(body)


def _comments(kind: str, fov_deg, depth_range, step) -> list[str]:
    near, far = check_camera(fov_deg, depth_range)
    return [f"muggled_swinv2 {kind} from relative inverse depth", CAMERA_COMMENT,
            f"horizontal fov {fov_deg:g} deg; inverse depth range mapped onto 1/{far:g}..1/{near:g}; point step {step}"]


def camera_comments(kind: str, camera: CameraIntrinsics, depth: str, step) -> list[str]:
    return [f"muggled_swinv2 {kind} from {depth}", CAMERA_COMMENT + ", pixel (u, v) centred at (u + 0.5, v + 0.5)",
            f"fx {camera.fx:.6g} fy {camera.fy:.6g} cx {camera.cx:.6g} cy {camera.cy:.6g} ({camera.focal_source}); "
            f"point step {step}"]


def save_point_cloud(path, image, inverse_depth, fov_deg: float = DEFAULT_FOV_DEG, depth_range=DEFAULT_DEPTH_RANGE,
                     step: int = 1) -> Path:
    """Write point_cloud(...) as a binary PLY at `path` (atomically: temp file, then rename)."""
    points, colors = point_cloud(image, inverse_depth, fov_deg, depth_range, step)
    data = ply_bytes(points, colors, comments=_comments("point cloud", fov_deg, depth_range, step))
    write_atomically(path, lambda file: file.write(data))
    return Path(path)


def save_mesh(path, image, inverse_depth, fov_deg: float = DEFAULT_FOV_DEG, depth_range=DEFAULT_DEPTH_RANGE,
              step: int = 1, max_depth_ratio: float = DEFAULT_MAX_DEPTH_RATIO) -> Path:
    """Write mesh(...) as a binary PLY with vertex colours and triangles (atomically)."""
    vertices, colors, faces = mesh(image, inverse_depth, fov_deg, depth_range, step, max_depth_ratio)
    data = ply_bytes(vertices, colors, faces, comments=_comments("mesh", fov_deg, depth_range, step))
    write_atomically(path, lambda file: file.write(data))
    return Path(path)


def save_point_cloud_z(path, image, depth_z, camera: CameraIntrinsics, step: int = 1,
                       depth: str = "metric depth (metres)") -> Path:
    """Write point_cloud_z(...) as a binary PLY (atomically); `depth` says what z is, in a comment."""
    points, colors = point_cloud_z(image, depth_z, camera, step)
    data = ply_bytes(points, colors, comments=camera_comments("point cloud", camera, depth, step))
    write_atomically(path, lambda file: file.write(data))
    return Path(path)


def save_mesh_z(path, image, depth_z, camera: CameraIntrinsics, step: int = 1, depth: str = "metric depth (metres)",
                max_depth_ratio: float = DEFAULT_MAX_DEPTH_RATIO) -> Path:
    """Write mesh_z(...) as a binary PLY with vertex colours and triangles (atomically)."""
    vertices, colors, faces = mesh_z(image, depth_z, camera, step, max_depth_ratio)
    data = ply_bytes(vertices, colors, faces, comments=camera_comments("mesh", camera, depth, step))
    write_atomically(path, lambda file: file.write(data))
    return Path(path)


__all__ = ["GeometryError", "depth_to_z", "focal_length", "mesh", "mesh_z", "ply_bytes", "point_cloud",
           "point_cloud_z", "save_mesh", "save_mesh_z", "save_point_cloud", "save_point_cloud_z"]
