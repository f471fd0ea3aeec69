"""DPT decoder: reassemble the 4 stage outputs into images, fuse them coarse to fine, predict depth."""

import torch
import torch.nn.functional as F
from torch import nn

from .config import SwinV2DPTConfig


def conv3x3(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """3x3 convolution, stride 1, zero padding 1: keeps the image size."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias)


def upsample_bilinear(image_bchw: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, *size_hw), bilinear with align_corners=True (as DPT)."""
    return F.interpolate(image_bchw, size=tuple(size_hw), mode="bilinear", align_corners=True)


class ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x)))), 3x3 convolutions keeping the channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, image_bchw: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> same shape."""
        return image_bchw + self.conv2(F.relu(self.conv1(F.relu(image_bchw))))


class FusionBlock(nn.Module):
    """out_conv(up(unit(x + skip_unit(skip)))): adds a finer stage, then upsamples to the next one.

    The deepest block has no skip input (and so no skip_unit). The 1x1 out_conv runs BEFORE the
    upsampling: both are linear, one across channels and one across pixels with weights summing
    to 1, so they commute exactly, and the conv then sees 4x fewer pixels.
    """

    def __init__(self, channels: int, has_skip: bool):
        super().__init__()
        self.skip_unit = ResidualConvUnit(channels) if has_skip else None
        self.unit = ResidualConvUnit(channels)
        self.out_conv = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(
        self, coarse_bchw: torch.Tensor, skip_bchw: torch.Tensor | None, out_size_hw: tuple[int, int]
    ) -> torch.Tensor:
        """(B, C, h, w) running result, plus the finer stage's (B, C, h, w) -> (B, C, *out_size_hw)."""
        if self.skip_unit is not None:
            coarse_bchw = coarse_bchw + self.skip_unit(skip_bchw)
        return upsample_bilinear(self.out_conv(self.unit(coarse_bchw)), out_size_hw)


class DepthHead(nn.Module):
    """(B, C, H/2, W/2) fused features -> (B, H, W) non-negative relative inverse depth.

    conv1 (3x3), 2x bilinear upsampling, conv2 (3x3), ReLU, conv3 (1x1), ReLU.
    `clamp_negative=False` skips the final ReLU: training takes its loss there, so that a pixel
    pushed below zero keeps getting gradients instead of dying (inference always clamps).
    """

    def __init__(self, in_channels: int, hidden_channels: tuple[int, int]):
        super().__init__()
        mid_channels, last_channels = hidden_channels
        self.conv1 = conv3x3(in_channels, mid_channels)
        self.conv2 = conv3x3(mid_channels, last_channels)
        self.conv3 = nn.Conv2d(last_channels, 1, kernel_size=1)

    def forward(self, features_bchw: torch.Tensor, clamp_negative: bool = True) -> torch.Tensor:
        height, width = features_bchw.shape[-2:]
        hidden = upsample_bilinear(self.conv1(features_bchw), (2 * height, 2 * width))
        depth_b1hw = self.conv3(F.relu(self.conv2(hidden)))
        return (F.relu(depth_b1hw) if clamp_negative else depth_b1hw).squeeze(1)


class DPTDecoder(nn.Module):
    """Stage outputs [(B, H_i, W_i, C_i)], finest first (H_0 = H / 4) -> depth (B, H, W).

    reassemble[i]: tokens of stage i as an image, projected to the fusion width by a 3x3 conv.
    fusion[i]: fuses stage i into the running result coming from stage i + 1.
    The images are channels-last views of the encoder's (B, H, W, C) tokens (no copy).
    """

    def __init__(self, config: SwinV2DPTConfig):
        super().__init__()
        channels = config.fusion_channels
        stage_count = len(config.embed_dims)
        self.reassemble = nn.ModuleList(conv3x3(dim, channels, bias=False) for dim in config.embed_dims)
        self.fusion = nn.ModuleList(FusionBlock(channels, has_skip=i < stage_count - 1) for i in range(stage_count))
        self.head = DepthHead(channels, config.head_channels)

    def forward(self, stage_outputs: list[torch.Tensor], clamp_negative: bool = True) -> torch.Tensor:
        images = [conv(tokens.permute(0, 3, 1, 2)) for conv, tokens in zip(self.reassemble, stage_outputs)]
        # Each fusion block upsamples to the next finer stage's size; the finest one doubles its own.
        out_sizes_hw = [[2 * side for side in images[0].shape[-2:]]] + [image.shape[-2:] for image in images[:-1]]
        fused = self.fusion[-1](images[-1], None, out_sizes_hw[-1])
        for index in reversed(range(len(images) - 1)):
            fused = self.fusion[index](fused, images[index], out_sizes_hw[index])
        return self.head(fused, clamp_negative)
