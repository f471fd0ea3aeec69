"""SwinV2 encoder: patch embed -> 4 stages of (shifted-)window blocks, patch merging between them.

Tokens stay on their grid as (B, H, W, C) throughout; the depth model reads the output of the last
block of every stage (before the patch merging that follows it).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import SwinV2DPTConfig
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


def cosine_window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, logit_scale: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """SwinV2's scaled cosine attention, per window and head.

    q, k, v: (B, windows, heads, N, head_dim); logit_scale: (heads, 1, 1), a learned log
    temperature; bias: (heads, N, N) or (windows, heads, N, N), position bias plus masks.
    Returns like v:  softmax(cos(q_i, k_j) * exp(min(logit_scale, ln 100)) + bias_ij) @ v
    """
    q_scaled, k_unit = cosine_operands(q, k, logit_scale)
    return torch.softmax(q_scaled @ k_unit.transpose(-2, -1) + bias, dim=-1) @ v


def cosine_operands(q: torch.Tensor, k: torch.Tensor, logit_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-length queries times the temperature, and unit-length keys: their dot products are the
    scaled cosines. Normalised first, the logits stay <= 100 (float16-safe)."""
    temperature = logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
    return F.normalize(q, dim=-1) * temperature, F.normalize(k, dim=-1)


class WindowAttention(nn.Module):
    """Multi-head cosine attention inside windows, with the continuous position bias (CPB)."""

    def __init__(self, dim: int, num_heads: int, pretrained_window: int):
        super().__init__()
        self.num_heads = num_heads
        self.pretrained_window = pretrained_window
        self.logit_scale = nn.Parameter(torch.zeros(num_heads, 1, 1))
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))  # keys have no bias in SwinV2
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(), nn.Linear(512, num_heads, bias=False))
        self.proj = nn.Linear(dim, dim)

    def position_bias(self, window_hw: tuple[int, int]) -> torch.Tensor:
        """(heads, N, N) bias 16 * sigmoid(CPB(offset from query i to key j)), N = wh * ww."""
        weight = self.cpb_mlp[0].weight
        coords = relative_coords_table(window_hw, self.pretrained_window).to(weight.device, weight.dtype)
        bias_per_offset = 16 * torch.sigmoid(self.cpb_mlp(coords))  # ((2wh-1) * (2ww-1), heads)
        index = relative_position_index(window_hw).to(weight.device)
        return bias_per_offset[index].permute(2, 0, 1)

    def qkv_bias(self) -> torch.Tensor:
        """(3C,) bias of the qkv projection: q_bias, zeros (keys have none), v_bias."""
        return torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))

    def split_heads(self, qkv_bnlc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, windows, N, 3C) projections -> q, k, v, each (B, windows, heads, N, C / heads)."""
        batch, num_windows, tokens, _ = qkv_bnlc.shape
        qkv = qkv_bnlc.view(batch, num_windows, tokens, 3, self.num_heads, -1)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)
        return q, k, v

    def forward(self, windows_bnlc: torch.Tensor, layout: WindowLayout, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, windows, N, C) -> same shape; `mask` is (windows, N, N) or None."""
        q, k, v = self.split_heads(F.linear(windows_bnlc, self.qkv.weight, self.qkv_bias()))
        bias = self.position_bias(layout.window_hw)
        if mask is not None:
            bias = bias + mask[:, None].to(bias.dtype)
        attended = cosine_window_attention(q, k, v, self.logit_scale, bias)
        return self.proj(attended.transpose(2, 3).flatten(3))


class MLP(nn.Module):
    """Linear(C, hidden), exact GELU, Linear(hidden, C) on (..., C) tokens."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(tokens)))


class SwinV2Block(nn.Module):
    """Post-norm transformer block on windows: x + norm1(attn(x)), then x + norm2(mlp(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden_dim: int, pretrained_window: int):
        super().__init__()
        self.attn = WindowAttention(dim, num_heads, pretrained_window)
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_hidden_dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, tokens_bhwc: torch.Tensor, layout: WindowLayout, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, H, W, C) -> same shape; `mask` from windows.attention_mask(layout)."""
        tokens_bhwc = tokens_bhwc + self.norm1(self.attend_in_windows(tokens_bhwc, layout, mask))
        return tokens_bhwc + self.norm2(self.mlp(tokens_bhwc))

    def attend_in_windows(
        self, tokens_bhwc: torch.Tensor, layout: WindowLayout, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """(B, H, W, C) -> same shape: pad, roll, cut into windows, attend, and undo all three."""
        (height, width), (padded_h, padded_w) = layout.grid_hw, layout.padded_hw
        shift_h, shift_w = layout.shift_hw
        grid = tokens_bhwc
        if layout.is_padded:
            grid = F.pad(grid, (0, 0, 0, padded_w - width, 0, padded_h - height))
        if shift_h or shift_w:
            grid = torch.roll(grid, shifts=(-shift_h, -shift_w), dims=(1, 2))
        windows = self.attn(partition_windows(grid, layout.window_hw), layout, mask)
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
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, tokens_bhwc: torch.Tensor) -> torch.Tensor:
        # Channel order: (even row, even col), (odd row, even col), (even row, odd col), (odd row, odd col).
        batch, height, width, channels = tokens_bhwc.shape
        quads = tokens_bhwc.view(batch, height // 2, 2, width // 2, 2, channels)
        quads = quads.permute(0, 1, 3, 4, 2, 5).reshape(batch, height // 2, width // 2, 4 * channels)
        return self.norm(self.reduction(quads))


class SwinV2Stage(nn.Module):
    """`depth` blocks on one grid; odd blocks use shifted windows."""

    def __init__(
        self, dim: int, depth: int, num_heads: int, mlp_hidden_dim: int, window_size: int, pretrained_window: int
    ):
        super().__init__()
        self.window_size = window_size
        self.blocks = nn.ModuleList(
            SwinV2Block(dim, num_heads, mlp_hidden_dim, pretrained_window) for _ in range(depth)
        )

    def window_layouts(self, tokens_bhwc: torch.Tensor) -> list[tuple[WindowLayout, torch.Tensor | None]]:
        """(layout, mask) of the unshifted and of the shifted blocks on this grid."""
        grid_hw = tuple(tokens_bhwc.shape[1:3])
        layouts = [window_layout(grid_hw, self.window_size, shifted) for shifted in (False, True)]
        return [(layout, attention_mask(layout, tokens_bhwc.device)) for layout in layouts]

    def forward(self, tokens_bhwc: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> same shape."""
        layouts = self.window_layouts(tokens_bhwc)
        for index, block in enumerate(self.blocks):
            tokens_bhwc = block(tokens_bhwc, *layouts[index % 2])
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
