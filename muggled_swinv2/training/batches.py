"""Training batches: random crops of the samples, drawn as a function of (seed, step) alone, so a
resumed run sees exactly the batches an uninterrupted one would."""

import cv2
import numpy as np

from ..datasets import Sample


def disparity_of(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(disparity, valid): sky (inf depth) is valid with disparity 0; 0 and NaN depth are not."""
    finite = np.isfinite(depth) & (depth > 0)
    disparity = np.divide(1.0, depth, out=np.zeros_like(depth, dtype=np.float32), where=finite)
    valid = finite | np.isposinf(depth)
    return disparity, valid


def augment(sample: Sample, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random square crop (40-100% of the short side) resized to size, flip, colour jitter.

    Returns (image (3, size, size) float32 normalised to [-1, 1] RGB, disparity, valid).
    """
    height, width = sample.depth.shape
    side = int(min(height, width) * rng.uniform(0.4, 1.0))
    side = max(side, min(height, width, 32))
    top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
    image = sample.image[top:top + side, left:left + side]
    depth = sample.depth[top:top + side, left:left + side]
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    depth = cv2.resize(depth, (size, size), interpolation=cv2.INTER_NEAREST)
    if rng.random() < 0.5:
        image, depth = image[:, ::-1], depth[:, ::-1]
    rgb = image[..., ::-1].astype(np.float32) / 255.0
    rgb = rgb[..., rng.permutation(3)] if rng.random() < 0.3 else rgb  # hue shuffle
    gray = rgb.mean(axis=2, keepdims=True)
    rgb = gray + (rgb - gray) * rng.uniform(0.5, 1.5)  # saturation
    rgb = (rgb - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15)  # contrast, brightness
    rgb = np.clip(rgb, 0, 1)
    disparity, valid = disparity_of(np.ascontiguousarray(depth))
    return np.ascontiguousarray(((rgb - 0.5) / 0.5).transpose(2, 0, 1)), disparity, valid


def training_batch(samples: list[Sample], seed: int, step: int, batch_size: int, size: int):
    """Batch number `step`: (images (B, 3, S, S), disparity (B, S, S), valid (B, S, S)) numpy arrays.

    A function of (seed, step) only: resuming at any step reproduces the same batches.
    """
    rng = np.random.default_rng([seed, step])
    picks = rng.integers(len(samples), size=batch_size)
    parts = [augment(samples[index], rng, size) for index in picks]
    return tuple(np.stack(column) for column in zip(*parts))
