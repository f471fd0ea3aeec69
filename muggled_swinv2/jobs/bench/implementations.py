"""The implementations a bench run compares, on the same seeded random weights in the MiDaS layout
(`reference.random_midas_state_dict`): ours (accelerated, as load_model gives it), the peer
(transformers' DPTForDepthEstimation, built by `reference.transformers_reference`), our exported
graph in ONNX Runtime, and ours with its Winograd convolutions off (--plain). Each is a forward:
image (B, 3, H, W) in [-1, 1] -> inverse depth (B, H, W)."""

import os

import torch

from ...accelerate import accelerate_for_inference, speed_paths_off
from ...model import SwinV2DPT, SwinV2DPTConfig
from ...reference import native_model, random_midas_state_dict, transformers_reference
from .plan import PEER_MISSING, BenchError, Case


def random_weights(config: SwinV2DPTConfig, seed: int) -> dict[str, torch.Tensor]:
    """The run's weights: a MiDaS-layout state dict, as a released checkpoint file holds it."""
    return random_midas_state_dict(config, seed)


def build_ours(midas_sd: dict) -> SwinV2DPT:
    """Our model loaded from the weights as a checkpoint file is, then accelerated as load_model does."""
    return accelerate_for_inference(native_model(midas_sd))


def build_peer(config: SwinV2DPTConfig, size_hw: tuple[int, int], midas_sd: dict):
    """transformers' DPTForDepthEstimation for one input size (it fixes its windows at build time)."""
    try:
        return transformers_reference(config, size_hw, midas_sd)
    except ImportError:
        raise BenchError(PEER_MISSING) from None


def prepare(model, device: torch.device, dtype: torch.dtype, compiled: bool, is_ours: bool):
    """The model on the device in the dtype, as a forward (compiled with --compile)."""
    model = model.to(device)
    if is_ours:
        model.set_dtype(dtype)
    else:
        model.to(dtype)
    forward = (lambda x: model(x)) if is_ours else (lambda x: model(pixel_values=x).predicted_depth)
    # Static shapes: each stage's window attention runs at its own shape, and with dynamic shapes
    # torch 2.11's inductor generated code naming an undefined size on CUDA (NameError: s52).
    return torch.compile(forward, dynamic=False) if compiled else forward


def onnxruntime_forward(path, threads: int):
    """A forward (torch tensor in and out) that runs an exported file in an ONNX Runtime CPU session."""
    from ...export.onnx import session

    runner = session(path, threads)
    return lambda image: torch.from_numpy(runner.run(["inverse_depth"], {"image": image.numpy()})[0])


def export_for_peer(model: SwinV2DPT, size_hw, folder) -> str:
    """Our model as an ONNX file (dynamic batch) in `folder`, for the onnxruntime peer."""
    from ...export.onnx import export_onnx

    path = os.path.join(folder, f"bench-{size_hw[0]}x{size_hw[1]}.onnx")
    export_onnx(model, path, size_hw=size_hw, batch="dynamic", overwrite=True)
    return path


def run_direct(model: SwinV2DPT, forward, image: torch.Tensor) -> torch.Tensor:
    """Our forward with every 3x3 convolution computed the plain way."""
    with speed_paths_off(model, "winograd"):
        return forward(image)


def make_input(case: Case, device, dtype) -> torch.Tensor:
    """The case's input batch: seeded uniform noise in [-1, 1], the same for every implementation."""
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(case.batch, 3, *case.size_hw, generator=generator) * 2 - 1
    return image.to(device, dtype)
