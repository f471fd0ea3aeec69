"""The focal-length tags of a photo's EXIF, read from the raw bytes of a JPEG or a TIFF.

EXIF is a TIFF structure: a byte order mark ("II" little-endian, "MM" big-endian), 42, and the
offset of the first directory (IFD0); each directory is a count and 12-byte entries (tag, type,
count, value or offset of the value from the TIFF's start). IFD0's tag 0x8769 points at the Exif
directory, which holds FocalLength 0x920A (RATIONAL, mm), FocalLengthIn35mmFilm 0xA405 (SHORT,
mm), FocalPlaneXResolution 0xA20E (RATIONAL) and FocalPlaneResolutionUnit 0xA210 (SHORT). A JPEG
carries it in an APP1 segment that starts with "Exif\\0\\0"; a TIFF file is such a structure itself.

A missing or damaged EXIF gives no focal length (the camera falls back to its default), never an
error: a photo's depth does not depend on it.
"""

import mmap
import struct
from pathlib import Path

from ..geometry import ExifFocal
from .images import jpeg_segments, picture_size

ORIENTATION = 0x0112
EXIF_IFD_POINTER = 0x8769
FOCAL_LENGTH = 0x920A
FOCAL_LENGTH_35MM = 0xA405
FOCAL_PLANE_X_RESOLUTION = 0xA20E
FOCAL_PLANE_RESOLUTION_UNIT = 0xA210
TYPE_FORMATS = {3: "H", 4: "I", 5: "II", 9: "i", 10: "ii", 13: "I"}  # SHORT, LONG, RATIONAL, SLONG, SRATIONAL, IFD


def jpeg_exif(data) -> bytes | None:
    """The TIFF bytes of a JPEG's EXIF segment (APP1 "Exif\\0\\0"), or None."""
    for marker, offset, length in jpeg_segments(data):
        if marker == 0xE1 and data[offset + 4:offset + 10] == b"Exif\0\0":
            return bytes(data[offset + 10:offset + 2 + length])
    return None


def directory(tiff, offset: int, order: str) -> dict[int, tuple]:
    """{tag: values} of the directory at `offset` (types other than TYPE_FORMATS are skipped)."""
    (count,) = struct.unpack(order + "H", tiff[offset:offset + 2])
    entries = {}
    for index in range(count):
        entry = offset + 2 + 12 * index
        tag, kind, values = struct.unpack(order + "HHI", tiff[entry:entry + 8])
        if kind not in TYPE_FORMATS or values != 1:
            continue
        size = struct.calcsize(order + TYPE_FORMATS[kind])
        where = entry + 8 if size <= 4 else struct.unpack(order + "I", tiff[entry + 8:entry + 12])[0]
        entries[tag] = struct.unpack(order + TYPE_FORMATS[kind], tiff[where:where + size])
    return entries


def number(values: tuple | None) -> float | None:
    """A SHORT/LONG as it is, a RATIONAL as numerator / denominator (None for 0 / 0 or absent)."""
    if not values:
        return None
    if len(values) == 2:
        return values[0] / values[1] if values[1] else None
    return float(values[0])


def directories(tiff) -> tuple[dict, dict]:
    """({tag: values} of IFD0, of the Exif directory) of a TIFF structure (empty when it is not one)."""
    order = {b"II": "<", b"MM": ">"}.get(bytes(tiff[:2]))
    if order is None or struct.unpack(order + "H", tiff[2:4])[0] != 42:
        return {}, {}
    (first,) = struct.unpack(order + "I", tiff[4:8])
    ifd0 = directory(tiff, first, order)
    return ifd0, directory(tiff, ifd0[EXIF_IFD_POINTER][0], order) if EXIF_IFD_POINTER in ifd0 else {}


def focal_tags(exif: dict) -> ExifFocal:
    """The focal tags of an Exif directory ({tag: values})."""
    unit = number(exif.get(FOCAL_PLANE_RESOLUTION_UNIT))
    return ExifFocal(
        focal_35mm=number(exif.get(FOCAL_LENGTH_35MM)) or None,
        focal_mm=number(exif.get(FOCAL_LENGTH)) or None,
        focal_plane_x_resolution=number(exif.get(FOCAL_PLANE_X_RESOLUTION)) or None,
        focal_plane_unit=int(unit) if unit else None,
    )


def tiff_focal(tiff) -> ExifFocal:
    """The focal tags of a TIFF structure (an EXIF block, or a TIFF file)."""
    try:
        return focal_tags(directories(tiff)[1])
    except (ValueError, struct.error, IndexError, KeyError):
        return ExifFocal()


def read_directories(path) -> tuple[dict, dict]:
    """(IFD0, Exif directory) of a JPEG's EXIF or a TIFF file; empty for other files, files without
    EXIF, or a damaged one."""
    try:
        with open(Path(path), "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[:3] == b"\xff\xd8\xff":
                tiff = jpeg_exif(data)
                return directories(tiff) if tiff else ({}, {})
            if data[:4] in (b"II*\0", b"MM\0*"):
                return directories(data)
    except (OSError, ValueError, struct.error, IndexError, KeyError):
        pass
    return {}, {}


def read_exif_focal(path) -> ExifFocal:
    """The EXIF focal tags of a JPEG or TIFF file; an empty ExifFocal for other files, files
    without EXIF, or a damaged one."""
    return focal_tags(read_directories(path)[1])


def shown_size(path) -> tuple[int, int]:
    """(width, height) of a picture as shown: its header's size (io.images.picture_size, no
    decoding), swapped where the EXIF orientation (5-8) turns it by 90 degrees, as read_image does.
    ImageReadError as picture_size raises it."""
    width, height = picture_size(path)
    ifd0, _ = read_directories(path)
    orientation = number(ifd0.get(ORIENTATION)) or 1
    return (height, width) if 5 <= orientation <= 8 else (width, height)
