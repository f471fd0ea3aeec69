"""The CPU speed paths, as one explicit transformation of a plain model (model/).

    model = accelerate_for_inference(SwinV2DPT(config))   # what load_model does on the CPU

Every module with a faster CPU computation becomes its accelerated subclass (layers.py): the same
parameters and state-dict keys, other sums, equal to the plain model's to float rounding (1e-6 of
the output range):
- the encoder's linear layers through oneDNN instead of MKL's sgemm (onednn.py);
- the decoder's 3x3 convolutions with 256 or more outputs as Winograd F(4x4, 3x3) (winograd.py);
- the depth head in bands of rows, one image at a time;
- each block's position-bias table computed once per window size, the shift masks added into
  buffers shared by the blocks of a stage, and PyTorch's fused attention kernel;
- residuals, ReLU and GELU in place; the decoder's conv weights channels-last (contiguous in the
  state dict, which is the plain model's).

Where the fast paths apply: float32 on the CPU, outside autograd, autocast and graph capture
(torch.compile, export, jit.trace);
the fused attention (with its kept bias tables) also on a GPU and in half precision, in inference.
Anywhere else (torch.autograd on: training, `backward`, ONNX export; and for the other paths a GPU,
half precision, `.half()` or `.to(...)` afterwards) each module computes as its plain class: the
right numbers, without the speed. `speed_paths_off` turns paths off by name, to measure what each buys.

Tables derived from weights are recomputed when a weight is replaced or modified in place (its
version counter), after .to()/.half()/..., and on train()/eval(). Parameters made under
torch.inference_mode have no version counter: the transformation (and a later cast) replaces them by
normal copies, and tables of such tensors assigned later are made again on every call. Only writes
through `.data` and fused optimizer steps go unseen: call model.eval() after them.
"""

from contextlib import contextmanager
from collections.abc import Iterator

import torch
from torch import nn

from ..model.dpt_decoder import DepthHead, DPTDecoder, FusionBlock, ResidualConvUnit
from ..model.swinv2_encoder import MLP, SwinV2Block, SwinV2Stage, WindowAttention
from . import winograd
from .layers import (
    BandedDepthHead,
    FastFusionBlock,
    FastMLP,
    FastResidualConvUnit,
    FastSwinV2Block,
    FastSwinV2Stage,
    FastWindowAttention,
    KeepsTables,
    OneDNNLinear,
    TableCache,
    WinogradConv3x3,
    own_parameters,
)

ACCELERATED = {
    nn.Linear: OneDNNLinear,
    WindowAttention: FastWindowAttention,
    MLP: FastMLP,
    SwinV2Block: FastSwinV2Block,
    SwinV2Stage: FastSwinV2Stage,
    ResidualConvUnit: FastResidualConvUnit,
    FusionBlock: FastFusionBlock,
    DepthHead: BandedDepthHead,
}
SPEED_PATHS = ("linear", "winograd", "attention", "head", "in_place")


def accelerated_class(module: nn.Module) -> type | None:
    """The accelerated subclass `module` becomes, or None."""
    if type(module) is nn.Conv2d:
        is_3x3 = module.kernel_size == (3, 3) and module.padding == (1, 1)
        plain_3x3 = module.stride == (1, 1) and module.dilation == (1, 1) and module.groups == 1
        pays = module.out_channels >= winograd.MIN_OUT_CHANNELS
        return WinogradConv3x3 if is_3x3 and plain_3x3 and pays and module.padding_mode == "zeros" else None
    return ACCELERATED.get(type(module))


def accelerate_for_inference(model: nn.Module) -> nn.Module:
    """Give `model` (a SwinV2DPT, or any module built of model/'s) the CPU speed paths (see the
    module doc), in place; returns it.

    Parameters made under torch.inference_mode are replaced by normal copies (see the module doc).
    Calling it again changes nothing.
    """
    with torch.inference_mode(False), torch.no_grad():
        for module in model.modules():
            own_parameters(module)
            fast_class = accelerated_class(module)
            if fast_class is None:
                continue
            module.__class__ = fast_class
            module.fast = True
            if isinstance(module, KeepsTables):
                module.tables = TableCache()
        decoder_convs = [conv for decoder in model.modules() if isinstance(decoder, DPTDecoder)
                         for conv in decoder.modules() if isinstance(conv, nn.Conv2d)]
        for conv in decoder_convs:  # the decoder's images are channels-last: else every call re-lays the weight out
            conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
            if contiguous_in_state_dict not in conv._state_dict_hooks.values():
                conv.register_state_dict_post_hook(contiguous_in_state_dict)
    return model


def contiguous_in_state_dict(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """State-dict hook of the convolutions whose weights are kept channels-last: the state dict holds
    them contiguous, as the plain model's (safetensors saves contiguous tensors only). With
    keep_vars=True it holds the parameters themselves, as PyTorch's own does."""
    for name in module._parameters:
        tensor = state_dict.get(prefix + name)
        if tensor is not None and not isinstance(tensor, nn.Parameter) and not tensor.is_contiguous():
            state_dict[prefix + name] = tensor.contiguous()


def is_accelerated(model: nn.Module) -> bool:
    """Whether accelerate_for_inference has been applied to `model`."""
    return any(hasattr(module, "speed_path") for module in model.modules())


@contextmanager
def speed_paths_off(model: nn.Module, *paths: str) -> Iterator[None]:
    """Inside this block the named speed paths of `model` (SPEED_PATHS; all when none is named)
    compute the plain way; as before after it. With all off the model computes as the plain one."""
    unknown = set(paths) - set(SPEED_PATHS)
    if unknown:
        raise ValueError(f"unknown speed paths {sorted(unknown)}; choose from {', '.join(SPEED_PATHS)}")
    modules = [module for module in model.modules() if getattr(module, "speed_path", None) in (paths or SPEED_PATHS)]
    switches = [module.fast for module in modules]
    for module in modules:
        module.fast = False
    try:
        yield
    finally:
        for module, switch in zip(modules, switches):
            module.fast = switch


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["SPEED_PATHS", "accelerate_for_inference", "speed_paths_off"]
