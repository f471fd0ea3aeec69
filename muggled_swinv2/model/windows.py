"""How a token grid is cut into attention windows, and the tables that go with a window.

Layout rules, per axis (the same as timm's SwinV2, which MiDaS v3.1 was trained with):
- a grid side no larger than the window makes the window shrink to that side, and that axis is
  not shifted (there is nothing to shift across);
- otherwise the window keeps its size, and shifted blocks roll the grid by window // 2;
- a side that is not a multiple of the window is zero-padded at the bottom/right up to one. The
  padded tokens are MASKED OUT as keys, so they never change a real token (unlike zero-padding
  alone, which would let the zeros take part in the softmax). Their own outputs are cropped away.
At the native sizes of the released checkpoints no padding happens, and the shifted-window mask
equals the `attn_mask` buffers stored in the MiDaS files.
"""

import math
from dataclasses import dataclass

import torch

SHIFT_MASK_VALUE = -100.0  # what MiDaS/timm add between tokens of different shift regions
PAD_MASK_VALUE = -1.0e4  # keeps padded keys out of the softmax (finite: fp16-safe, never NaN)


@dataclass(frozen=True)
class WindowLayout:
    """Where the windows of one block lie on a (grid_h, grid_w) token grid."""

    grid_hw: tuple[int, int]
    window_hw: tuple[int, int]
    shift_hw: tuple[int, int]
    padded_hw: tuple[int, int]

    @property
    def is_padded(self) -> bool:
        return self.padded_hw != self.grid_hw


def window_layout(grid_hw: tuple[int, int], window_size: int, shifted: bool) -> WindowLayout:
    """Window, shift and padding of a block on `grid_hw`, following the rules in the module doc."""
    window_hw = tuple(min(side, window_size) for side in grid_hw)
    shift_hw = tuple(window_size // 2 if shifted and side > window_size else 0 for side in grid_hw)
    padded_hw = tuple(math.ceil(side / window) * window for side, window in zip(grid_hw, window_hw))
    return WindowLayout(tuple(grid_hw), window_hw, shift_hw, padded_hw)


def partition_windows(tokens_bhwc: torch.Tensor, window_hw: tuple[int, int]) -> torch.Tensor:
    """(B, H, W, C) -> (B, windows, wh * ww, C); windows and their tokens in row-major order."""
    batch, height, width, channels = tokens_bhwc.shape
    wh, ww = window_hw
    tiles = tokens_bhwc.view(batch, height // wh, wh, width // ww, ww, channels)
    return tiles.transpose(2, 3).reshape(batch, -1, wh * ww, channels)


def merge_windows(windows_bnlc: torch.Tensor, window_hw: tuple[int, int], grid_hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of partition_windows: (B, windows, wh * ww, C) -> (B, H, W, C)."""
    batch, _, _, channels = windows_bnlc.shape
    (wh, ww), (height, width) = window_hw, grid_hw
    tiles = windows_bnlc.view(batch, height // wh, width // ww, wh, ww, channels)
    return tiles.transpose(2, 3).reshape(batch, height, width, channels)


def attention_mask(layout: WindowLayout, device: torch.device | str | None = None) -> torch.Tensor | None:
    """Additive mask (windows, N, N) between query i and key j of each window, or None.

    Built on the rolled, padded grid: -100 where the tokens come from different shift regions
    (cyclic roll brought them together), PAD_MASK_VALUE where the key is a padding token.
    """
    if layout.shift_hw == (0, 0) and not layout.is_padded:
        return None
    region_ids = []
    is_padding = []
    for side, padded, window, shift in zip(layout.grid_hw, layout.padded_hw, layout.window_hw, layout.shift_hw):
        index = torch.arange(padded, device=device)
        # Region boundaries in the rolled frame: [0, P - window), [P - window, P - shift), [P - shift, P).
        region = (index >= padded - window).long() + (index >= padded - shift).long() if shift else index * 0
        region_ids.append(region)
        is_padding.append(torch.roll(index >= side, -shift))
    region_hw = region_ids[0][:, None] * 3 + region_ids[1][None, :]
    padding_hw = is_padding[0][:, None] | is_padding[1][None, :]

    region_windows = partition_windows(region_hw[None, :, :, None], layout.window_hw)[0, :, :, 0]
    padding_windows = partition_windows(padding_hw[None, :, :, None], layout.window_hw)[0, :, :, 0]
    different_region = region_windows[:, :, None] != region_windows[:, None, :]
    mask = different_region.float() * SHIFT_MASK_VALUE
    return mask + padding_windows[:, None, :].float() * PAD_MASK_VALUE


def relative_coords_table(window_hw: tuple[int, int], pretrained_window: int) -> torch.Tensor:
    """Log-spaced relative offsets ((2wh-1) * (2ww-1), 2) fed to the continuous position bias MLP.

    Offsets (dy, dx) are divided by (pretrained_window - 1), or by (window side - 1) when the stage
    has no pretrained window, scaled to [-8, 8] and mapped by sign(t) * log2(1 + |t|) / log2(8).
    """
    offsets = [torch.arange(-(side - 1), side, dtype=torch.float32) for side in window_hw]
    table = torch.stack(torch.meshgrid(offsets, indexing="ij"), dim=-1).reshape(-1, 2)
    if pretrained_window > 0:
        table = table / (pretrained_window - 1)
    else:
        # A side of 1 only has the offset 0: leave it as is rather than divide by zero.
        table = table / torch.tensor([max(side - 1, 1) for side in window_hw], dtype=torch.float32)
    table = table * 8
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)


def relative_position_index(window_hw: tuple[int, int]) -> torch.Tensor:
    """(N, N) row index into relative_coords_table of the offset from key j to query i."""
    wh, ww = window_hw
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    offset_y, offset_x = coords[:, :, None] - coords[:, None, :]
    return (offset_y + wh - 1) * (2 * ww - 1) + (offset_x + ww - 1)
