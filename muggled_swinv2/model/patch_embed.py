"""Image -> token grid: the first step of the SwinV2 encoder."""

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """Non-overlapping patch_size x patch_size convolution, then LayerNorm over channels.

    (B, 3, H, W) image -> (B, H / patch, W / patch, C) tokens.
    """

    def __init__(self, out_channels: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(3, out_channels, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, image_bchw: torch.Tensor) -> torch.Tensor:
        tokens_bhwc = self.proj(image_bchw).permute(0, 2, 3, 1)
        return self.norm(tokens_bhwc)
