"""The MiDaS training loss (Ranftl et al., TPAMI 2022), in inverse-depth (disparity) space.

    L = L_ssitrim + 0.5 * L_reg

- Each map (prediction and ground truth, each image separately) is brought to a common scale and
  shift by its median t and mean absolute deviation s over the valid pixels: d_hat = (d - t) / s.
  Nothing else about the prediction's scale or shift matters, so L(a * p + b) == L(p) for a > 0.
- L_ssitrim: 1 / (2M) * the sum of the 80% smallest |d_hat_pred - d_hat_gt| (the largest 20% of
  residuals, mostly label noise and edges, are dropped).
- L_reg (gradient matching): with R = d_hat_pred - d_hat_gt, the sum over 4 scales (R subsampled by
  2 each time) of |dR/dx| + |dR/dy| over pixel pairs that are both valid, each scale divided by
  its number of valid pixels. It sharpens discontinuities and flattens flat regions.
Each image's loss is computed on its own (all images of a batch at once); the batch loss is their mean.

Training from scratch adds a small anchor on the raw output (before the head's final ReLU): its
median is pulled to 1 and its mean absolute deviation to 0.2. L itself ignores the output's scale
and shift, so without the anchor they drift freely (a first run ended with outputs near 1e5 and half
of some images clamped to 0 by the ReLU, where no gradient flows). With it, the clamped inference
output equals the trained one except for disparities more than 5 deviations below the median.
"""

import torch

TRIM_FRACTION = 0.2
GRADIENT_SCALES = 4
GRADIENT_WEIGHT = 0.5
ANCHOR_MEDIAN, ANCHOR_SPREAD, ANCHOR_WEIGHT = 1.0, 0.2, 0.1


def median_and_spread(values_bn: torch.Tensor, valid_bn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N) -> (B,), (B,): each row's median over its valid values (the lower one for an even
    count, as torch.median) and mean absolute deviation from it, all rows at once."""
    median_b = torch.where(valid_bn, values_bn, values_bn.new_tensor(float("nan"))).nanmedian(dim=1).values
    spread_b = torch.where(valid_bn, (values_bn - median_b[:, None]).abs(), 0).sum(1) / valid_bn.sum(1)
    return median_b, spread_b


def normalize_scale_shift(disparity_bhw: torch.Tensor, valid_bhw: torch.Tensor) -> torch.Tensor:
    """Per image, (d - median) / mean|d - median| over its valid pixels; invalid pixels become 0."""
    values, valid = disparity_bhw.flatten(1), valid_bhw.flatten(1)
    shift_b, deviation_b = median_and_spread(values, valid)
    shift_b1 = shift_b[:, None]
    largest_b1 = torch.where(valid, values.abs(), 0).amax(1, keepdim=True).clamp_min(1e-12)
    scale_b1 = torch.maximum(deviation_b[:, None], 1e-6 * largest_b1)
    normalized = torch.where(valid, (values - shift_b1) / scale_b1, 0)
    return normalized.view_as(disparity_bhw)


def trimmed_absolute_loss(pred_hat_bhw, target_hat_bhw, valid_bhw) -> torch.Tensor:
    """(B,): per image, 1/(2M) * the sum of its (1 - TRIM_FRACTION) * M smallest absolute residuals.

    All images at once: residuals sorted per row (invalid ones last, as +inf), the kept ones summed
    by a cumulative sum read at each image's own count."""
    valid = valid_bhw.flatten(1)
    residuals = torch.where(valid, (pred_hat_bhw - target_hat_bhw).flatten(1).abs(), float("inf"))
    count_b = valid.sum(1)
    kept_b = (count_b * (1 - TRIM_FRACTION)).long()  # int() of each count, as for one image
    running = torch.cat([residuals.new_zeros(len(residuals), 1), residuals.sort(dim=1).values.cumsum(1)], dim=1)
    return running.gather(1, kept_b[:, None])[:, 0] / (2 * count_b)


def gradient_matching_loss(pred_hat_bhw, target_hat_bhw, valid_bhw, scales: int = GRADIENT_SCALES) -> torch.Tensor:
    """(B,): per image, the sum over `scales` of (sum |grad R| over valid pixel pairs) / (valid pixels at that scale)."""
    residual = torch.where(valid_bhw, pred_hat_bhw - target_hat_bhw, 0)
    total_b = residual.new_zeros(len(residual))
    for level in range(scales):
        step = 2**level
        r, v = residual[:, ::step, ::step], valid_bhw[:, ::step, ::step]
        grad_x = (r[:, :, 1:] - r[:, :, :-1]).abs() * (v[:, :, 1:] & v[:, :, :-1])
        grad_y = (r[:, 1:, :] - r[:, :-1, :]).abs() * (v[:, 1:, :] & v[:, :-1, :])
        count_b = v.sum((1, 2))
        total_b = total_b + (grad_x.sum((1, 2)) + grad_y.sum((1, 2))) / count_b.clamp_min(1)
    return total_b


MIN_VALID_PIXELS = 16  # an image with fewer valid pixels has nothing to learn from


def midas_loss(pred_bhw: torch.Tensor, target_bhw: torch.Tensor, valid_bhw: torch.Tensor) -> torch.Tensor:
    """Mean over images of L_ssitrim + 0.5 * L_reg; images with fewer than 16 valid pixels are skipped."""
    usable = valid_bhw.flatten(1).sum(1) >= MIN_VALID_PIXELS
    if not usable.any():
        return pred_bhw.sum() * 0.0  # keeps the graph: a batch with nothing to learn from
    pred_bhw, target_bhw, valid_bhw = pred_bhw[usable].float(), target_bhw[usable].float(), valid_bhw[usable]
    pred_hat = normalize_scale_shift(pred_bhw, valid_bhw)
    target_hat = normalize_scale_shift(target_bhw, valid_bhw)
    losses_b = trimmed_absolute_loss(pred_hat, target_hat, valid_bhw) \
        + GRADIENT_WEIGHT * gradient_matching_loss(pred_hat, target_hat, valid_bhw)
    return losses_b.mean()


def output_anchor_loss(pred_bhw: torch.Tensor, valid_bhw: torch.Tensor) -> torch.Tensor:
    """Mean over images of (median - 1)^2 + log(mad / 0.2)^2 of the raw output's valid pixels.

    The spread term is in log space: the pull is the same for an output 10x too wide as for 10x too flat.
    """
    usable = valid_bhw.flatten(1).sum(1) >= MIN_VALID_PIXELS
    if not usable.any():
        return pred_bhw.sum() * 0.0
    values, valid = pred_bhw[usable].float().flatten(1), valid_bhw[usable].flatten(1)
    median_b, spread_b = median_and_spread(values, valid)
    return ((median_b - ANCHOR_MEDIAN) ** 2 + torch.log(spread_b.clamp_min(1e-6) / ANCHOR_SPREAD) ** 2).mean()


def training_loss(raw_pred_bhw: torch.Tensor, target_bhw: torch.Tensor, valid_bhw: torch.Tensor) -> torch.Tensor:
    """midas_loss + ANCHOR_WEIGHT * output_anchor_loss, on the output before the final ReLU."""
    return midas_loss(raw_pred_bhw, target_bhw, valid_bhw) + ANCHOR_WEIGHT * output_anchor_loss(raw_pred_bhw, valid_bhw)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["midas_loss", "training_loss"]
