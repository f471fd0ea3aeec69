"""Fitting 1 / z = s * d + t to what the user knows, and applying it.

d is the model's relative inverse depth (bigger = nearer), z the distance in metres along the
optical axis. Three sources of knowledge, one record (`Calibration`):

- known points (x, y, z): least squares in inverse depth (the MiDaS maintainers' answer, isl-org/MiDaS
  #37, #171), as in scale_shift.py; each point's relative error and, from 4 points, the
  leave-one-out relative error (each point predicted by a fit to the others: what to expect elsewhere);
- a sparse metric depth map (LiDAR, RGB-D, structure from motion), already at the picture's size:
  least squares too, robust to the gross errors such maps carry (flying pixels, reflections): a
  pixel whose residual stands out from its neighbours' is left out (`fit_sparse_depth`);
- the nearest and farthest distances in view: the prediction's 1st and 99th percentiles are put
  at FAR and NEAR.

`fit="scale"` fixes t = 0 (inverse depth proportional to the prediction): an assumption, stated
in the record's notes, that makes one known point enough.

Applying: z = 1 / (s * d + t); where s * d + t <= 0 the pixel lies at or beyond infinity (or behind
the camera) by the fit, and gets NaN.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..scale_shift import fit_scale_shift

FITS = ("affine", "scale")
LEAVE_ONE_OUT_MIN_POINTS = 4
ONE_DEPTH = 1e-3  # known inverse depths whose spread is below this fraction of the largest: one depth
NEAR_ONE_DEPTH = 1.15  # the farthest known point less than 15% farther than the nearest: warn
SMALL_PART = 0.25  # known points inside a quarter of the picture's width and height: warn
OUTLIER_ROUNDS = 3  # sparse maps: least squares, outliers out, least squares, ...
OUTLIER_SIGMAS = 5.0  # an outlier is off its neighbourhood by more than 5 robust standard deviations
KNOWN_PER_CELL = 3  # the neighbourhood: 3 x 3 squares holding about 3 known pixels each
MAX_FIT_PIXELS = 100_000  # a denser map is fitted on a regular sample of its known pixels
RANGE_PERCENTILES = (1.0, 99.0)  # --depth-range: the prediction's robust extremes
ELSE_SCALE_FIT = "(or assume shift 0 with the scale fit, --fit scale)"
SCALE_FIT_NOTE = "assumed shift 0: inverse depth proportional to the prediction (--fit scale)"


class CalibrationError(UserError, ValueError):
    """Bad calibration or camera input (a point outside the picture, a distance that is not a
    positive number, too few points, ...): a one-line message naming the thing at fault."""


@dataclass
class Calibration:
    """1 / z = scale * d + shift, and how well it fits what it was fitted to.

    scale, shift: in 1/metres per unit of d, and 1/metres. source: "known points", "sparse depth"
    or "depth range". points: known values used (points, or valid pixels of a sparse map);
    outliers: those the robust fit left out. relative_errors: |z_fit - z| / z at each known point
    (points only); mean_relative_error: the mean of that over the values the fit kept;
    leave_one_out_error: the mean relative error of each point predicted by a fit to the others
    (4 or more points), NaN when not computed. warnings: ill-conditioning, one line each; notes:
    the assumptions made (scale-only fit, depth range).
    """

    scale: float
    shift: float
    fit: str
    source: str
    points: int
    outliers: int = 0
    relative_errors: tuple[float, ...] = ()
    mean_relative_error: float = float("nan")
    leave_one_out_error: float = float("nan")
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def record(self) -> dict:
        """The fit as JSON-ready values (NaN and inf as None)."""
        def number(value):
            return float(value) if np.isfinite(value) else None
        return {
            "scale": self.scale, "shift": self.shift, "fit": self.fit, "source": self.source,
            "points": self.points, "outliers": self.outliers,
            "relative_errors": [number(value) for value in self.relative_errors],
            "mean_relative_error": number(self.mean_relative_error),
            "leave_one_out_error": number(self.leave_one_out_error),
            "warnings": list(self.warnings), "notes": list(self.notes),
        }

    def summary(self) -> str:
        """One line: what was fitted to what, and how well."""
        parts = [f"{self.fit} fit to {self.points} {'known points' if self.source == 'known points' else self.source}"]
        if self.source == "sparse depth":
            parts[0] = f"{self.fit} fit to {self.points} known pixels ({self.outliers} outliers)"
        elif self.source == "depth range":
            parts[0] = "fit to the depth range"
        parts.append(f"s={self.scale:.6g} t={self.shift:.6g}")
        if np.isfinite(self.mean_relative_error):
            parts.append(f"mean relative error {100 * self.mean_relative_error:.1f}%")
        if np.isfinite(self.leave_one_out_error):
            parts.append(f"leave-one-out {100 * self.leave_one_out_error:.1f}%")
        return ", ".join(parts)


def check_fit(fit: str) -> None:
    if fit not in FITS:
        raise CalibrationError(f"fit {fit!r}: expected one of {', '.join(FITS)}")


def depth_from(inverse_depth, scale: float, shift: float) -> np.ndarray:
    """z = 1 / (scale * d + shift) in float64, NaN where that is not a positive finite distance."""
    metric_inverse = scale * np.asarray(inverse_depth, dtype=np.float64) + shift
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(metric_inverse > 0, 1.0 / metric_inverse, np.nan)


def apply_calibration(inverse_depth: np.ndarray, calibration: Calibration) -> np.ndarray:
    """Relative inverse depth (H, W) -> metric depth (H, W) float32 in metres along the optical axis.

    NaN where the fit puts the pixel at or beyond infinity, behind the camera, or where the
    prediction is not finite (count them with np.isnan)."""
    return depth_from(inverse_depth, calibration.scale, calibration.shift).astype(np.float32)


def relative_errors(d: np.ndarray, z: np.ndarray, scale: float, shift: float) -> np.ndarray:
    """|z_fit - z| / z per known value; inf where the fit gives no depth there."""
    fitted = depth_from(d, scale, shift)
    return np.where(np.isfinite(fitted), np.abs(fitted - z) / z, np.inf)


def least_squares(d: np.ndarray, inverse_z: np.ndarray, fit: str) -> tuple[float, float]:
    """(s, t) minimising sum (s * d + t - 1/z)^2; t = 0 for the scale fit. NaN where undefined."""
    if fit == "scale":
        energy = float(np.dot(d, d))
        return (float(np.dot(d, inverse_z)) / energy, 0.0) if energy > 0 else (float("nan"), float("nan"))
    return fit_scale_shift(d, inverse_z)


def condition_warnings(x: np.ndarray, y: np.ndarray, z: np.ndarray, size_wh: tuple[int, int], what: str,
                       fit: str) -> list[str]:
    """The ill-conditioning lines: near one depth (affine only), inside a small part of the picture."""
    warnings = []
    width, height = size_wh
    if fit == "affine" and z.max() < NEAR_ONE_DEPTH * z.min():
        warnings.append(f"ill-conditioned: the {what} lie at nearly one depth ({z.min():.3g}-{z.max():.3g} m), "
                        "so the shift is poorly determined; add nearer and farther ones")
    if len(x) > 1 and np.ptp(x) < SMALL_PART * width and np.ptp(y) < SMALL_PART * height:
        warnings.append(f"ill-conditioned: the {what} lie inside a small part of the picture "
                        f"(x {x.min():g}-{x.max():g}, y {y.min():g}-{y.max():g}); spread them out")
    return warnings


def check_known_depths(z: np.ndarray, fit: str, what: str, one: str) -> None:
    """An affine fit needs two or more known values (`what`; `one` of them) at different depths."""
    if fit == "affine" and len(z) < 2:
        raise CalibrationError(f"1 {one}: an affine fit needs 2 or more {ELSE_SCALE_FIT}")
    inverse_z = 1.0 / z
    if fit == "affine" and np.ptp(inverse_z) <= ONE_DEPTH * inverse_z.max():
        raise CalibrationError(f"all {what} are at one depth ({z.min():g} m): an affine fit needs different depths "
                               f"{ELSE_SCALE_FIT}")


def check_predictions(d: np.ndarray, fit: str, what: str) -> None:
    """The prediction must vary over the known values (affine) or not be zero at all of them (scale)."""
    if fit == "affine" and np.ptp(d) <= 1e-6 * np.abs(d).max():
        raise CalibrationError(f"the prediction is the same at all {what}: no scale can be fitted")
    if fit == "scale" and not np.any(d > 0):
        raise CalibrationError(f"the prediction is zero at all {what}: no scale can be fitted")


def check_scale(scale: float, what: str) -> None:
    if not np.isfinite(scale):
        raise CalibrationError(f"no fit to the {what}: the prediction does not vary over them")
    if scale <= 0:
        raise CalibrationError(f"the {what} contradict the prediction: the fit puts nearer points farther "
                               f"(scale {scale:.3g} <= 0)")


def point_name(index: int, point) -> str:
    x, y, z = point
    return f"known point {index} ({x:g},{y:g}={z:g})"


def check_known_points(points, fit: str = "affine") -> np.ndarray:
    """The known points as (N, 3) float64, checked without the picture: distances that are
    positive finite numbers, enough points for the fit, not all at one depth (affine).
    CalibrationError (one line naming the point) otherwise."""
    check_fit(fit)
    try:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        raise CalibrationError("known points: expected (x, y, z) triples") from None
    if not len(points):
        raise CalibrationError("no known points")
    for index, point in enumerate(points, start=1):
        if not (np.isfinite(point[2]) and point[2] > 0):
            raise CalibrationError(f"{point_name(index, point)}: the distance must be a positive finite number of metres")
    check_known_depths(points[:, 2], fit, "known points", "known point")
    return points


def check_points_inside(points: np.ndarray, width: int, height: int) -> None:
    """CalibrationError naming the first point outside a width x height picture."""
    for index, point in enumerate(points, start=1):
        x, y, _ = point
        if not (0 <= x < width and 0 <= y < height):
            raise CalibrationError(f"{point_name(index, point)}: outside the {width}x{height} picture "
                                   f"(x 0-{width - 1}, y 0-{height - 1})")


def fit_points(inverse_depth: np.ndarray, points, fit: str = "affine") -> Calibration:
    """Fit 1/z = s * d + t to known points.

    inverse_depth: (H, W) the model's prediction at the picture's size. points: (N, 3) or N triples
    (x, y, z): x the pixel column, y the row of the picture as shown (after EXIF rotation; 0, 0 the
    top-left pixel), z the distance in metres along the optical axis. fit: "affine" (2 or more
    points) or "scale" (t = 0, 1 or more points). CalibrationError (one line naming the point) for a
    point outside the picture, a distance that is not a positive finite number, too few points,
    all at one depth, or a fit that contradicts the prediction.
    """
    points = check_known_points(points, fit)
    inverse_depth = np.asarray(inverse_depth)
    if inverse_depth.ndim != 2 or 0 in inverse_depth.shape:
        raise CalibrationError(f"expected an (H, W) inverse depth map, got shape {inverse_depth.shape}")
    height, width = inverse_depth.shape
    check_points_inside(points, width, height)
    d = inverse_depth[points[:, 1].astype(int), points[:, 0].astype(int)].astype(np.float64)
    if not np.isfinite(d).all():
        index = int(np.flatnonzero(~np.isfinite(d))[0])
        raise CalibrationError(f"{point_name(index + 1, points[index])}: the prediction there is not finite")
    x, y, z = points.T
    what = "known points"
    check_predictions(d, fit, what)
    scale, shift = least_squares(d, 1.0 / z, fit)
    check_scale(scale, what)
    errors = relative_errors(d, z, scale, shift)
    leave_one_out = float("nan")
    if len(points) >= LEAVE_ONE_OUT_MIN_POINTS:
        held_out = []
        for index in range(len(points)):
            others = np.arange(len(points)) != index
            s, t = least_squares(d[others], 1.0 / z[others], fit)
            held_out.append(relative_errors(d[index:index + 1], z[index:index + 1], s, t)[0]
                            if np.isfinite(s) and s > 0 else np.inf)
        leave_one_out = float(np.mean(held_out))
    notes = (SCALE_FIT_NOTE,) if fit == "scale" else ()
    return Calibration(
        scale=scale, shift=shift, fit=fit, source="known points", points=len(points),
        relative_errors=tuple(float(value) for value in errors), mean_relative_error=float(np.mean(errors)),
        leave_one_out_error=leave_one_out,
        warnings=tuple(condition_warnings(x, y, z, (width, height), what, fit)), notes=notes,
    )


def local_median(values: np.ndarray, rows: np.ndarray, columns: np.ndarray, cell: int) -> np.ndarray:
    """Per known pixel, the median of `values` over the known pixels in its 3 x 3 block of
    cell x cell squares (the upper median of an even count)."""
    cell_rows, cell_columns = rows // cell + 1, columns // cell + 1
    stride = int(cell_columns.max()) + 2
    keys = np.concatenate([(cell_rows + dr) * stride + cell_columns + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)])
    neighbours = np.tile(values, 9)
    spread = float(np.ptp(values)) or 1.0
    order = np.argsort(keys + 0.5 * (neighbours - neighbours.min()) / spread)  # by block, then by value
    keys, neighbours = keys[order], neighbours[order]
    blocks, first, count = np.unique(keys, return_index=True, return_counts=True)
    medians = neighbours[first + count // 2]
    return medians[np.searchsorted(blocks, cell_rows * stride + cell_columns)]


def fit_sparse_depth(inverse_depth: np.ndarray, depth: np.ndarray, fit: str = "affine") -> Calibration:
    """Fit 1/z = s * d + t to a sparse metric depth map, leaving its gross errors out.

    inverse_depth: (H, W) the prediction; depth: (H, W) metres at the same pixels (io.known_depth
    resamples a map of another size), 0, NaN and inf unknown. Least squares in inverse depth, then
    OUTLIER_ROUNDS times: each known pixel's relative residual (s * d + t) * z - 1 is compared with
    the median of its neighbourhood's (about 27 known pixels), and those off by more than OUTLIER_SIGMAS robust
    standard deviations are left out of the next least squares. A sensor's gross errors (flying
    pixels, reflections) are isolated, so they stand out from their neighbours; the model's own
    errors are smooth over a wall or an object, so a whole region that the model gets wrong stays
    in the fit, as in the MiDaS protocol's alignment. (A consensus fit, RANSAC or least median,
    drops such regions instead: on rooms rendered with the demo model it gave up to 2x the best
    fit's AbsRel on clean maps; this fit 1.03x at most, benchmarks/metric_fit.py.)
    """
    check_fit(fit)
    inverse_depth, depth = np.asarray(inverse_depth), np.asarray(depth)
    if inverse_depth.ndim != 2 or depth.shape != inverse_depth.shape:
        raise CalibrationError(f"sparse depth {depth.shape} and prediction {inverse_depth.shape} differ in size")
    with np.errstate(invalid="ignore"):
        known = np.isfinite(depth) & (depth > 0) & np.isfinite(inverse_depth)
    if not known.any():
        raise CalibrationError("the sparse depth map has no valid pixel (all 0, NaN or inf)")
    rows, columns = np.nonzero(known)
    notes = [SCALE_FIT_NOTE] if fit == "scale" else []
    if len(rows) > MAX_FIT_PIXELS:  # a dense map: a regular sample fixes two numbers as well, in bounded time
        step = -(-len(rows) // MAX_FIT_PIXELS)
        notes.append(f"fitted to one in {step} of the {len(rows)} known pixels (a regular sample)")
        rows, columns = rows[::step], columns[::step]
    d = inverse_depth[rows, columns].astype(np.float64)
    z = depth[rows, columns].astype(np.float64)
    inverse_z = 1.0 / z
    what = "known pixels of the sparse depth map"
    check_known_depths(z, fit, what, "known pixel in the sparse depth map")
    check_predictions(d, fit, what)
    scale, shift = least_squares(d, inverse_z, fit)
    check_scale(scale, what)
    cell = max(1, round(math.sqrt(depth.size / len(d) * KNOWN_PER_CELL)))
    inliers = np.ones(len(d), dtype=bool)
    for _ in range(OUTLIER_ROUNDS):
        residuals = (scale * d + shift) * z - 1.0  # relative, about the relative depth error
        deviation = np.abs(residuals - local_median(residuals, rows, columns, cell))
        threshold = max(OUTLIER_SIGMAS * 1.4826 * float(np.median(deviation)), 1e-9)
        candidates = deviation <= threshold
        refit = least_squares(d[candidates], inverse_z[candidates], fit) if candidates.sum() >= 2 else (np.nan, np.nan)
        if not (np.isfinite(refit[0]) and refit[0] > 0):
            break
        inliers, (scale, shift) = candidates, refit
    errors = relative_errors(d[inliers], z[inliers], scale, shift)
    warnings = condition_warnings(columns[inliers], rows[inliers], z[inliers], (depth.shape[1], depth.shape[0]),
                                  what, fit)
    return Calibration(
        scale=float(scale), shift=float(shift), fit=fit, source="sparse depth", points=len(d),
        outliers=int(len(d) - inliers.sum()), mean_relative_error=float(np.mean(errors)),
        warnings=tuple(warnings), notes=tuple(notes),
    )


def fit_depth_range(inverse_depth: np.ndarray, near: float, far: float) -> Calibration:
    """Put the prediction's 1st percentile at `far` and its 99th at `near` (metres): for when
    nothing else is known. Pixels beyond those percentiles lie nearer than NEAR or farther than
    FAR (NaN where beyond infinity)."""
    if not (np.isfinite(near) and np.isfinite(far) and 0 < near < far):
        raise CalibrationError(f"depth range {near:g},{far:g}: expected 0 < NEAR < FAR (metres)")
    values = np.asarray(inverse_depth, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not values.size:
        raise CalibrationError("the prediction has no finite value")
    low, high = np.percentile(values, RANGE_PERCENTILES)
    if not high > low:
        raise CalibrationError("the prediction is flat: a depth range cannot be placed on it")
    scale = (1.0 / near - 1.0 / far) / (high - low)
    shift = 1.0 / far - scale * low
    low_percent, high_percent = RANGE_PERCENTILES
    return Calibration(
        scale=float(scale), shift=float(shift), fit="affine", source="depth range", points=0,
        notes=(f"assumed the prediction's {high_percent:g}th percentile at {near:g} m and its {low_percent:g}st at "
               f"{far:g} m (--depth-range)",),
    )
