"""The build step: a checkpoint file -> a ready model (checked, on its device, cast, accelerated).

One floor above the pieces it puts together (segment-anything's build_sam.py): formats/ reads the
file, predict.py's DepthModel is the network with `predict`, accelerate/ the CPU speed paths, devices.py the device.
"""

import torch

from .accelerate import accelerate_for_inference
from .devices import DTYPES, select_device
from .formats.checkpoint import CheckpointError, check_tensors, read_checkpoint
from .model import SwinV2DPTConfig
from .predict import DepthModel


def build_model(config: SwinV2DPTConfig, native_state_dict: dict) -> DepthModel:
    """DepthModel holding exactly `native_state_dict` (checked: every key, every shape, finite)."""
    check_tensors(config, native_state_dict)
    with torch.device("meta"):
        model = DepthModel(config)
    model.load_state_dict(native_state_dict, assign=True)
    return model


def load_model(path, device="cpu", dtype=torch.float32, accelerate: bool = True) -> DepthModel:
    """Load any supported SwinV2-DPT checkpoint; returns the model in eval mode on device/dtype.

    device: "cpu", "cuda", "cuda:N" or "auto" (CUDA when available); raises DeviceError if absent.
    The model gets the speed paths (accelerate_for_inference: on the CPU in float32 all of them,
    elsewhere the fused attention) unless `accelerate=False` (the plain model: to train it).
    `model.config` describes it and `model.checkpoint_format` says what kind of file it was.
    Raises CheckpointError with a one-line reason for a missing, damaged or foreign file.
    """
    if isinstance(dtype, str):
        dtype = DTYPES.get(dtype, dtype)
    if dtype not in DTYPES.values():
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    device = select_device(str(device))  # DeviceError for an unknown or missing device, before reading
    checkpoint = read_checkpoint(path)
    try:
        model = build_model(checkpoint.config, checkpoint.state_dict)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    model.checkpoint_format = checkpoint.format
    model = model.to(device=device).set_dtype(dtype).eval()
    if accelerate:
        model = accelerate_for_inference(model)
    return model
