"""Reading images and writing depth outputs, always atomically (temp file + rename)."""

import os
from pathlib import Path

import numpy as np

import cv2

from .atomic import write_atomically

IMAGE_SUFFIXES = {".png", ".gif", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".dib", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".exr", ".hdr", ".sr", ".ras"}


class ImageReadError(Exception):
    """An input image that cannot be read or decoded (one-line message naming the file)."""


def silence_opencv():
    """No warnings from OpenCV and its FFmpeg on stderr ("PNG input buffer is incomplete",
    "moov atom not found", ...): the command line reports every failure itself, in one line
    naming the file."""
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # quiet; read when FFmpeg is first used


def page_count(path: Path, head: bytes) -> int:
    """Pages of a TIFF or frames of a GIF (1 for other files, or when OpenCV cannot tell)."""
    if not (head.startswith(b"GIF8") or head[:4] in (b"II*\0", b"MM\0*")):
        return 1
    try:
        return max(1, int(cv2.imcount(str(path))))
    except (cv2.error, OverflowError):
        return 1


def read_image(path, notes: list | None = None) -> np.ndarray:
    """Image file -> (H, W) gray or (H, W, 3) BGR array, uint8 or uint16 as stored.

    EXIF orientation is applied (the depth map lines up with the photo as viewers show it);
    alpha is dropped. Paths with non-ASCII characters work. Only the first page of a multi-page
    TIFF (frame of an animated GIF) is read; with a `notes` list, a line saying so is added to it.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read ({error.strerror or error})") from None
    except MemoryError:
        raise ImageReadError(f"{path}: too large to read into memory") from None
    if not data.size:
        raise ImageReadError(f"{path}: empty file")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as error:  # e.g. more pixels than OpenCV's limit (a decompression bomb)
        if "CV_IO_MAX_IMAGE_PIXELS" in str(error):
            raise ImageReadError(f"{path}: more pixels than OpenCV decodes (its CV_IO_MAX_IMAGE_PIXELS limit)") from None
        reason = str(error).split("error: ", 1)[-1].strip().splitlines()[0]
        raise ImageReadError(f"{path}: OpenCV cannot decode it ({reason})") from None
    if image is None:
        raise ImageReadError(f"{path}: not an image OpenCV can decode")
    if image.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise ImageReadError(f"{path}: {image.dtype} pixels are not supported (use 8 or 16-bit unsigned, or float)")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ImageReadError(f"{path}: holds NaN or infinite pixel values")
    if notes is not None and (pages := page_count(path, data[:4].tobytes())) > 1:
        kind = "frames" if data[:3].tobytes() == b"GIF" else "pages"
        notes.append(f"{path}: has {pages} {kind}; only the first is used")
    return image


def display_bgr(image: np.ndarray) -> np.ndarray:
    """Any image read_image returns -> 8-bit BGR for showing (beside a depth map, as training input)."""
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


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
    """(H, W) float32 from a grayscale PFM file (either byte order).

    ValueError naming the file for anything else: the header's size is checked against the file's
    before reading, so a header claiming 100000 x 100000 costs nothing.
    """
    with open(path, "rb") as file:
        if file.readline(8).strip() != b"Pf":
            raise ValueError(f"{path}: not a grayscale PFM file")
        try:
            width, height = map(int, file.readline(64).split())
            scale = float(file.readline(64))
        except ValueError:
            raise ValueError(f"{path}: not a PFM header (expected 'WIDTH HEIGHT' and a scale)") from None
        if width < 1 or height < 1 or not np.isfinite(scale) or scale == 0:
            raise ValueError(f"{path}: not a PFM header ({width}x{height}, scale {scale})")
        needed, stored = width * height * 4, os.fstat(file.fileno()).st_size - file.tell()
        if stored < needed:
            raise ValueError(f"{path}: the header says {width}x{height} ({needed} bytes of pixels), the file holds {stored}")
        data = np.frombuffer(file.read(needed), dtype="<f4" if scale < 0 else ">f4")
    return np.flipud(data.reshape(height, width)).astype(np.float32)
