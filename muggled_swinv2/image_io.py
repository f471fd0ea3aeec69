"""Reading images and writing depth outputs, always atomically (temp file + rename)."""

from pathlib import Path

import numpy as np

import cv2

from .atomic import write_atomically

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".dib", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".exr", ".hdr", ".sr", ".ras"}


class ImageReadError(Exception):
    """An input image that cannot be read or decoded (one-line message naming the file)."""


def read_image(path) -> np.ndarray:
    """Image file -> (H, W) gray or (H, W, 3) BGR array, uint8 or uint16 as stored.

    EXIF orientation is applied (the depth map lines up with the photo as viewers show it);
    alpha is dropped. Paths with non-ASCII characters work.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read ({error.strerror or error})") from None
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if data.size else None
    if image is None:
        raise ImageReadError(f"{path}: not an image OpenCV can decode")
    return image


def encode_image(path, image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(Path(path).suffix, image)
    if not ok:
        raise ValueError(f"{path}: OpenCV cannot encode this image type")
    return encoded.tobytes()


def save_image(path, image: np.ndarray) -> None:
    """PNG/JPEG/TIFF/... by suffix (uint8, uint16, or float32 for TIFF)."""
    data = encode_image(path, image)
    write_atomically(path, lambda file: file.write(data))


def save_npy(path, depth: np.ndarray) -> None:
    write_atomically(path, lambda file: np.save(file, depth.astype(np.float32)))


def save_pfm(path, depth: np.ndarray) -> None:
    """MiDaS's PFM: 'Pf', 'W H', '-1' (little-endian), float32 rows from bottom to top."""
    depth = np.ascontiguousarray(np.flipud(depth.astype("<f4")))
    header = f"Pf\n{depth.shape[1]} {depth.shape[0]}\n-1\n".encode("ascii")
    write_atomically(path, lambda file: file.write(header + depth.tobytes()))


def read_pfm(path) -> np.ndarray:
    """(H, W) float32 from a grayscale PFM file (either byte order)."""
    with open(path, "rb") as file:
        if file.readline().strip() != b"Pf":
            raise ValueError(f"{path}: not a grayscale PFM file")
        width, height = map(int, file.readline().split())
        scale = float(file.readline())
        dtype = "<f4" if scale < 0 else ">f4"
        data = np.frombuffer(file.read(width * height * 4), dtype=dtype)
    return np.flipud(data.reshape(height, width)).astype(np.float32)

