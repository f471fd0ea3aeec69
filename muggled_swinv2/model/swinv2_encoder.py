"""SwinV2 encoder: patch embed -> 4 stages of (shifted-)window blocks, patch merging between them.

Tokens stay on their grid as (B, H, W, C) throughout; the depth model reads the output of the last
block of every stage (before the patch merging that follows it).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import SwinV2DPTConfig
from .onednn import Linear, linear
from .patch_embed import PatchEmbed
from .windows import (
    WindowLayout,
    attention_mask,
    merge_windows,
    partition_windows,
    relative_coords_table,
    relative_position_index,
    window_layout,
)

MAX_LOGIT_SCALE = math.log(100.0)


def cosine_window_attention(q, k, v, logit_scale, bias):
    """SwinV2's scaled cosine attention, per window and head.

    q, k, v: (B, windows, heads, N, head_dim); logit_scale: (heads, 1, 1), a learned log
    temperature; bias: (heads, N, N) or (windows, heads, N, N), position bias plus masks.
    Returns like v:  softmax(cos(q_i, k_j) * exp(min(logit_scale, ln 100)) + bias_ij) @ v
    The temperature is folded into the unit-length queries, and the rest runs in PyTorch's fused
    attention kernel, which needs 4-D inputs and a 4-D bias (else it falls back to a slow path).
    """
    batch, windows, heads, tokens, head_dim = q.shape
    temperature = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
    q_scaled = F.normalize(q, dim=-1) * temperature  # unit length first: stays <= 100 in float16
    k_unit = F.normalize(k, dim=-1)
    if bias.ndim == 3:  # one bias for all windows: windows join the batch
        shape, bias_4d = (batch * windows, heads, tokens, head_dim), bias[None]
    else:  # a bias per window: windows join the heads
        shape, bias_4d = (batch, windows * heads, tokens, head_dim), bias.reshape(1, windows * heads, tokens, tokens)
    q_scaled, k_unit, v_4d = (tensor.reshape(shape) for tensor in (q_scaled, k_unit, v))
    if torch.compiler.is_exporting():  # a graph for other runtimes: the same sums as plain operators
        attended = torch.softmax(q_scaled @ k_unit.transpose(-2, -1) + bias_4d, dim=-1) @ v_4d
    else:
        attended = F.scaled_dot_product_attention(q_scaled, k_unit, v_4d, attn_mask=bias_4d, scale=1.0)
    return attended.view(batch, windows, heads, tokens, head_dim)


def reused_buffer(buffers: dict | None, shape, like: torch.Tensor) -> torch.Tensor | None:
    """An uninitialised tensor from `buffers` (made on first use) for an out= argument, or None
    (a fresh output) where there is no buffer dict or autograd is recording (out= has no gradient)."""
    if buffers is None or torch.is_grad_enabled():
        return None
    key = (tuple(shape), like.dtype, like.device)
    if key not in buffers:
        buffers[key] = torch.empty(key[0], dtype=like.dtype, device=like.device)
    return buffers[key]


class WindowAttention(nn.Module):
    """Multi-head cosine attention inside windows, with the continuous position bias (CPB)."""

    def __init__(self, dim: int, num_heads: int, pretrained_window: int):
        super().__init__()
        self.num_heads = num_heads
        self.pretrained_window = pretrained_window
        self.logit_scale = nn.Parameter(torch.zeros(num_heads, 1, 1))
        self.qkv = Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))  # keys have no bias in SwinV2
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(), nn.Linear(512, num_heads, bias=False))
        self.proj = Linear(dim, dim)
        self._bias_cache_key, self._bias_cache = None, None

    def position_bias(self, window_hw: tuple[int, int], buffers: dict | None = None) -> torch.Tensor:
        """(heads, N, N) bias 16 * sigmoid(CPB(offset from query i to key j))."""
        table = self.bias_per_offset(window_hw)
        index = relative_position_index(window_hw).to(table.device)
        out = reused_buffer(buffers, (table.shape[0], index.numel()), table)
        return torch.index_select(table, 1, index.flatten(), out=out).view(-1, *index.shape)

    def train(self, mode: bool = True):
        """model.train() / model.eval() also forget the cached bias table: weights can change in
        ways its key cannot see (fused optimizer steps, edits through .data)."""
        self._bias_cache_key, self._bias_cache = None, None
        return super().train(mode)

    def bias_per_offset(self, window_hw: tuple[int, int]) -> torch.Tensor:
        """(heads, offsets) table; in inference it is kept until the weights are replaced, moved,
        cast or modified in place, the autocast setting changes, or train()/eval() is called."""
        weight = self.cpb_mlp[0].weight
        if torch.is_grad_enabled():  # autograd (and graph export, which traces this path) needs it computed
            return self.compute_bias_per_offset(window_hw)
        versions = ((p.data_ptr(), p._version) for p in self.cpb_mlp.parameters())
        device_type = weight.device.type
        autocast = torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type)
        key = (window_hw, weight.device, weight.dtype, autocast, *versions)
        if self._bias_cache_key != key:
            self._bias_cache_key, self._bias_cache = key, self.compute_bias_per_offset(window_hw)
        return self._bias_cache

    def compute_bias_per_offset(self, window_hw: tuple[int, int]) -> torch.Tensor:
        weight = self.cpb_mlp[0].weight
        coords = relative_coords_table(window_hw, self.pretrained_window).to(weight.device, weight.dtype)
        return (16 * torch.sigmoid(self.cpb_mlp(coords))).T.contiguous()

    def forward(self, windows_bnlc, layout: WindowLayout, mask: torch.Tensor | None, buffers: dict | None = None):
        """(B, windows, N, C) -> same shape; `mask` is (windows, N, N) or None.

        `buffers`: where the (heads, N, N) bias is written, shared by the blocks of a stage (see
        SwinV2Stage.forward); None for a fresh tensor.
        """
        batch, num_windows, tokens, channels = windows_bnlc.shape
        qkv_bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = linear(windows_bnlc, self.qkv.weight, qkv_bias)
        qkv = qkv.view(batch, num_windows, tokens, 3, self.num_heads, channels // self.num_heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)  # each (B, windows, heads, N, head_dim)

        bias = self.position_bias(layout.window_hw, buffers)
        if mask is not None:
            mask = mask[:, None].to(bias.dtype)
            bias = torch.add(bias, mask, out=reused_buffer(buffers, (mask.shape[0], *bias.shape), bias))
        attended = cosine_window_attention(q, k, v, self.logit_scale, bias)
        attended = attended.transpose(2, 3).reshape(batch, num_windows, tokens, channels)
        return self.proj(attended)


class MLP(nn.Module):
    """Linear(C, hidden), exact GELU, Linear(hidden, C) on (..., C) tokens."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = Linear(dim, hidden_dim)
        self.fc2 = Linear(hidden_dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.fc1(tokens)
        if torch.is_grad_enabled():
            hidden = F.gelu(hidden)
        else:  # in place: the (tokens, 4C) hidden activations are the largest tensor of a block
            torch.ops.aten.gelu_(hidden)
        return self.fc2(hidden)


class SwinV2Block(nn.Module):
    """Post-norm transformer block on windows: x + norm1(attn(x)), then x + norm2(mlp(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden_dim: int, pretrained_window: int):
        super().__init__()
        self.attn = WindowAttention(dim, num_heads, pretrained_window)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_hidden_dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, tokens_bhwc, layout: WindowLayout, mask: torch.Tensor | None, buffers: dict | None = None):
        tokens_bhwc = self.norm1(self.attend_in_windows(tokens_bhwc, layout, mask, buffers)).add_(tokens_bhwc)
        return self.norm2(self.mlp(tokens_bhwc)).add_(tokens_bhwc)

    def attend_in_windows(self, tokens_bhwc, layout: WindowLayout, mask, buffers: dict | None = None) -> torch.Tensor:
        """Pad, roll, cut into windows, attend, and undo all three."""
        (height, width), (padded_h, padded_w) = layout.grid_hw, layout.padded_hw
        shift_h, shift_w = layout.shift_hw
        grid = tokens_bhwc
        if layout.is_padded:
            grid = F.pad(grid, (0, 0, 0, padded_w - width, 0, padded_h - height))
        if shift_h or shift_w:
            grid = torch.roll(grid, shifts=(-shift_h, -shift_w), dims=(1, 2))
        windows = self.attn(partition_windows(grid, layout.window_hw), layout, mask, buffers)
        grid = merge_windows(windows, layout.window_hw, layout.padded_hw)
        if shift_h or shift_w:
            grid = torch.roll(grid, shifts=(shift_h, shift_w), dims=(1, 2))
        if layout.is_padded:
            grid = grid[:, :height, :width]
        return grid


class PatchMerging(nn.Module):
    """2x2 neighbouring tokens -> one: (B, H, W, C) -> (B, H/2, W/2, 2C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, tokens_bhwc: torch.Tensor) -> torch.Tensor:
        # Channel order: (even row, even col), (odd row, even col), (even row, odd col), (odd row, odd col).
        batch, height, width, channels = tokens_bhwc.shape
        quads = tokens_bhwc.view(batch, height // 2, 2, width // 2, 2, channels)
        quads = quads.permute(0, 1, 3, 4, 2, 5).reshape(batch, height // 2, width // 2, 4 * channels)
        return self.norm(self.reduction(quads))


class SwinV2Stage(nn.Module):
    """`depth` blocks on one grid; odd blocks use shifted windows."""

    def __init__(self, dim, depth, num_heads, mlp_hidden_dim, window_size, pretrained_window):
        super().__init__()
        self.window_size = window_size
        self.blocks = nn.ModuleList(
            SwinV2Block(dim, num_heads, mlp_hidden_dim, pretrained_window) for _ in range(depth)
        )

    def forward(self, tokens_bhwc: torch.Tensor) -> torch.Tensor:
        grid_hw = tuple(tokens_bhwc.shape[1:3])
        layouts = [window_layout(grid_hw, self.window_size, shifted) for shifted in (False, True)]
        masks = [attention_mask(layout, tokens_bhwc.device) for layout in layouts]
        # Each block needs its own (heads, N, N) position bias (with the masks added on shifted
        # blocks): tens of MB at 384 px. The blocks write them into the same buffers, since memory
        # that is freed and allocated again per block costs page faults, a good part of the run time.
        bias_buffers = {}
        for index, block in enumerate(self.blocks):
            tokens_bhwc = block(tokens_bhwc, layouts[index % 2], masks[index % 2], bias_buffers)
        return tokens_bhwc


class SwinV2Encoder(nn.Module):
    """(B, 3, H, W) image -> the 4 stage outputs, (B, H/4/2^i, W/4/2^i, C_i) each."""

    def __init__(self, config: SwinV2DPTConfig):
        super().__init__()
        self.patch_embed = PatchEmbed(config.embed_dims[0], config.patch_size)
        self.stages = nn.ModuleList(
            SwinV2Stage(dim, depth, heads, hidden, config.window_size, pretrained)
            for dim, depth, heads, hidden, pretrained in zip(
                config.embed_dims,
                config.depths,
                config.num_heads,
                config.mlp_hidden_dims,
                config.pretrained_window_sizes,
            )
        )
        # merges[i] takes stage i's output to stage i + 1.
        self.merges = nn.ModuleList(PatchMerging(dim) for dim in config.embed_dims[:-1])

    def forward(self, image_bchw: torch.Tensor) -> list[torch.Tensor]:
        tokens_bhwc = self.patch_embed(image_bchw)
        stage_outputs = []
        for index, stage in enumerate(self.stages):
            if index > 0:
                tokens_bhwc = self.merges[index - 1](tokens_bhwc)
            tokens_bhwc = stage(tokens_bhwc)
            stage_outputs.append(tokens_bhwc)
        return stage_outputs
