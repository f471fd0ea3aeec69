"""Scoring a model on (image, depth) samples with the MiDaS protocol (see metrics.py).

The model predicts with exactly the preprocessing of the `image` command (aspect kept, or
--square / --size), back at the ground truth's resolution. Alongside, the fitted row-gradient
baseline is scored on the same pixels, so a reader sees what the model adds.
"""

import torch

from ..predict import predict_batch
from .metrics import mean_scores, row_gradient_baseline, score_depth


def evaluate_samples(model, samples, square: bool = False, size: int | None = None,
                     max_depth: float | None = None, batch_size: int = 4) -> dict:
    """{"mean": {absrel, delta1}, "baseline": {absrel, delta1}, "scored": images in the means,
    "images": [{name, absrel, delta1, valid}]}.

    An image is scored where it has pixels with both a ground truth and a finite prediction
    (valid > 0); the others have NaN scores and are left out of the means.
    """
    model_scores, baseline_scores, rows = [], [], []
    for first in range(0, len(samples), batch_size):
        chunk = samples[first:first + batch_size]
        with torch.inference_mode():
            predictions = predict_batch(model, [sample.image for sample in chunk], square=square, size=size)
        for sample, prediction in zip(chunk, predictions):
            scores = score_depth(prediction, sample.depth, max_depth)
            baseline = score_depth(row_gradient_baseline(sample.depth), sample.depth, max_depth)
            model_scores.append(scores)
            baseline_scores.append(baseline)
            rows.append({"name": sample.name, "absrel": scores.absrel, "delta1": scores.delta1, "valid": scores.valid})
    return {"mean": mean_scores(model_scores), "baseline": mean_scores(baseline_scores),
            "scored": sum(1 for scores in model_scores if scores.valid), "images": rows}


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["evaluate_samples"]
