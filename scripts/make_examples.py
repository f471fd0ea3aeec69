#!/usr/bin/env python3
"""Writes the example pictures that the web app offers and scripts/demo.sh runs on
(muggled_swinv2/web/examples/, package data): two rendered scenes (ray-cast with numpy) and
four real photographs copied from scikit-image's bundled samples, all free of copyright
restrictions (sources in muggled_swinv2/web/examples/SOURCES.md).

    python scripts/make_examples.py          # needs scikit-image for the photos (the [train] extra)
"""

from pathlib import Path

import numpy as np

import cv2

OUT = Path(__file__).resolve().parents[1] / "muggled_swinv2" / "web" / "examples"


def camera_rays(height, width, fov_degrees=60.0):
    """(H, W, 3) unit ray directions of a pinhole camera at the origin looking along +z."""
    focal = 0.5 * width / np.tan(np.radians(fov_degrees) / 2)
    cols, rows = np.meshgrid(np.arange(width) - width / 2 + 0.5, height / 2 - np.arange(height) - 0.5)
    rays = np.stack([cols, rows, np.full_like(cols, focal)], axis=-1)
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def render(height, width, planes, spheres, light=(0.4, 0.8, -0.5)):
    """planes: [(normal, offset, colour_fn)], spheres: [(centre, radius, colour)] -> BGR uint8."""
    rays = camera_rays(height, width)
    light = np.asarray(light) / np.linalg.norm(light)
    nearest = np.full((height, width), np.inf)
    colour = np.zeros((height, width, 3))
    normal = np.zeros((height, width, 3))
    for plane_normal, offset, colour_fn in planes:
        plane_normal = np.asarray(plane_normal, float)
        facing = rays @ plane_normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = offset / facing
        hit = (t > 0) & (t < nearest)
        points = rays * t[..., None]
        nearest[hit] = t[hit]
        colour[hit] = colour_fn(points[hit])
        normal[hit] = plane_normal
    for centre, radius, sphere_colour in spheres:
        centre = np.asarray(centre, float)
        b = rays @ centre
        disc = b**2 - (centre @ centre - radius**2)
        t = b - np.sqrt(np.maximum(disc, 0))
        hit = (disc > 0) & (t > 0) & (t < nearest)
        nearest[hit] = t[hit]
        colour[hit] = sphere_colour
        normal[hit] = (rays[hit] * t[hit, None] - centre) / radius
    lit = 0.35 + 0.65 * np.clip(-(normal @ light), 0, 1)[..., None] * (np.isfinite(nearest)[..., None])
    fog = np.exp(-np.where(np.isfinite(nearest), nearest, 60) / 40)[..., None]
    sky = np.array([235, 200, 150])
    image = colour * lit * fog + sky * (1 - fog)
    return np.clip(image, 0, 255).astype(np.uint8)


def checker(size, bright, dark, axes=(0, 2)):
    def colour(points):
        squares = (np.floor(points[:, axes[0]] / size) + np.floor(points[:, axes[1]] / size)) % 2
        return np.where(squares[:, None] > 0, bright, dark)

    return colour


def main():
    OUT.mkdir(exist_ok=True)
    room = render(
        240, 320,
        planes=[((0, 1, 0), -1.0, checker(1.0, (200, 200, 200), (60, 60, 70))),  # floor y = -1
                ((0, 0, -1), -14.0, lambda p: np.array([90, 140, 180]))],  # back wall z = 14
        spheres=[((-1.2, -0.3, 4.0), 0.7, (40, 60, 220)), ((1.0, 0.0, 6.5), 1.0, (60, 200, 80)),
                 ((0.2, 0.5, 11.0), 1.5, (200, 120, 40))],
    )
    corridor = render(
        240, 320,
        planes=[((0, 1, 0), -1.0, checker(0.8, (180, 180, 170), (90, 80, 70))),  # floor
                ((0, -1, 0), -1.6, lambda p: np.array([210, 210, 210])),  # ceiling y = 1.6
                ((1, 0, 0), -1.5, checker(1.0, (120, 160, 200), (100, 130, 170), axes=(1, 2))),  # left wall
                ((-1, 0, 0), -1.5, checker(1.0, (150, 190, 150), (120, 160, 120), axes=(1, 2)))],  # right wall
        spheres=[((0.4, -0.5, 5.0), 0.5, (30, 30, 200))],
    )
    cv2.imwrite(str(OUT / "room.jpg"), room, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(OUT / "corridor.png"), corridor)
    copy_photos()
    print(f"wrote {OUT}/room.jpg and corridor.png")


# scikit-image sample -> file name; each is public domain or CC0 (see SOURCES.md)
PHOTOS = {"coffee": "coffee.jpg", "camera": "cameraman.jpg", "rocket": "rocket.jpg", "chelsea": "cat.jpg"}


def copy_photos():
    from skimage import data

    for sample, name in PHOTOS.items():
        picture = np.asarray(getattr(data, sample)())
        if picture.ndim == 3:
            picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(OUT / name), picture, [cv2.IMWRITE_JPEG_QUALITY, 90])


if __name__ == "__main__":
    main()
