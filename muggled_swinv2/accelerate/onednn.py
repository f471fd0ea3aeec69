"""The encoder's linear layers on a CPU through oneDNN, the library behind PyTorch's CPU convolutions,
instead of the BLAS (MKL) that F.linear calls in float32.

Why: on the 2-core AMD EPYC (Zen 5) CI machine, MKL's sgemm ran the encoder's matrix products at
about 210 GFLOP/s, oneDNN's at 400-480 (`python benchmarks/profile_engines.py`, and
docs/performance.md, "Where the time goes on a CPU"): the encoder's Linear layers were the
largest part of the gap to ONNX Runtime, whose own GEMM (MLAS) runs at oneDNN's rate. The sums
are the same, in another order: results differ from F.linear by float rounding (about 1e-6 of the output range).

Used by the accelerated model's linear layers (accelerate/layers.py) in float32 inference on x86-64
CPUs (where it was measured); elsewhere they compute as nn.Linear.
"""

import platform

import torch
import torch.nn.functional as F

_X86 = platform.machine().lower() in ("x86_64", "amd64")


def _has_onednn_linear() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


_ONEDNN_LINEAR = _X86 and _has_onednn_linear()


def uses_onednn(tokens: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `linear` computes through oneDNN: float32 CPU tensors, outside autograd and graph capture."""
    return (
        _ONEDNN_LINEAR
        and torch.backends.mkldnn.enabled
        and tokens.device.type == "cpu"
        and tokens.dtype == torch.float32
        and weight.dtype == torch.float32
        and tokens.numel() > 0
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
    )


def linear(tokens: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear: (..., C_in) tokens, (C_out, C_in) weight -> (..., C_out); oneDNN where it applies."""
    if uses_onednn(tokens, weight):
        return torch.ops.mkldnn._linear_pointwise(tokens, weight, bias, "none", [], "")
    return F.linear(tokens, weight, bias)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["linear"]
