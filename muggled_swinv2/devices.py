"""Choosing where and in which precision to run."""

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class DeviceError(Exception):
    """A device or precision this machine cannot run (one-line message)."""


def select_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r} (use auto, cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r}: no CUDA GPU is available to PyTorch on this machine (use cpu)")
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"unsupported device {name!r} (use auto, cpu or cuda)")
    return device


def select_dtype(name: str, device: torch.device) -> torch.dtype:
    """float16 only on CUDA (CPUs have no fast float16); bfloat16 where the device supports it."""
    dtype = DTYPES[name]
    if dtype == torch.float16 and device.type != "cuda":
        raise DeviceError("float16 needs a CUDA GPU; on the CPU use bfloat16 or float32")
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError("this GPU does not support bfloat16; use float16 or float32")
    return dtype
