"""Reading images and writing depth outputs, always atomically (temp file + rename)."""

import mmap
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import cv2

from ..errors import UserError
from .atomic import write_atomically

IMAGE_SUFFIXES = {".png", ".gif", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".dib", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".exr", ".hdr", ".sr", ".ras"}


class ImageReadError(UserError):
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


# ------------------------------------------------------------------ picture size from the header

def jpeg_segments(data) -> Iterator[tuple[int, int, int]]:
    """(marker, offset, length) of each segment of a JPEG that has a length, walking its markers
    from the start, up to the start of scan or the end of the image (or bytes that are no marker)."""
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            offset += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no header after them
            return
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        yield marker, offset, length
        offset += 2 + length


def _jpeg_size(data) -> tuple[int, int] | None:
    """The frame header (SOFn) of a JPEG (an EXIF thumbnail's own SOF lies inside an APP1 segment
    and is skipped with it)."""
    for marker, offset, _ in jpeg_segments(data):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if offset + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
    return None


def _tiff_size(data) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of a TIFF's first directory, classic or BigTIFF."""
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack(order + "H", data[2:4])[0] == 43
    if big:
        (first,) = struct.unpack(order + "Q", data[8:16])
        count_format, entry_size, value_at, offset_bytes = "Q", 20, 12, 8
    else:
        (first,) = struct.unpack(order + "I", data[4:8])
        count_format, entry_size, value_at, offset_bytes = "H", 12, 8, 4
    count_size = struct.calcsize(count_format)
    if first + count_size > len(data):
        return None
    (count,) = struct.unpack(order + count_format, data[first : first + count_size])
    sizes = {}
    value_formats = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8
    for index in range(count):
        entry = first + count_size + index * entry_size
        if entry + entry_size > len(data):
            return None
        tag, kind = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in (256, 257) and kind in value_formats:
            value_format = value_formats[kind]
            field = data[entry + value_at : entry + value_at + offset_bytes]
            sizes[tag] = struct.unpack(order + value_format, field[: struct.calcsize(value_format)])[0]
    return (sizes[256], sizes[257]) if len(sizes) == 2 else None


def _boxes(data, start: int, end: int):
    """(type, payload start, payload end) of the ISO base media boxes in data[start:end] (JPEG 2000, AVIF)."""
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        header = 8
        if size == 1 and start + 16 <= end:
            size, header = struct.unpack(">Q", data[start + 8 : start + 16])[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            return
        yield kind, start + header, start + size
        start += size


def _box_path(data, path: tuple[bytes, ...], start: int = 0, end: int | None = None, full: tuple[bytes, ...] = ()):
    """Payload (start, end) of each box at `path` (b"meta" and other `full` boxes carry 4 more bytes)."""
    end = len(data) if end is None else end
    for kind, payload, stop in _boxes(data, start, end):
        if kind == path[0]:
            payload += 4 if kind in full else 0
            if len(path) == 1:
                yield payload, stop
            else:
                yield from _box_path(data, path[1:], payload, stop, full)


def _jp2_size(data) -> tuple[int, int] | None:
    for start, stop in _box_path(data, (b"jp2h", b"ihdr")):
        if stop - start >= 8:
            height, width = struct.unpack(">II", data[start : start + 8])
            return width, height
    return None


def _avif_size(data) -> tuple[int, int] | None:
    """The largest image spatial extent ('ispe') among the file's items: the primary image, a grid's
    output, an alpha plane."""
    sizes = [struct.unpack(">II", data[start + 4 : start + 12])
             for start, stop in _box_path(data, (b"meta", b"iprp", b"ipco", b"ispe"), full=(b"meta",))
             if stop - start >= 12]
    return max(sizes, key=lambda size: size[0] * size[1]) if sizes else None


def _webp_size(data) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _netpbm_size(data) -> tuple[int, int] | None:
    """P1-P6 (PBM, PGM, PPM) and PF/Pf (PFM): width and height are the first numbers after the
    magic, comments aside; P7 (PAM): the WIDTH and HEIGHT lines."""
    head = bytes(data[:4096])
    if head[:2] == b"P7":
        fields = dict(re.findall(rb"^(WIDTH|HEIGHT)\s+(\d+)", head, re.MULTILINE))
        return (int(fields[b"WIDTH"]), int(fields[b"HEIGHT"])) if len(fields) == 2 else None
    numbers = re.findall(rb"\d+", re.sub(rb"#[^\n]*", b" ", head[2:]))
    return (int(numbers[0]), int(numbers[1])) if len(numbers) >= 2 else None


def _radiance_size(data) -> tuple[int, int] | None:
    """Radiance HDR: the resolution line after the header's blank line, e.g. "-Y 480 +X 640"."""
    head = bytes(data[:65536])
    found = re.search(rb"\n\n([-+])([XY]) (\d+) ([-+])([XY]) (\d+)\s", head.replace(b"\r\n", b"\n"))
    if not found or found[2] == found[5]:
        return None
    sizes = {found[2]: int(found[3]), found[5]: int(found[6])}
    return sizes[b"X"], sizes[b"Y"]


def _png_size(data) -> tuple[int, int] | None:
    return struct.unpack(">II", data[16:24]) if data[12:16] == b"IHDR" else None


def _bmp_size(data) -> tuple[int, int]:
    """BITMAPINFOHEADER and later (a negative height is a top-down picture), or OS/2's 12-byte header."""
    if data[14:18] == b"\x0c\0\0\0":
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return width, abs(height)


def _j2k_size(data) -> tuple[int, int]:
    """A JPEG 2000 codestream's SIZ segment: the reference grid less its offset."""
    width, height, left, top = struct.unpack(">IIII", data[8:24])
    return width - left, height - top


def _is_avif(head: bytes) -> bool:
    return head[4:8] == b"ftyp" and any(brand in head[8:] for brand in (b"avif", b"avis"))


# (format, test of the file's first bytes, reader of (width, height) from the mapped file): every
# format OpenCV decodes, recognised by content as OpenCV does, whatever the file is called.
PICTURE_HEADERS = (
    ("PNG", lambda head: head.startswith(b"\x89PNG\r\n\x1a\n"), _png_size),
    ("JPEG", lambda head: head.startswith(b"\xff\xd8\xff"), _jpeg_size),
    ("TIFF", lambda head: head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"), _tiff_size),
    ("WebP", lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP", _webp_size),
    ("GIF", lambda head: head[:6] in (b"GIF87a", b"GIF89a"), lambda data: struct.unpack("<HH", data[6:10])),
    ("BMP", lambda head: head.startswith(b"BM"), _bmp_size),
    ("JPEG 2000", lambda head: head.startswith(b"\0\0\0\x0cjP  \r\n\x87\n"), _jp2_size),
    ("JPEG 2000", lambda head: head.startswith(b"\xff\x4f\xff\x51"), _j2k_size),
    ("AVIF", _is_avif, _avif_size),
    ("Radiance HDR", lambda head: head.startswith((b"#?RADIANCE", b"#?RGBE")), _radiance_size),
    ("Netpbm", lambda head: head[:1] == b"P" and head[1:2] in b"1234567Ff" and head[2:3].isspace(), _netpbm_size),
    ("Sun raster", lambda head: head.startswith(b"\x59\xa6\x6a\x95"), lambda data: struct.unpack(">II", data[4:12])),
)


def picture_size(path) -> tuple[int, int]:
    """(width, height) of a picture from its header, without decoding it: a small file can
    decode to gigabytes (a run-length-encoded Radiance HDR of 12000x12000 is 9 MB). The format
    is recognised from the content, whatever the file's name. The file is mapped, not read: only
    the header's pages are touched. ImageReadError (one line naming the file) when the file is
    empty, unreadable, of no format of PICTURE_HEADERS, or its header is cut short."""
    path = Path(path)
    try:
        with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            head = data[:64]
            for name, matches, read_size in PICTURE_HEADERS:
                if matches(head):
                    try:
                        size = read_size(data)
                    except (struct.error, IndexError, KeyError, ValueError):
                        size = None
                    if not size or min(size) <= 0:
                        raise ImageReadError(f"{path}: a damaged or cut-short {name} header")
                    return int(size[0]), int(size[1])
    except ValueError:  # mmap of an empty file
        raise ImageReadError(f"{path}: empty file") from None
    except OSError as error:
        raise ImageReadError(f"{path}: cannot read ({error.strerror or error})") from None
    if cv2.haveImageReader(str(path)):  # a format of another OpenCV build (OpenEXR, say)
        raise ImageReadError(f"{path}: an image format whose size cannot be read before decoding")
    raise ImageReadError(f"{path}: not an image OpenCV can decode")


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


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["IMAGE_SUFFIXES", "ImageReadError", "display_bgr", "jpeg_segments", "picture_size", "read_image", "read_pfm",
           "save_image", "save_npy", "save_pfm", "silence_opencv"]
