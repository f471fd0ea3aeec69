"""Procedural RGB-D scenes: (image, exact depth) pairs from a pinhole camera, one per seed.

Each scene is ray cast analytically in numpy: every pixel's ray is intersected with every surface
(room/corridor boxes seen from inside, an outdoor ground plane under the sky, boxes, spheres,
vertical cylinders and stacks of boxes standing on the floor), the nearest hit wins. That gives the
exact depth along the optical axis, and the hit point and normal for texturing and shading.

Depth cues the scenes teach, all of which carry over to photos: perspective of floors, walls and
ceilings; texture gradients (textures are fixed in metres, so they shrink with distance);
occlusion; shading from a light; size of familiar-ish objects; haze on far outdoor surfaces.
Textures are crops of real photographs shipped inside scikit-image (when installed) and
procedural patterns (noise, stripes, checks, bricks, planks).

World frame: x right, y up, z forward (camera yaw 0). Camera frame (OpenCV): x right, y down,
z forward; depth = the camera-frame z of the hit point. Sky: depth inf (disparity 0).

Splits never overlap: seeds [0, 1e6) train, [1e6, 1e6 + 1e4) validation, [2e6, 2e6 + 1e4) test.
"""

import importlib.util
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Scored like KITTI: aligned depth capped at 80 m (the outdoor ground runs on to the horizon).
SYNTHETIC_MAX_DEPTH = 80.0
SPLITS = {"train": (0, 1_000_000), "val": (1_000_000, 1_010_000), "test": (2_000_000, 2_010_000)}
PHOTO_TEXTURES = ("brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "rocket", "camera", "hubble_deep_field")
_NO_HIT = np.inf


def split_seed(split: str, index: int) -> int:
    """The seed of scene `index` of a split (ValueError past the split's end)."""
    start, stop = SPLITS[split]
    if not 0 <= index < stop - start:
        raise ValueError(f"scene {index} is outside the {split} split (0..{stop - start - 1})")
    return start + index


# ----------------------------------------------------------------------------- textures


def has_photo_textures() -> bool:
    """Whether scikit-image (the [train] extra), whose bundled photographs texture the scenes, is installed."""
    return importlib.util.find_spec("skimage") is not None


@lru_cache(maxsize=None)
def photo_textures() -> tuple[np.ndarray, ...]:
    """Real photographs from scikit-image's bundled samples (float32 RGB in [0, 1]); () without it."""
    try:
        from skimage import data
    except ImportError:
        return ()
    pictures = []
    for name in PHOTO_TEXTURES:
        try:
            picture = getattr(data, name)()
        except Exception:  # a sample missing from this scikit-image build
            continue
        picture = np.asarray(picture, dtype=np.float32) / 255.0
        if picture.ndim == 2:
            picture = np.repeat(picture[..., None], 3, axis=2)
        pictures.append(np.ascontiguousarray(picture[..., :3]))
    return tuple(pictures)


def _smooth_noise(rng: np.random.Generator, size: int, octaves: int) -> np.ndarray:
    """Fractal value noise in [0, 1], (size, size), tileable enough for wrapped sampling."""
    total = np.zeros((size, size), np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        cells = 2 ** (octave + 2)
        grid = rng.random((cells, cells), dtype=np.float32)
        grid = np.pad(grid, ((0, 1), (0, 1)), mode="wrap")
        layer = cv2.resize(grid, (size + size // cells, size + size // cells), interpolation=cv2.INTER_CUBIC)
        weight = 0.55**octave
        total += weight * layer[:size, :size]
        weight_sum += weight
    total /= weight_sum
    return (total - total.min()) / max(float(np.ptp(total)), 1e-6)


def procedural_texture(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A random pattern (float32 RGB, (size, size, 3)): noise, stripes, checks, bricks or planks."""
    colour_a, colour_b = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
    kind = rng.integers(5)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:
        mix = _smooth_noise(rng, size, octaves=int(rng.integers(2, 6)))
    elif kind == 1:
        period = int(rng.integers(2, 9))
        mix = (np.sin(2 * np.pi * period * (cols + 0.15 * _smooth_noise(rng, size, 3))) > 0).astype(np.float32)
    elif kind == 2:
        period = int(rng.integers(2, 9))
        mix = ((np.floor(rows * period) + np.floor(cols * period)) % 2).astype(np.float32)
    elif kind == 3:  # bricks: offset rows of rectangles with mortar lines
        courses = int(rng.integers(3, 9))
        row_index = np.floor(rows * courses)
        shifted = cols * courses / 2 + 0.5 * (row_index % 2)
        mortar = (np.abs(rows * courses - np.round(rows * courses)) < 0.06) | (np.abs(shifted - np.round(shifted)) < 0.04)
        mix = 1.0 - mortar.astype(np.float32) * 0.9
    else:  # planks: stripes of varying shade with a grain
        planks = int(rng.integers(3, 8))
        shade = rng.random(planks, dtype=np.float32)[np.minimum((cols * planks).astype(int), planks - 1)]
        grain = 0.5 + 0.5 * np.sin(40 * rows + 6 * _smooth_noise(rng, size, 3))
        mix = 0.6 * shade + 0.4 * grain
    texture = colour_a * mix[..., None] + colour_b * (1 - mix[..., None])
    return np.ascontiguousarray(texture.astype(np.float32))


def random_texture(rng: np.random.Generator) -> np.ndarray:
    """A crop of a real photo (60%, when available) or a procedural pattern."""
    photos = photo_textures()
    if photos and rng.random() < 0.6:
        photo = photos[int(rng.integers(len(photos)))]
        side = int(rng.integers(64, min(photo.shape[:2]) + 1))
        top = int(rng.integers(photo.shape[0] - side + 1))
        left = int(rng.integers(photo.shape[1] - side + 1))
        crop = cv2.resize(photo[top:top + side, left:left + side], (128, 128), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(crop * rng.uniform(0.7, 1.2, 3).astype(np.float32))
    return procedural_texture(rng)


# ----------------------------------------------------------------------------- geometry


@dataclass
class Surface:
    """One textured object: a function of the rays returning (t, normal), and its look."""

    intersect: object  # (origin (3,), directions (N, 3)) -> (t (N,), normals (N, 3)); t = inf: miss
    texture: np.ndarray
    metres_per_tile: float
    glossy: float = 0.0
    walls: "Surface | None" = None  # a room: its walls and ceiling look like this, the floor like the above


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)


def box_inside(low, high):
    """The inside of an axis-aligned box (a room seen from within): the exit point of each ray."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)

    def intersect(origin, directions):
        with np.errstate(divide="ignore", invalid="ignore"):
            to_low, to_high = (low - origin) / directions, (high - origin) / directions
        exits = np.where(directions > 0, to_high, to_low)
        exits = np.where(np.isfinite(exits) & (exits > 0), exits, np.inf)
        axis = np.argmin(exits, axis=1)
        t = exits[np.arange(len(directions)), axis]
        normals = np.zeros_like(directions)
        normals[np.arange(len(directions)), axis] = -np.sign(directions[np.arange(len(directions)), axis])
        return t, normals

    return intersect


def box_solid(centre, half_size, yaw: float):
    """A solid box rotated by `yaw` about the vertical: the entry point of each ray (slab method)."""
    centre, half_size = np.asarray(centre, np.float32), np.asarray(half_size, np.float32)
    rotation = _rotation_y(yaw)  # local -> world

    def intersect(origin, directions):
        local_origin = (origin - centre) @ rotation
        local_dirs = directions @ rotation
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-half_size - local_origin) / local_dirs, (half_size - local_origin) / local_dirs
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        near = np.where(np.isnan(near), -np.inf, near)
        far = np.where(np.isnan(far), np.inf, far)
        axis = np.argmax(near, axis=1)
        t_near = near[np.arange(len(directions)), axis]
        hit = (t_near <= far.min(axis=1)) & (t_near > 1e-4)
        local_normals = np.zeros_like(directions)
        local_normals[np.arange(len(directions)), axis] = -np.sign(local_dirs[np.arange(len(directions)), axis])
        return np.where(hit, t_near, np.inf), local_normals @ rotation.T

    return intersect


def sphere(centre, radius: float):
    centre = np.asarray(centre, np.float32)

    def intersect(origin, directions):
        offset = origin - centre
        a = np.einsum("nc,nc->n", directions, directions)
        b = 2 * directions @ offset
        c = float(offset @ offset) - radius**2
        disc = b * b - 4 * a * c
        root = np.sqrt(np.maximum(disc, 0))
        t = (-b - root) / (2 * a)
        t = np.where((disc > 0) & (t > 1e-4), t, np.inf)
        normals = (origin + t[:, None] * directions - centre) / radius
        return t, np.nan_to_num(normals)

    return intersect


def cylinder(base_xz, radius: float, height: float):
    """A vertical solid cylinder standing on the floor, with a flat top."""
    base_x, base_z = base_xz

    def intersect(origin, directions):
        ox, oz = origin[0] - base_x, origin[2] - base_z
        dx, dz = directions[:, 0], directions[:, 2]
        a = dx * dx + dz * dz
        b = 2 * (ox * dx + oz * dz)
        c = ox * ox + oz * oz - radius**2
        disc = b * b - 4 * a * c
        with np.errstate(divide="ignore", invalid="ignore"):
            t_side = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
            y_side = origin[1] + t_side * directions[:, 1]
            side_hit = (disc > 0) & (t_side > 1e-4) & (y_side >= 0) & (y_side <= height)
            t_top = (height - origin[1]) / directions[:, 1]
            top_x, top_z = ox + t_top * dx, oz + t_top * dz
            top_hit = (t_top > 1e-4) & (top_x**2 + top_z**2 <= radius**2)
        t_side = np.where(side_hit, t_side, np.inf)
        t_top = np.where(top_hit, t_top, np.inf)
        use_top = t_top < t_side
        normals = np.zeros_like(directions)
        normals[:, 0] = (ox + t_side * dx) / radius
        normals[:, 2] = (oz + t_side * dz) / radius
        normals[use_top] = (0, 1, 0)
        return np.where(use_top, t_top, t_side), np.nan_to_num(normals)

    return intersect


def ground_plane():
    def intersect(origin, directions):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -origin[1] / directions[:, 1]
        t = np.where((directions[:, 1] < 0) & (t > 0), t, np.inf)
        normals = np.zeros_like(directions)
        normals[:, 1] = 1
        return t, normals

    return intersect


# ----------------------------------------------------------------------------- scenes


@dataclass
class Camera:
    """Pinhole camera: horizontal field of view, height above the floor, pitch/roll/yaw (radians)."""

    fov_deg: float
    height: float
    pitch: float
    roll: float = 0.0
    yaw: float = 0.0
    x: float = 0.0
    z: float = 0.0

    def rotation(self) -> np.ndarray:
        """(3, 3) camera frame with y up -> world frame."""
        cr, sr = np.cos(self.roll), np.sin(self.roll)
        cp, sp = np.cos(self.pitch), np.sin(self.pitch)
        roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]], np.float32)
        pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]], np.float32)  # positive pitch looks up
        return _rotation_y(self.yaw) @ pitch @ roll

    def focal(self, width: int) -> float:
        return width / 2 / np.tan(np.radians(self.fov_deg) / 2)

    def rays(self, size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(origin (3,), world directions (H*W, 3)) whose camera-frame z is 1: t = depth."""
        height, width = size_hw
        focal = self.focal(width)
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        x_cam = (cols + 0.5 - width / 2) / focal
        y_cam = (rows + 0.5 - height / 2) / focal
        directions = np.stack([x_cam, -y_cam, np.ones_like(x_cam)], axis=-1).reshape(-1, 3)  # y up
        origin = np.array([self.x, self.height, self.z], np.float32)
        return origin, (directions @ self.rotation().T).astype(np.float32)

    def project(self, points: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The inverse of `rays`: world points (N, 3) -> (column, row, depth), each (N,), with
        pixel centres at whole numbers (column 0 is the first pixel's centre)."""
        height, width = size_hw
        focal = self.focal(width)
        camera = (points - np.array([self.x, self.height, self.z], np.float32)) @ self.rotation()  # y up
        with np.errstate(divide="ignore", invalid="ignore"):
            column = camera[:, 0] / camera[:, 2] * focal + width / 2 - 0.5
            row = -camera[:, 1] / camera[:, 2] * focal + height / 2 - 0.5
        return column, row, camera[:, 2]


@dataclass
class SceneDescription:
    camera: Camera
    surfaces: list
    outdoor: bool
    light_direction: np.ndarray  # towards the light, world frame
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    haze: float  # outdoor: fraction of sky colour per 10 m
    kind: str = "room"  # room, corridor or outdoor


def _place_objects(rng, surfaces, x_range, z_range, count, camera: Camera):
    """Boxes, spheres, cylinders and stacks standing on the floor, not around the camera."""
    for _ in range(count):
        for _attempt in range(10):
            x, z = rng.uniform(*x_range), rng.uniform(*z_range)
            if (x - camera.x) ** 2 + (z - camera.z) ** 2 > 1.0:
                break
        kind = rng.integers(4)
        look = lambda: dict(texture=random_texture(rng), metres_per_tile=float(rng.uniform(0.3, 1.5)))
        if kind == 0:
            half = rng.uniform([0.15, 0.15, 0.15], [0.8, 0.9, 0.8]).astype(np.float32)
            surfaces.append(Surface(box_solid((x, half[1], z), half, rng.uniform(0, np.pi)), **look()))
        elif kind == 1:
            radius = rng.uniform(0.15, 0.7)
            lifted = radius + (rng.uniform(0, 1.0) if rng.random() < 0.2 else 0.0)
            surfaces.append(Surface(sphere((x, lifted, z), radius), glossy=float(rng.uniform(0, 0.6)), **look()))
        elif kind == 2:
            surfaces.append(Surface(cylinder((x, z), rng.uniform(0.1, 0.5), rng.uniform(0.3, 2.2)), **look()))
        else:  # a stack: furniture-like boxes on top of each other
            bottom = 0.0
            yaw = rng.uniform(0, np.pi)
            for _level in range(int(rng.integers(2, 4))):
                half = rng.uniform([0.2, 0.1, 0.2], [0.7, 0.45, 0.6]).astype(np.float32)
                centre = (x + rng.uniform(-0.15, 0.15), bottom + half[1], z + rng.uniform(-0.15, 0.15))
                surfaces.append(Surface(box_solid(centre, half, yaw), **look()))
                bottom += 2 * half[1]


def describe_scene(rng: np.random.Generator) -> SceneDescription:
    """A random room, corridor or outdoor scene with objects, and a camera inside it."""
    kind = rng.choice(["room", "corridor", "outdoor"], p=[0.4, 0.25, 0.35])
    pitch = np.radians(rng.uniform(-25, 10))
    camera = Camera(
        fov_deg=float(rng.uniform(45, 90)), height=float(rng.uniform(0.4, 2.2)), pitch=float(pitch),
        roll=float(np.radians(rng.normal(0, 3))), yaw=float(rng.uniform(-0.6, 0.6)),
    )
    surfaces = []
    if kind == "outdoor":
        surfaces.append(Surface(ground_plane(), random_texture(rng), float(rng.uniform(0.5, 4))))
        _place_objects(rng, surfaces, (-12, 12), (1.5, 30), int(rng.integers(3, 12)), camera)
        for _ in range(int(rng.integers(0, 5))):  # far buildings / walls
            half = rng.uniform([2, 2, 2], [10, 12, 8]).astype(np.float32)
            centre = (rng.uniform(-40, 40), half[1], rng.uniform(30, 90))
            surfaces.append(Surface(box_solid(centre, half, rng.uniform(0, np.pi)), random_texture(rng), float(rng.uniform(1, 6))))
        light = np.array([rng.uniform(-1, 1), rng.uniform(0.3, 1.5), rng.uniform(-1, 1)], np.float32)
    else:
        if kind == "room":
            width, depth, height = rng.uniform(3, 9), rng.uniform(3, 10), rng.uniform(2.3, 3.5)
        else:
            width, depth, height = rng.uniform(1.4, 3.0), rng.uniform(10, 40), rng.uniform(2.2, 3.2)
            camera.yaw = float(rng.uniform(-0.25, 0.25))
        camera.height = float(min(camera.height, height - 0.3))
        camera.x = float(rng.uniform(-0.3, 0.3) * width)
        camera.z = float(-depth / 2 + rng.uniform(0.2, 1.0))
        low, high = (-width / 2, 0.0, -depth / 2), (width / 2, height, depth / 2)
        floor_look = (random_texture(rng), float(rng.uniform(0.5, 2.5)))
        walls = Surface(box_inside(low, high), random_texture(rng), float(rng.uniform(0.5, 2.5)))
        surfaces.append(Surface(box_inside(low, high), *floor_look, walls=walls))
        for _ in range(int(rng.integers(0, 4))):  # doors / panels: thin boxes against the walls
            along_x = rng.random() < 0.5
            door_half = np.array([0.45, rng.uniform(0.9, 1.1), 0.03], np.float32)
            if along_x:  # on the far or a side wall
                centre = (rng.uniform(-width / 2 + 0.5, width / 2 - 0.5), door_half[1], depth / 2 - 0.02)
                yaw = 0.0
            else:
                side = rng.choice([-1, 1])
                centre = (side * (width / 2 - 0.02), door_half[1], rng.uniform(-depth / 2 + 1, depth / 2 - 0.5))
                yaw = np.pi / 2
            surfaces.append(Surface(box_solid(centre, door_half, yaw), random_texture(rng), 1.0))
        count = int(rng.integers(1, 7)) if kind == "room" else int(rng.integers(0, 5))
        _place_objects(rng, surfaces, (-width / 2 + 0.3, width / 2 - 0.3), (camera.z + 0.8, depth / 2 - 0.3), count, camera)
        light = np.array([rng.uniform(-0.5, 0.5), 1.0, rng.uniform(-0.5, 0.5)], np.float32)
    sky_top = rng.uniform([0.5, 0.25, 0.05], [0.95, 0.6, 0.4]).astype(np.float32)  # BGR: blue-ish
    sky_horizon = np.clip(sky_top + rng.uniform(0.1, 0.5), 0, 1).astype(np.float32)
    return SceneDescription(
        camera=camera, surfaces=surfaces, outdoor=kind == "outdoor",
        light_direction=light / np.linalg.norm(light), sky_top=sky_top, sky_horizon=sky_horizon,
        haze=float(rng.uniform(0.0, 0.08)) if kind == "outdoor" else 0.0, kind=str(kind),
    )


def _texture_coordinates(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Planar mapping (N, 2) in metres: the two world axes across the dominant normal axis."""
    dominant = np.argmax(np.abs(normals), axis=1)
    u = np.where(dominant == 0, points[:, 2], points[:, 0])
    v = np.where(dominant == 1, points[:, 2], points[:, 1])
    return np.stack([u, v], axis=1)


def _sample(texture: np.ndarray, uv_metres: np.ndarray, metres_per_tile: float) -> np.ndarray:
    """Texture colours (N, 3) at wrapped texture coordinates (bilinear)."""
    size = texture.shape[0]
    if not len(uv_metres):
        return np.zeros((0, 3), np.float32)
    maps = (uv_metres / metres_per_tile * size).astype(np.float32) % size
    count = len(maps)
    rows = -(-count // 256)  # OpenCV maps must be under 32767 wide: lay the points out in rows of 256
    maps = np.pad(maps, ((0, rows * 256 - count), (0, 0))).reshape(rows, 256, 2)
    sampled = cv2.remap(texture, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return sampled.reshape(-1, 3)[:count]


def render(description: SceneDescription, size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(image float32 (H, W, 3) BGR in [0, 1] before camera effects, depth float32 (H, W), inf = sky)."""
    origin, directions = description.camera.rays(size_hw)
    count = len(directions)
    depth = np.full(count, np.inf, np.float32)
    normals = np.zeros((count, 3), np.float32)
    owner = np.full(count, -1, np.int32)
    for index, surface in enumerate(description.surfaces):
        t, surface_normals = surface.intersect(origin, directions)
        nearer = t < depth
        depth[nearer] = t[nearer]
        normals[nearer] = surface_normals[nearer]
        owner[nearer] = index
    points = origin + depth[:, None] * directions
    colour = np.zeros((count, 3), np.float32)
    for index, surface in enumerate(description.surfaces):
        hit = np.flatnonzero(owner == index)
        if not len(hit):
            continue
        uv = _texture_coordinates(points[hit], normals[hit])
        texture, metres = surface.texture, surface.metres_per_tile
        walls = surface.walls
        if walls is not None:  # a room: the floor keeps this texture, walls and ceiling get the other
            colour[hit] = _sample(texture, uv, metres)
            not_floor = normals[hit, 1] < 0.5
            colour[hit[not_floor]] = _sample(walls.texture, uv[not_floor], walls.metres_per_tile)
        else:
            colour[hit] = _sample(texture, uv, metres)
    # shading: ambient + Lambert from the light (+ a highlight on glossy surfaces), indoor falloff
    lambert = np.clip(normals @ description.light_direction, 0, 1)
    shade = 0.35 + 0.75 * lambert
    if not description.outdoor:
        distance = np.linalg.norm(points - origin, axis=1)
        shade = shade * (1.2 / (1 + 0.02 * np.nan_to_num(distance, posinf=0) ** 2) + 0.15)
    colour *= shade[:, None]
    for index, surface in enumerate(description.surfaces):
        if surface.glossy:
            hit = owner == index
            reflected = description.light_direction - 2 * (normals[hit] @ description.light_direction)[:, None] * normals[hit]
            view = directions[hit] / np.linalg.norm(directions[hit], axis=1, keepdims=True)
            colour[hit] += surface.glossy * np.clip(-np.einsum("nc,nc->n", reflected, view), 0, 1)[:, None] ** 20
    # sky and haze
    up = directions[:, 1] / np.linalg.norm(directions, axis=1)
    blend = np.clip(up * 2.5, 0, 1)[:, None]
    sky = description.sky_horizon * (1 - blend) + description.sky_top * blend
    is_sky = owner < 0
    colour[is_sky] = sky[is_sky]
    if description.haze:
        fog = 1 - np.exp(-description.haze * np.nan_to_num(depth, posinf=0) / 10)
        colour = np.where(is_sky[:, None], colour, colour * (1 - fog[:, None]) + description.sky_horizon * fog[:, None])
    height, width = size_hw
    return colour.reshape(height, width, 3), depth.reshape(height, width)


def camera_effects(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Exposure, colour cast, gamma, blur and sensor noise; float32 BGR in [0, 1] -> uint8."""
    image = image * rng.uniform(0.7, 1.4) * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    image = np.clip(image, 0, 1) ** rng.uniform(0.8, 1.25)
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 1.2))
    image = image + rng.normal(0, rng.uniform(0, 0.03), image.shape).astype(np.float32)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_scene(seed: int, size_hw: tuple[int, int] = (256, 256)) -> tuple[np.ndarray, np.ndarray]:
    """Scene number `seed`: (image uint8 (H, W, 3) BGR, depth float32 (H, W) in metres, inf = sky).

    Deterministic: the same seed and size always give the same pair.
    """
    rng = np.random.default_rng(seed)
    description = describe_scene(rng)
    image, depth = render(description, size_hw)
    return camera_effects(rng, image), depth


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["Camera", "SPLITS", "SYNTHETIC_MAX_DEPTH", "Surface", "camera_effects", "describe_scene", "render", "render_scene",
           "sphere"]
