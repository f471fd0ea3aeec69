"""Reading what the user knows about depth: sparse metric depth maps and CSV files of known points.

Sparse maps (a LiDAR, an RGB-D camera, structure from motion), by suffix:
- `.npy`, `.pfm`, float `.tif`/`.tiff`: metres;
- 16-bit `.png` (or integer `.tif`/`.tiff`): millimetres (the RealSense/Kinect convention).
0, negative, NaN and inf mean unknown. A map of another resolution is brought to the picture's by
nearest-valid resampling (`resample_nearest_valid`): each picture pixel takes one known map pixel
or stays unknown; nothing is interpolated across unknown pixels or depth edges.

Known points: one `x,y,z` per line (pixel column, row, metres), blank lines and `#` comments
allowed; the first line may be a header (three names without digits, e.g. x,y,depth).
"""

from pathlib import Path

import numpy as np

import cv2

from ..errors import one_line
from ..geometry import CalibrationError
from .images import read_pfm

SPARSE_DEPTH_SUFFIXES = (".npy", ".pfm", ".tif", ".tiff", ".png")
NPY_MAGIC = b"\x93NUMPY"  # the first bytes of every .npy file (NEP 1)
ASPECT_TOLERANCE = 0.02  # a map whose aspect ratio differs more from the picture's is of another view


def unknown_to_nan(depth: np.ndarray) -> np.ndarray:
    """float32 metres with NaN for every unknown value (0, negative, NaN, inf)."""
    depth = depth.astype(np.float32)
    with np.errstate(invalid="ignore"):
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return depth


def decode_depth_file(path: Path) -> np.ndarray:
    """The array a depth file stores, as stored: `.npy` (numbers only), `.pfm`, `.tif`/`.tiff`,
    `.png` (any depth OpenCV decodes). ValueError (short, without the file's name) otherwise."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        with open(path, "rb") as file:
            if file.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise ValueError("not a NumPy .npy file")
        depth = np.load(path, allow_pickle=False)
        if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)):
            raise ValueError(f"{depth.dtype} values, expected numbers")
        return depth
    if suffix == ".pfm":
        return read_pfm(path)
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("OpenCV cannot decode it")
    return image


def decode_sparse_depth(path: Path) -> np.ndarray:
    """The stored map in metres (H, W), before the unknown values are marked."""
    depth = decode_depth_file(path)
    if path.suffix.lower() in (".npy", ".pfm"):
        return depth
    if np.issubdtype(depth.dtype, np.floating):
        if path.suffix.lower() == ".png":
            raise ValueError("a float PNG; expected 16-bit millimetres")
        return depth
    if depth.dtype != np.uint16:
        raise ValueError(f"{depth.dtype} pixels; expected 16-bit millimetres or float metres")
    return depth.astype(np.float32) / 1000.0


def read_sparse_depth(path) -> np.ndarray:
    """A sparse depth map file -> (H, W) float32 metres, NaN = unknown. CalibrationError (one line
    naming the file) when it cannot be read, is not one 2-D map, or has no valid pixel."""
    path = Path(path)
    if path.suffix.lower() not in SPARSE_DEPTH_SUFFIXES:
        raise CalibrationError(f"sparse depth {path}: unknown format; expected {', '.join(SPARSE_DEPTH_SUFFIXES)}")
    try:
        depth = np.asarray(decode_sparse_depth(path))
    except (OSError, ValueError, EOFError, cv2.error) as error:
        raise CalibrationError(f"sparse depth {path}: cannot be read ({one_line(error)})") from None
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2 or 0 in depth.shape:
        raise CalibrationError(f"sparse depth {path}: expected one 2-D depth map, got shape {depth.shape}")
    depth = unknown_to_nan(depth)
    if np.isnan(depth).all():
        raise CalibrationError(f"sparse depth {path}: no valid pixel (all 0, NaN or inf)")
    return depth


def resample_nearest_valid(depth: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """A (h, w) map with NaN = unknown -> (H, W): every known map pixel goes to the picture pixel it
    falls in, the one nearest that pixel's centre winning (shrinking); picture pixels left unknown
    take the map pixel at their centre (enlarging), unknown if that is. No value is interpolated."""
    height, width = size_hw
    source_height, source_width = depth.shape
    if (source_height, source_width) == (height, width):
        return depth.astype(np.float32)
    if abs(source_width / source_height / (width / height) - 1) > ASPECT_TOLERANCE:
        raise CalibrationError(f"sparse depth {source_width}x{source_height} and the {width}x{height} picture differ "
                               "in aspect ratio (a rotated or cropped map?)")
    resampled = np.full((height, width), np.nan, dtype=np.float32)
    rows, columns = np.nonzero(np.isfinite(depth))
    # the picture pixel each known map pixel's centre falls in, and how far from that pixel's centre
    y = (rows + 0.5) * height / source_height
    x = (columns + 0.5) * width / source_width
    target_rows, target_columns = np.minimum(y.astype(int), height - 1), np.minimum(x.astype(int), width - 1)
    distance = (y - target_rows - 0.5) ** 2 + (x - target_columns - 0.5) ** 2
    order = np.argsort(-distance, kind="stable")  # farthest first: the nearest is written last and stays
    resampled[target_rows[order], target_columns[order]] = depth[rows[order], columns[order]]
    # enlarging: picture pixels no map pixel fell in take the map pixel under their centre
    source_rows = np.minimum(((np.arange(height) + 0.5) * source_height / height).astype(int), source_height - 1)
    source_columns = np.minimum(((np.arange(width) + 0.5) * source_width / width).astype(int), source_width - 1)
    under = depth[source_rows[:, None], source_columns[None, :]]
    empty = np.isnan(resampled)
    resampled[empty] = under[empty]
    return resampled


def is_header(fields: list[str]) -> bool:
    """Whether the first line's fields are a header: three names without a digit (x,y,depth), none
    of them a number (nan, inf)."""
    return len(fields) == 3 and all(field and not any(character.isdigit() for character in field)
                                    and not is_number(field) for field in fields)


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_known_points(path) -> np.ndarray:
    """A CSV of known points -> (N, 3) float64 (x, y, z). CalibrationError naming the file and line
    for a line that is not three numbers, or a file without points."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise CalibrationError(f"known points {path}: cannot be read ({one_line(error)})") from None
    points, first = [], True
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = [field.strip() for field in text.replace(";", ",").split(",")]
        header, first = first and is_header(fields), False
        if header:
            continue
        try:
            if len(fields) != 3:
                raise ValueError
            points.append([float(field) for field in fields])
        except ValueError:
            raise CalibrationError(f"known points {path} line {number}: expected x,y,z (pixel column, row, metres), "
                                   f"got {text[:60]!r}") from None
    if not points:
        raise CalibrationError(f"known points {path}: no points in it (one x,y,z per line)")
    return np.array(points, dtype=np.float64)
