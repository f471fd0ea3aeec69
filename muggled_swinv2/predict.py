"""From an OpenCV image to inverse depth at the image's own resolution.

Two preprocessing modes:
- square=True reproduces MiDaS v3.1's run.py for SwinV2 exactly: RGB in [0, 1] as float64,
  cv2.INTER_CUBIC resize to the native square size (aspect ratio not kept), (x - 0.5) / 0.5.
- the default keeps the aspect ratio: the long side goes to `size` (default: the native size) and
  both sides are rounded to multiples of 32, so the windows see undistorted geometry.
Either way the prediction is resized back with bicubic interpolation (align_corners=False).
"""

import numbers

import numpy as np
import torch
import torch.nn.functional as F

import cv2

from .model import swinv2_dpt


def to_rgb_unit(image: np.ndarray, dtype=np.float32) -> np.ndarray:
    """OpenCV image (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA -> (H, W, 3) RGB in [0, 1].

    uint8 is divided by 255, uint16 by 65535; float images are taken to be in [0, 1] already.
    Alpha is dropped.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy image array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)) or 0 in image.shape:
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    if image.dtype == np.uint8:
        full_scale = 255.0
    elif image.dtype == np.uint16:
        full_scale = 65535.0
    elif image.dtype in (np.float32, np.float64):
        full_scale = 1.0
        if not np.isfinite(image).all():
            raise ValueError("the image holds NaN or infinite values")
    else:
        raise ValueError(f"unsupported image dtype {image.dtype} (use uint8, uint16 or float)")
    if image.ndim == 2:
        rgb = np.repeat(image[:, :, None], 3, axis=2)
    else:
        rgb = image[:, :, 2::-1]  # BGR(A) -> RGB, alpha dropped
    return rgb.astype(dtype) / dtype(full_scale)


def network_size_hw(image_hw: tuple[int, int], long_side: int, multiple: int = 32) -> tuple[int, int]:
    """Keep the aspect ratio, long side near `long_side`, both sides positive multiples of `multiple`."""
    scale = long_side / max(image_hw)
    return tuple(max(multiple, int(side * scale / multiple + 0.5) * multiple) for side in image_hw)  # half up


def network_input_hw(image_hw, native_size: int, square: bool, size: int | None) -> tuple[int, int]:
    """The (h, w) the network sees for an image: the native square, or the aspect kept at `size`."""
    if square:
        return native_size, native_size
    return network_size_hw(tuple(image_hw), size or native_size)


def prepare_input(image: np.ndarray, native_size: int, square: bool, size: int | None) -> np.ndarray:
    """OpenCV image -> (3, h, w) float32 network input, normalised to [-1, 1]."""
    rgb = to_rgb_unit(image, np.float64 if square else np.float32)  # MiDaS resizes the float64 image
    height, width = network_input_hw(rgb.shape[:2], native_size, square, size)
    if square:
        resized = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_CUBIC)
    else:
        shrinking = height * width < rgb.shape[0] * rgb.shape[1]
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
        resized = cv2.resize(rgb, (width, height), interpolation=interpolation)
    normalized = (resized - 0.5) / 0.5
    return np.ascontiguousarray(normalized.transpose(2, 0, 1)).astype(np.float32)


def resize_depth(depth_bhw: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Bicubic (align_corners=False) resize of (B, h, w) depth to (B, H, W), as MiDaS does."""
    resized = F.interpolate(depth_bhw.float()[:, None], size=tuple(size_hw), mode="bicubic", align_corners=False)
    return resized[:, 0]


@torch.inference_mode()
def infer_prepared(model, inputs: list[np.ndarray]) -> list[torch.Tensor]:
    """Network inputs from prepare_input -> (h, w) depth at the network's resolution, on the model's
    device; inputs of the same shape run as one batch."""
    device = next(model.parameters()).device
    depths = [None] * len(inputs)
    for shape in dict.fromkeys(array.shape for array in inputs):
        indices = [index for index, array in enumerate(inputs) if array.shape == shape]
        batch_bchw = torch.from_numpy(np.stack([inputs[index] for index in indices])).to(device)
        for index, prediction in zip(indices, model(batch_bchw)):
            depths[index] = prediction
    return depths


@torch.inference_mode()
def restore_size(depth_hw: torch.Tensor, size_hw: tuple[int, int]) -> np.ndarray:
    """A prediction of infer_prepared -> float32 numpy depth at the image's size (H, W)."""
    return resize_depth(depth_hw[None], size_hw)[0].cpu().numpy()


# The largest side the network is fed. Far past any memory (the memory check, memory.py, names the
# largest size that fits): the bound only keeps sizes within what floats and OpenCV's sizes hold (a
# 400-digit --size overflowed a float division).
MAX_NETWORK_SIDE = 2**20


def parse_size_hw(text: str) -> tuple[int, int] | None:
    """'H' (a square) or 'HxW' -> (H, W) in pixels; None if the text is neither ('64x' is not; the
    caller refuses it, naming its own option)."""
    height, cross, width = text.lower().partition("x")
    if cross and not width:
        return None
    try:
        return int(height), int(width or height)
    except ValueError:
        return None


def fits_network(size_hw, stride: int) -> bool:
    """Can the network take an input of `size_hw` (H, W): positive multiples of the model's stride?"""
    return len(size_hw) == 2 and min(size_hw) >= 1 and size_hw[0] % stride == 0 and size_hw[1] % stride == 0


def check_long_side(square: bool, size) -> None:
    """ValueError unless `size` (the long side fed to the network in the aspect-keeping mode) is
    None or a positive integer up to MAX_NETWORK_SIDE, and None with `square` (which always runs at
    the native size)."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1):
        raise ValueError(f"size must be a positive number of pixels, got {size!r:.40}")
    if size is not None and size > MAX_NETWORK_SIDE:
        raise ValueError(f"size must be at most {MAX_NETWORK_SIDE} pixels, got {size!r:.40}")
    if square and size is not None:
        raise ValueError("square=True always uses the model's native size; size is for the aspect-keeping mode")


def predict_batch(model, images: list, square: bool = False, size: int | None = None) -> list[np.ndarray]:
    """predict_depth for several images; those with the same network size run as one batch."""
    check_long_side(square, size)
    inputs = [prepare_input(image, model.config.native_size, square, size) for image in images]
    return [restore_size(depth, image.shape[:2]) for image, depth in zip(images, infer_prepared(model, inputs))]


def predict_depth(model, image: np.ndarray, square: bool = False, size: int | None = None) -> np.ndarray:
    """(H, W) float32 relative inverse depth of one image, at the image's own resolution."""
    return predict_batch(model, [image], square, size)[0]


class DepthModel(swinv2_dpt.SwinV2DPT):
    """The network (model/swinv2_dpt.py's SwinV2DPT) with `predict` for OpenCV images: what
    `load_model` gives (public as `muggled_swinv2.DepthModel`, and as `muggled_swinv2.SwinV2DPT`)."""

    def predict(self, image: np.ndarray, square: bool = False, size: int | None = None) -> np.ndarray:
        """Inverse depth (H, W) float32 for one OpenCV image (BGR/BGRA/gray, uint8/uint16/float).

        See predict_depth for the two preprocessing modes.
        """
        return predict_depth(self, image, square=square, size=size)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["MAX_NETWORK_SIDE", "DepthModel", "check_long_side", "fits_network", "infer_prepared", "network_input_hw",
           "network_size_hw", "parse_size_hw", "predict_batch", "predict_depth", "prepare_input", "restore_size"]
