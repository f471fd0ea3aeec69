"""Choosing where and in which precision to run, and on how many CPU threads."""

import contextlib
import os
import platform

import torch

from .errors import UserError

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class DeviceError(UserError):
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


def cpu_threads(workers: int = 1) -> int:
    """PyTorch threads for each of `workers` processes that share this process's CPUs (its
    affinity: what taskset, cgroups and Ray's node leave it), at least 1.

    Why not more: each PyTorch operator on the CPU is a parallel region whose threads all wait for
    the slowest; with more threads than CPUs across the processes a thread taken off its core
    stalls every region of its process (docs/performance.md, "When the CPU is shared")."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this OS
        cpus = os.cpu_count() or 1
    return max(1, cpus // max(1, workers))


@contextlib.contextmanager
def torch_threads_beside(busy_threads: int):
    """PyTorch's CPU threads for the duration: this process's CPUs (`cpu_threads`) less the
    `busy_threads` that run beside the model, at least 1; then back as they were.

    Why: every PyTorch operator on the CPU is a parallel region that waits for its slowest thread;
    a thread beside it (the video job's stabiliser and encoder) takes one of its threads off its
    core in every region (measured: 20 frames of 320x240 on 2 cores, 25-41 s with 2 PyTorch
    threads beside the writer, docs/video.md "Speed")."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cpu_threads() - busy_threads))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def cpu_has_native_bfloat16() -> bool | None:
    """Whether this CPU has bfloat16 arithmetic instructions (x86 AVX512-BF16 or AMX-BF16, Arm
    BF16); None where that cannot be told (no /proc/cpuinfo). Without them PyTorch emulates
    bfloat16, several times slower than float32."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip().lower() in ("flags", "features"):
                    flags = set(value.split())
                    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    except OSError:
        pass
    return None


def dtype_warning(dtype: torch.dtype, device: torch.device, option: str = "--dtype") -> str | None:
    """A line to show before a run in a precision that will be slow on this device, or None;
    `option` is the command's option that chose it."""
    if dtype == torch.bfloat16 and device.type == "cpu" and cpu_has_native_bfloat16() is False:
        return (f"this CPU ({platform.machine() or 'unknown'}) has no bfloat16 instructions: PyTorch emulates "
                f"them, several times slower than float32; use {option} float32")
    return None


def select_dtype(name: str, device: torch.device) -> torch.dtype:
    """float16 only on CUDA (CPUs have no fast float16); bfloat16 where the device supports it."""
    dtype = DTYPES[name]
    if dtype == torch.float16 and device.type != "cuda":
        alternative = " or bfloat16 (this CPU has bfloat16 instructions)" if cpu_has_native_bfloat16() else ""
        raise DeviceError(f"float16 needs a CUDA GPU; on the CPU use float32{alternative}")
    if dtype == torch.bfloat16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError("this GPU does not support bfloat16; use float16 or float32")
    return dtype


def training_autocast_dtype(name: str, device: torch.device) -> torch.dtype:
    """The mixed precision of training passes ("auto", "float32", "bfloat16" or "float16").

    auto: bfloat16 where the device has it natively (GPUs that support it; CPUs with bfloat16
    instructions, 1.8x faster steps than float32 on this project's AVX512-BF16 machine), else
    float32: not float16, in which the SwinV2 encoder overflows (as MiDaS warns; inference keeps it
    in float32 for that reason). float16 is there to be asked for, on CUDA only. Weights, optimizer
    state and the loss stay float32 in every case. A slow choice (emulated bfloat16) is the caller's
    to warn about (dtype_warning).
    """
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if cpu_has_native_bfloat16() else torch.float32
    if name not in DTYPES:
        raise DeviceError(f"unknown precision {name!r} (use auto, float32, bfloat16 or float16)")
    return select_dtype(name, device)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["DTYPES", "DeviceError", "dtype_warning", "select_device", "select_dtype",
           "torch_threads_beside", "training_autocast_dtype"]
