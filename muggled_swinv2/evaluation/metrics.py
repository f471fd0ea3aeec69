"""The zero-shot evaluation protocol of MiDaS (Ranftl et al., TPAMI 2022), in numpy.

A relative model predicts inverse depth up to an unknown scale and shift, so each prediction is
first aligned to the ground truth: s, t = argmin sum (s * pred + t - gt_disparity)^2 over the valid
pixels (least squares). The aligned disparity is clamped below at 1 / max_depth (so that nothing is
placed beyond the farthest depth of interest, and nothing at or behind infinity), then inverted to
depth and compared with the ground-truth depth:
    AbsRel = mean |d - d*| / d*        delta1 = fraction of pixels with max(d / d*, d* / d) < 1.25
"""

from dataclasses import dataclass

import numpy as np

from ..scale_shift import fit_scale_shift


@dataclass
class ImageScores:
    absrel: float
    delta1: float
    valid: int  # pixels scored


def valid_depth_mask(depth_gt: np.ndarray) -> np.ndarray:
    """Pixels with a usable ground truth: finite and > 0 (0, NaN and inf mark missing values)."""
    return np.isfinite(depth_gt) & (depth_gt > 0)


def score_depth(pred_disparity: np.ndarray, depth_gt: np.ndarray, max_depth: float | None = None) -> ImageScores:
    """AbsRel and delta1 of one prediction (inverse depth, same H x W as depth_gt) after alignment.

    `max_depth` defaults to the image's largest valid ground-truth depth.
    """
    if pred_disparity.shape != depth_gt.shape:
        raise ValueError(f"prediction {pred_disparity.shape} and ground truth {depth_gt.shape} differ in size")
    valid = valid_depth_mask(depth_gt) & np.isfinite(pred_disparity)
    if not valid.any():
        return ImageScores(absrel=float("nan"), delta1=float("nan"), valid=0)
    disparity_gt = np.zeros_like(depth_gt, dtype=np.float64)
    disparity_gt[valid] = 1.0 / depth_gt[valid]
    scale, shift = fit_scale_shift(pred_disparity, disparity_gt, valid)
    if not np.isfinite(scale):  # a constant prediction: only the shift is defined
        scale, shift = 0.0, float(disparity_gt[valid].mean())
    max_depth = float(depth_gt[valid].max()) if max_depth is None else float(max_depth)
    aligned = np.maximum(scale * pred_disparity[valid].astype(np.float64) + shift, 1.0 / max_depth)
    depth_pred = 1.0 / aligned
    truth = depth_gt[valid].astype(np.float64)
    ratio = np.maximum(depth_pred / truth, truth / depth_pred)
    return ImageScores(
        absrel=float(np.mean(np.abs(depth_pred - truth) / truth)),
        delta1=float(np.mean(ratio < 1.25)),
        valid=int(valid.sum()),
    )


def row_gradient_baseline(depth_gt: np.ndarray) -> np.ndarray:
    """The 'prediction' of a model that knows nothing but the row: inverse depth = row index.

    Scored like a model (aligned by scale and shift), this is the fitted a * row + b: the best a
    vertical gradient can do, a reference for what a real model adds.
    """
    rows = np.arange(depth_gt.shape[0], dtype=np.float32)[:, None]
    return np.broadcast_to(rows, depth_gt.shape).astype(np.float32)


def mean_scores(scores: list[ImageScores]) -> dict:
    """Mean AbsRel and delta1 over the images that had valid pixels."""
    usable = [score for score in scores if score.valid]
    if not usable:
        return {"absrel": float("nan"), "delta1": float("nan")}
    return {
        "absrel": float(np.mean([score.absrel for score in usable])),
        "delta1": float(np.mean([score.delta1 for score in usable])),
    }


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["ImageScores", "mean_scores", "row_gradient_baseline", "score_depth", "valid_depth_mask"]
