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
Each image's loss is computed on its own; the batch loss is their mean.

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


def normalize_scale_shift(disparity_hw: torch.Tensor, valid_hw: torch.Tensor) -> torch.Tensor:
    """(d - median) / mean|d - median| over the valid pixels; invalid pixels become 0."""
    values = disparity_hw[valid_hw]
    shift = values.median()
    scale = (values - shift).abs().mean().clamp_min(1e-6 * values.abs().max().clamp_min(1e-12))
    return torch.where(valid_hw, (disparity_hw - shift) / scale, torch.zeros_like(disparity_hw))


def trimmed_absolute_loss(pred_hat_hw, target_hat_hw, valid_hw) -> torch.Tensor:
    """1/(2M) * sum of the (1 - TRIM_FRACTION) * M smallest absolute residuals."""
    residuals = (pred_hat_hw - target_hat_hw)[valid_hw].abs()
    count = residuals.numel()
    kept = int(count * (1 - TRIM_FRACTION))
    smallest = torch.topk(residuals, kept, largest=False, sorted=False).values if kept < count else residuals
    return smallest.sum() / (2 * count)


def gradient_matching_loss(pred_hat_hw, target_hat_hw, valid_hw, scales: int = GRADIENT_SCALES) -> torch.Tensor:
    """Sum over `scales` of (sum |grad R| over valid pixel pairs) / (valid pixels at that scale)."""
    residual = torch.where(valid_hw, pred_hat_hw - target_hat_hw, torch.zeros_like(pred_hat_hw))
    total = residual.new_zeros(())
    for level in range(scales):
        step = 2**level
        r, v = residual[::step, ::step], valid_hw[::step, ::step]
        count = v.sum()
        if count == 0:
            continue
        grad_x = (r[:, 1:] - r[:, :-1]).abs() * (v[:, 1:] & v[:, :-1])
        grad_y = (r[1:, :] - r[:-1, :]).abs() * (v[1:, :] & v[:-1, :])
        total = total + (grad_x.sum() + grad_y.sum()) / count
    return total


def midas_loss(pred_bhw: torch.Tensor, target_bhw: torch.Tensor, valid_bhw: torch.Tensor) -> torch.Tensor:
    """Mean over images of L_ssitrim + 0.5 * L_reg; images with fewer than 16 valid pixels are skipped."""
    losses = []
    for pred_hw, target_hw, valid_hw in zip(pred_bhw, target_bhw, valid_bhw):
        if valid_hw.sum() < 16:
            continue
        pred_hat = normalize_scale_shift(pred_hw.float(), valid_hw)
        target_hat = normalize_scale_shift(target_hw.float(), valid_hw)
        losses.append(
            trimmed_absolute_loss(pred_hat, target_hat, valid_hw)
            + GRADIENT_WEIGHT * gradient_matching_loss(pred_hat, target_hat, valid_hw)
        )
    if not losses:
        return pred_bhw.sum() * 0.0  # keeps the graph: a batch with nothing to learn from
    return torch.stack(losses).mean()


def output_anchor_loss(pred_bhw: torch.Tensor, valid_bhw: torch.Tensor) -> torch.Tensor:
    """Mean over images of (median - 1)^2 + log(mad / 0.2)^2 of the raw output's valid pixels.

    The spread term is in log space: the pull is the same for an output 10x too wide as for 10x too flat.
    """
    losses = []
    for pred_hw, valid_hw in zip(pred_bhw, valid_bhw):
        values = pred_hw.float()[valid_hw]
        if values.numel() < 16:
            continue
        median = values.median()
        spread = (values - median).abs().mean()
        losses.append((median - ANCHOR_MEDIAN) ** 2 + torch.log(spread.clamp_min(1e-6) / ANCHOR_SPREAD) ** 2)
    if not losses:
        return pred_bhw.sum() * 0.0
    return torch.stack(losses).mean()


def training_loss(raw_pred_bhw: torch.Tensor, target_bhw: torch.Tensor, valid_bhw: torch.Tensor) -> torch.Tensor:
    """midas_loss + ANCHOR_WEIGHT * output_anchor_loss, on the output before the final ReLU."""
    return midas_loss(raw_pred_bhw, target_bhw, valid_bhw) + ANCHOR_WEIGHT * output_anchor_loss(raw_pred_bhw, valid_bhw)
