"""The accelerated modules: subclasses of the plain ones (model/), the same parameters, other sums.

Each computes its fast way only in float32 CPU inference (no autograd, no autocast, no graph
capture, its `fast` switch on); anywhere else it is its plain class. Tables derived from weights
(position biases, Winograd filters) are computed once and kept in a TableCache.

One model may run in several Python threads at once (a web server, a thread pool): the tables are
shared (made from the same weights, the same for every caller) and a table read is never torn; the
reused buffers are each thread's own (a ContextVar), never shared between calls that run at once.
"""

from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from ..model.dpt_decoder import DepthHead, FusionBlock, ResidualConvUnit, upsample_bilinear
from ..model.swinv2_encoder import MLP, SwinV2Block, SwinV2Stage, WindowAttention, cosine_operands
from ..model.windows import WindowLayout
from . import onednn, winograd


def runs_fused(module: nn.Module) -> bool:
    """Whether an accelerated attention takes the fused kernel: in inference on any device and in any
    precision (a GPU needs it most: the plain sums hold every window's N x N attention matrix),
    outside graph capture (torch.compile, torch.export, torch.jit.trace)."""
    return (
        module.fast
        and not torch.is_grad_enabled()
        and not torch.compiler.is_compiling()
        and not torch.compiler.is_exporting()
        and not torch.jit.is_tracing()  # a trace records the plain graph, as an export does
    )


def runs_fast(module: nn.Module, tensor: torch.Tensor) -> bool:
    """Whether `module` (an accelerated one) takes its fast path on `tensor`: inference as in
    runs_fused, and float32 on the CPU outside autocast."""
    return (
        runs_fused(module)
        and tensor.device.type == "cpu"
        and tensor.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


def own_parameters(module: nn.Module) -> None:
    """Replace the module's inference tensors (parameters made under torch.inference_mode) by
    normal copies, which have a version counter: tables made from them can then be kept."""
    for name, parameter in list(module._parameters.items()):
        if parameter is not None and parameter.is_inference():
            with torch.inference_mode(False), torch.no_grad():
                module._parameters[name] = nn.Parameter(parameter.clone(), parameter.requires_grad)


class TableCache:
    """Tables computed from some source tensors (weights), one per key (a window size, ...).

    All are dropped when a source is replaced by another tensor or modified in place (its
    version counter moves). Moves and casts (Module._apply) and train()/eval() drop them too
    (KeepsTables): those can swap a parameter's data without a trace, as can edits through
    `.data` or fused optimizer steps, which the version counter does not see. Sources made under
    torch.inference_mode have no version counter: their tables are made again on every call.

    Safe across threads: the sources, their versions and the tables made from them are one
    snapshot, read once per call and replaced whole (two threads may both make a missing table;
    either copy is right).
    """

    def __init__(self):
        self.snapshot: tuple[tuple, tuple, dict] = ((), (), {})  # sources, their versions, tables

    def get(self, sources: list[torch.Tensor], key, make) -> torch.Tensor:
        if any(source.is_inference() for source in sources):
            return make()
        versions = tuple(source._version for source in sources)
        kept_sources, kept_versions, tables = self.snapshot
        same = len(sources) == len(kept_sources) and all(a is b for a, b in zip(sources, kept_sources))
        if not same or versions != kept_versions:
            tables = {}
            self.snapshot = (tuple(sources), versions, tables)
        table = tables.get(key)
        if table is None:
            table = tables[key] = make()
        return table


class KeepsTables(nn.Module):
    """Mixin of the modules holding a TableCache: forgotten on .to()/.half()/... and train()/eval()."""

    def _apply(self, fn, recurse: bool = True):
        self.tables = TableCache()
        module = super()._apply(fn, recurse)
        for part in self.modules():  # a cast under inference_mode makes inference tensors: the module's own
            own_parameters(part)
        return module

    def train(self, mode: bool = True):
        self.tables = TableCache()
        return super().train(mode)


_stage_buffers: ContextVar[dict | None] = ContextVar("stage_buffers", default=None)  # set by FastSwinV2Stage


def reused_buffer(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor | None:
    """An uninitialised tensor for an out= argument from the running stage's buffers (made on first
    use; this thread's own), or None (a fresh output) outside a FastSwinV2Stage."""
    buffers = _stage_buffers.get()
    if buffers is None:
        return None
    key = (tuple(shape), like.dtype, like.device)
    if key not in buffers:
        buffers[key] = torch.empty(key[0], dtype=like.dtype, device=like.device)
    return buffers[key]


# ----------------------------------------------------------------------------- encoder


class OneDNNLinear(nn.Linear):
    """nn.Linear computed by oneDNN (accelerate/onednn.py)."""

    speed_path = "linear"

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if runs_fast(self, tokens):
            return onednn.linear(tokens, self.weight, self.bias)
        return super().forward(tokens)


class FastWindowAttention(KeepsTables, WindowAttention):
    """Position bias per window size computed once; masks added into a buffer shared by the blocks
    of a stage (reused_buffer, set up by FastSwinV2Stage); PyTorch's fused attention kernel. Unlike
    the other paths this one also runs on a GPU and in half precision (runs_fused)."""

    speed_path = "attention"

    def forward(self, windows_bnlc: torch.Tensor, layout: WindowLayout, mask: torch.Tensor | None) -> torch.Tensor:
        if not runs_fused(self):
            return super().forward(windows_bnlc, layout, mask)
        linear = onednn.linear if runs_fast(self.qkv, windows_bnlc) else F.linear  # the "linear" path's switch
        q, k, v = self.split_heads(linear(windows_bnlc, self.qkv.weight, self.qkv_bias()))
        bias = self.tables.get(
            list(self.cpb_mlp.parameters()), layout.window_hw, lambda: self.position_bias(layout.window_hw).contiguous()
        )
        if mask is not None:
            buffer = reused_buffer((mask.shape[0], *bias.shape), bias)
            bias = torch.add(bias, mask[:, None], out=buffer)
        attended = fused_cosine_attention(q, k, v, self.logit_scale, bias)
        return self.proj(attended.transpose(2, 3).flatten(3))


def fused_cosine_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, logit_scale: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """model.swinv2_encoder.cosine_window_attention in PyTorch's fused attention kernel, which
    needs 4-D inputs and a 4-D bias (else it falls back to a slow path)."""
    batch, windows, heads, tokens, head_dim = q.shape
    q_scaled, k_unit = cosine_operands(q, k, logit_scale)
    if bias.ndim == 3:  # one bias for all windows: windows join the batch
        shape, bias_4d = (batch * windows, heads, tokens, head_dim), bias[None]
    else:  # a bias per window: windows join the heads
        shape, bias_4d = (batch, windows * heads, tokens, head_dim), bias.reshape(1, windows * heads, tokens, tokens)
    q_scaled, k_unit, v_4d = (tensor.reshape(shape) for tensor in (q_scaled, k_unit, v))
    attended = F.scaled_dot_product_attention(q_scaled, k_unit, v_4d, attn_mask=bias_4d, scale=1.0)
    return attended.view(batch, windows, heads, tokens, head_dim)


class FastMLP(MLP):
    """GELU in place: the (tokens, hidden) activations are the largest tensor of a block."""

    speed_path = "in_place"

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not runs_fast(self, tokens):
            return super().forward(tokens)
        return self.fc2(torch.ops.aten.gelu_(self.fc1(tokens)))


class FastSwinV2Block(SwinV2Block):
    """Residuals added in place."""

    speed_path = "in_place"

    def forward(self, tokens_bhwc: torch.Tensor, layout: WindowLayout, mask: torch.Tensor | None) -> torch.Tensor:
        if not runs_fast(self, tokens_bhwc):
            return super().forward(tokens_bhwc, layout, mask)
        tokens_bhwc = self.norm1(self.attend_in_windows(tokens_bhwc, layout, mask)).add_(tokens_bhwc)
        return self.norm2(self.mlp(tokens_bhwc)).add_(tokens_bhwc)


class FastSwinV2Stage(SwinV2Stage):
    """The blocks' attention write their (windows, heads, N, N) bias-plus-mask into the same
    buffers: tens of MB at 384 px, and memory freed and allocated again per block costs page
    faults, a good part of the run time. The buffers belong to this call (and thread): two calls
    at once never write into each other's."""

    speed_path = "attention"

    def forward(self, tokens_bhwc: torch.Tensor) -> torch.Tensor:
        if not runs_fast(self, tokens_bhwc):
            return super().forward(tokens_bhwc)
        token = _stage_buffers.set({})
        try:
            return super().forward(tokens_bhwc)
        finally:
            _stage_buffers.reset(token)


# ----------------------------------------------------------------------------- decoder


class WinogradConv3x3(KeepsTables, nn.Conv2d):
    """3x3 convolution (stride 1, padding 1) as Winograd F(4x4, 3x3) (accelerate/winograd.py) on
    grids of at least winograd.MIN_GRID pixels with sides that are multiples of 4 (on smaller grids
    the transforms cost more than they save); the transformed weight is computed once."""

    speed_path = "winograd"

    def uses_winograd(self, image_bchw: torch.Tensor) -> bool:
        height, width = image_bchw.shape[-2:]
        return (
            runs_fast(self, image_bchw)
            and height % winograd.TILE == 0
            and width % winograd.TILE == 0
            and height * width >= winograd.MIN_GRID
        )

    def forward(self, image_bchw: torch.Tensor) -> torch.Tensor:
        if not self.uses_winograd(image_bchw):
            return super().forward(image_bchw)
        weight_tio = self.tables.get([self.weight], "weight", lambda: winograd.transform_weight(self.weight.detach()))
        image_bhwc = image_bchw.permute(0, 2, 3, 1)
        return winograd.winograd_conv3x3(image_bhwc, weight_tio, self.bias).permute(0, 3, 1, 2)


class FastResidualConvUnit(ResidualConvUnit):
    """ReLU and the residual in place."""

    speed_path = "in_place"

    def forward(self, image_bchw: torch.Tensor) -> torch.Tensor:
        if not runs_fast(self, image_bchw):
            return super().forward(image_bchw)
        hidden = F.relu(self.conv1(F.relu(image_bchw)), inplace=True)
        return self.conv2(hidden).add_(image_bchw)


class FastFusionBlock(FusionBlock):
    """The skip unit's output takes the running result in place."""

    speed_path = "in_place"

    def forward(
        self, coarse_bchw: torch.Tensor, skip_bchw: torch.Tensor | None, out_size_hw: tuple[int, int]
    ) -> torch.Tensor:
        if not runs_fast(self, coarse_bchw) or self.skip_unit is None:
            return super().forward(coarse_bchw, skip_bchw, out_size_hw)
        coarse_bchw = self.skip_unit(skip_bchw).add_(coarse_bchw)
        return upsample_bilinear(self.out_conv(self.unit(coarse_bchw)), out_size_hw)


BAND_VALUES = 2**20  # floats of conv1's upsampled output made at once by BandedDepthHead (4 MiB)


class BandedDepthHead(DepthHead):
    """One image at a time, conv1's upsampled output made BAND_VALUES at a time (clamped output only:
    the unclamped one is for training).

    That (1, 128, H, W) map is the largest activation of the model; made whole, it is fresh
    memory on every call (32 MiB at 256x256), and the page faults of touching it took longer
    than the upsampling itself (measured: 17 ms against 2.5 ms into memory already touched).
    Nothing in the head mixes images or distant rows.
    """

    speed_path = "head"

    def forward(self, features_bchw: torch.Tensor, clamp_negative: bool = True) -> torch.Tensor:
        if not runs_fast(self, features_bchw) or not clamp_negative:
            return super().forward(features_bchw, clamp_negative)
        return torch.cat([self.depth_in_bands(image_1chw) for image_1chw in features_bchw.split(1)])

    def depth_in_bands(self, features_1chw: torch.Tensor) -> torch.Tensor:
        """(1, C, h, w) -> (1, 2h, 2w) depth, band by band of output rows.

        Per band: the input rows it needs are upsampled along the width (F.interpolate, rows kept
        as they are), then along the height by one matrix product with the rows of
        `rows_from_source` (F.interpolate's weights, align_corners: source row = y * (h - 1) / (H - 1)
        in float32), which also gives the band a row of halo on each side (zeros at the image's
        edges: conv2's padding), then conv2 and conv3.
        """
        hidden_1chw = self.conv1(features_1chw)
        channels, height, width = hidden_1chw.shape[1:]
        out_h, out_w = 2 * height, 2 * width
        top, bottom, rows_from_source = height_upsampling(height, out_h)
        band_rows = max(1, BAND_VALUES // (out_w * channels))
        band_1hwc = hidden_1chw.new_empty(1, band_rows + 2, out_w, channels)
        depth_1hw = hidden_1chw.new_empty(1, out_h, out_w)
        for first in range(0, out_h, band_rows):
            last = min(first + band_rows, out_h)
            source_low, source_high = top[max(first - 1, 0)], bottom[min(last, out_h - 1)] + 1  # the band's and halo's
            widened = upsample_bilinear(hidden_1chw[:, :, source_low:source_high], (source_high - source_low, out_w))
            widened_rc = widened[0].permute(1, 2, 0).reshape(source_high - source_low, out_w * channels)
            band_rc = band_1hwc[0, : last - first + 2].view(last - first + 2, out_w * channels)
            torch.mm(rows_from_source[first : last + 2, source_low:source_high], widened_rc, out=band_rc)
            band_1chw = band_1hwc[:, : last - first + 2].permute(0, 3, 1, 2)
            hidden = F.relu_(F.conv2d(band_1chw, self.conv2.weight, self.conv2.bias, padding=(0, 1)))
            depth_1hw[:, first:last] = F.relu_(self.conv3(hidden))[:, 0]
        return depth_1hw


def height_upsampling(height: int, out_h: int) -> tuple[list[int], list[int], torch.Tensor]:
    """F.interpolate's bilinear upsampling (align_corners) of `height` rows to `out_h` along the height:
    each output row's two source rows (top, bottom), and the (out_h + 2, height) matrix that makes the
    output rows from the source rows, with a zero row above and below (conv2's padding)."""
    scale = torch.tensor(height - 1, dtype=torch.float32) / (out_h - 1)  # out_h = 2 * height >= 2
    source = torch.arange(out_h, dtype=torch.float32) * scale
    top = source.long().clamp(max=height - 1)  # truncation: the source is never negative
    bottom = (top + 1).clamp(max=height - 1)
    weight_bottom = source - top
    rows = torch.arange(1, out_h + 1)
    rows_from_source = torch.zeros(out_h + 2, height)
    rows_from_source.index_put_((rows, top), 1 - weight_bottom, accumulate=True)
    rows_from_source.index_put_((rows, bottom), weight_bottom, accumulate=True)
    return top.tolist(), bottom.tolist(), rows_from_source
