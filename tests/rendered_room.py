"""An independent ray-caster for the stereo tests: a textured room seen by a pinhole camera.

Numpy only and nothing of the package: a room (floor, ceiling, four walls), two boxes and two
spheres, each with procedural textures of fine detail (a few pixels per period at 640x480) and
diffuse shading from a fixed light (the same colour from any viewpoint, as real matte surfaces).
Colour is supersampled 3x3 per pixel (as a camera's pixel integrates light); the depth is the z of
the surface hit by the ray through the pixel's centre.

Camera: x right, y down, z forward, at (camera_x, 0, 0) looking along +z; pixel (row, column) has
its centre at (column + 0.5, row + 0.5) and the principal point at (W / 2, H / 2), so a point at
depth z seen by a camera moved `b` metres right is `focal * b / z` columns further left.
"""

import math

import numpy as np

ROOM_MIN = np.array([-2.5, -1.4, -1.0])  # the ceiling is at y = -1.4, the floor at y = 1.3
ROOM_MAX = np.array([2.5, 1.3, 7.0])
BOXES = [  # (min corner, max corner)
    (np.array([-1.45, 0.45, 2.4]), np.array([-0.65, 1.3, 3.2])),
    (np.array([0.75, -0.25, 4.0]), np.array([1.55, 1.3, 4.8])),
]
SPHERES = [(np.array([0.35, 0.55, 2.1]), 0.38), (np.array([-0.25, -0.35, 4.4]), 0.55)]
DETAIL = 0.5  # a multiplier on every stripe frequency (the finest: about 4 pixels a period)
CHECKER_M = (0.09, 0.05, 0.04)  # the check size on the room, the boxes, the spheres
LIGHT = np.array([-0.4, -0.8, -0.45]) / np.linalg.norm([-0.4, -0.8, -0.45])  # towards the light


def focal_px(width: int, horizontal_fov_deg: float) -> float:
    return width / 2 / math.tan(math.radians(horizontal_fov_deg) / 2)


def render(width=640, height=480, horizontal_fov_deg=62.0, camera_x=0.0, samples=3):
    """(colour (H, W, 3) uint8 RGB, z-depth (H, W) float64 metres) of the room."""
    focal = focal_px(width, horizontal_fov_deg)
    offsets = (np.arange(samples) + 0.5) / samples
    colour = np.zeros((height, width, 3))
    for dy in offsets:
        for dx in offsets:
            colour += shade_rays(width, height, focal, camera_x, dx, dy)[0]
    colour /= samples * samples
    depth = shade_rays(width, height, focal, camera_x, 0.5, 0.5)[1]
    return np.clip(np.round(colour * 255), 0, 255).astype(np.uint8), depth


def shade_rays(width, height, focal, camera_x, dx, dy):
    """Colour in [0, 1] and depth of the rays through (column + dx, row + dy)."""
    u = (np.arange(width) + dx - width / 2) / focal
    v = (np.arange(height) + dy - height / 2) / focal
    direction = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((1, 1))), -1)  # z = 1: t is depth
    origin = np.array([camera_x, 0.0, 0.0])

    # The room seen from inside: the first wall each ray leaves through.
    bound = np.where(direction > 0, ROOM_MAX, ROOM_MIN)
    with np.errstate(divide="ignore"):
        t_axes = np.where(direction != 0, (bound - origin) / direction, np.inf)
    depth = smallest(t_axes)
    surface = t_axes.argmin(-1) * 2 + (np.take_along_axis(direction, t_axes.argmin(-1)[..., None], -1)[..., 0] > 0)
    normal_axis = t_axes.argmin(-1)

    for index, (low, high) in enumerate(BOXES):
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (low - origin) / direction, (high - origin) / direction
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        t_near, t_far = -smallest(-near), smallest(far)
        hit = (t_near <= t_far) & (t_near > 0) & (t_near < depth)
        depth = np.where(hit, t_near, depth)
        surface = np.where(hit, 10 + index, surface)
        normal_axis = np.where(hit, near.argmax(-1), normal_axis)

    for index, (centre, radius) in enumerate(SPHERES):
        to_centre = origin - centre
        a = (direction * direction).sum(-1)
        b = 2 * (direction * to_centre).sum(-1)
        c = (to_centre * to_centre).sum() - radius * radius
        discriminant = b * b - 4 * a * c
        with np.errstate(invalid="ignore"):
            t = (-b - np.sqrt(discriminant)) / (2 * a)
        hit = (discriminant > 0) & (t > 0) & (t < depth)
        depth = np.where(hit, t, depth)
        surface = np.where(hit, 20 + index, surface)

    point = origin + direction * depth[..., None]
    return texture(point, surface, normal_axis), depth


def smallest(values):
    """The minimum over the last axis of size 3 (much faster than .min(-1) on many small rows)."""
    return np.minimum(np.minimum(values[..., 0], values[..., 1]), values[..., 2])


def checker(point, size):
    """Hard-edged 3D checks of `size` metres: 0 or 1 (the sharp edges that whole-pixel moves tear)."""
    return (np.floor(point / size).sum(-1) % 2).astype(float)


def stripes(a, frequency, phase=0.0):
    """A smooth stripe pattern in [0, 1] with `frequency` cycles per metre."""
    return 0.5 + 0.5 * np.sin(2 * np.pi * DETAIL * frequency * a + phase)


def texture(point, surface, normal_axis):
    """Colour in [0, 1] of every hit point, by surface id, with diffuse shading."""
    colour = np.zeros(point.shape)
    normal = np.zeros(point.shape)
    for kind in np.unique(surface):
        on = surface == kind
        colour[on], normal[on] = surface_colour(int(kind), point[on], normal_axis[on])
        colour[on] *= (0.6 + 0.4 * checker(point[on], CHECKER_M[min(int(kind) // 10, 2)]))[:, None]
    light = np.clip((normal * LIGHT).sum(-1), 0, 1)
    return colour * (0.55 + 0.45 * light)[..., None]


def surface_colour(kind, point, normal_axis):
    """(colour (N, 3), normal (N, 3)) of N points on one surface. Room surfaces are numbered
    axis * 2 + (1 on the axis's far side): walls 0 and 1, ceiling 2, floor 3, back wall 5; boxes
    10 and up, spheres 20 and up."""
    x, y, z = point[:, 0], point[:, 1], point[:, 2]
    normal = np.zeros_like(point)
    if kind < 10:
        normal[:, kind // 2] = -1.0 if kind % 2 else 1.0  # facing into the room
    if kind == 3:  # floor: tiles and two fine stripe patterns
        tiles = (np.floor(x / 0.3) + np.floor(z / 0.3)) % 2
        pattern = 0.55 * stripes(x + 0.3 * z, 23.0) + 0.45 * stripes(z - 0.2 * x, 31.0)
        colour = np.stack([0.45 + 0.3 * tiles, 0.3 + 0.2 * pattern, 0.2 + 0.15 * tiles], -1) * (0.7 + 0.3 * pattern[:, None])
    elif kind == 2:  # ceiling
        colour = np.stack([0.8 + 0 * x, 0.8 - 0.2 * stripes(x, 7.0), 0.75 + 0 * z], -1)
    elif kind in (0, 1):  # side walls
        pattern = stripes(z, 13.0) * stripes(y, 17.0, 1.0)
        colour = np.stack([0.25 + 0.5 * pattern, 0.5 + 0.3 * stripes(z + y, 29.0), 0.6 + 0 * x], -1)
    elif kind < 10:  # back (and front) wall
        pattern = 0.5 * stripes(x, 19.0) + 0.5 * stripes(y + 0.5 * x, 11.0)
        colour = np.stack([0.3 + 0.4 * pattern, 0.35 + 0.2 * stripes(x - y, 37.0), 0.5 + 0.4 * stripes(y, 5.0)], -1)
    elif kind < 20:  # boxes
        index = kind - 10
        low, high = BOXES[index]
        centre = (low + high) / 2
        rows = np.arange(len(point))
        normal[rows, normal_axis] = np.sign(point[rows, normal_axis] - centre[normal_axis])
        grid = stripes(x + y + z, 26.0 + 9 * index) * stripes(x - z, 15.0)
        tint = np.array([[0.8, 0.35, 0.2], [0.25, 0.6, 0.3]][index])
        colour = tint * (0.45 + 0.55 * grid[:, None])
    else:  # spheres
        index = kind - 20
        centre, radius = SPHERES[index]
        normal = (point - centre) / radius
        longitude = np.arctan2(normal[:, 0], normal[:, 2])
        latitude = np.arcsin(np.clip(normal[:, 1], -1, 1))
        pattern = stripes(longitude, 12.0 / (2 * np.pi)) * 0.6 + 0.4 * stripes(latitude, 9.0 / np.pi)
        tint = np.array([[0.3, 0.4, 0.9], [0.9, 0.8, 0.3]][index])
        colour = tint * (0.35 + 0.65 * pattern[:, None])
    return colour, normal


def covisible(depth_left, depth_right, focal, baseline, tolerance=0.01):
    """(H, W) bool: the right camera's pixels whose surface point the left camera sees too (it
    projects inside the left image onto a pixel of the same depth, within `tolerance`)."""
    height, width = depth_right.shape
    left_x = np.arange(width)[None, :] + focal * baseline / depth_right
    column = np.round(left_x).astype(int)
    inside = (column >= 0) & (column < width)
    left_depth = np.take_along_axis(depth_left, column.clip(0, width - 1), 1)
    return inside & (np.abs(left_depth - depth_right) <= tolerance * depth_right)


def psnr(estimate, truth, mask):
    error = estimate.astype(np.float64)[mask] - truth.astype(np.float64)[mask]
    return 10 * np.log10(255.0 ** 2 / np.mean(error ** 2))
