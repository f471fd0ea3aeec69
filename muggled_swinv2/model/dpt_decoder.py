"""DPT decoder: reassemble the 4 stage outputs into images, fuse them coarse to fine, predict depth."""

import torch
import torch.nn.functional as F
from torch import nn

from .config import SwinV2DPTConfig
from .winograd import Conv3x3


def upsample_bilinear(image_bchw: torch.Tensor, size_hw) -> torch.Tensor:
    return F.interpolate(image_bchw, size=tuple(size_hw), mode="bilinear", align_corners=True)


class ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu(x)))), 3x3 convolutions keeping the channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = Conv3x3(channels, channels)
        self.conv2 = Conv3x3(channels, channels)

    def forward(self, image_bchw: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(self.conv1(F.relu(image_bchw)), inplace=True)
        return self.conv2(hidden).add_(image_bchw)


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

    def forward(self, coarse_bchw, skip_bchw: torch.Tensor | None, out_size_hw) -> torch.Tensor:
        if self.skip_unit is not None:
            coarse_bchw = self.skip_unit(skip_bchw).add_(coarse_bchw)
        return upsample_bilinear(self.out_conv(self.unit(coarse_bchw)), out_size_hw)


class DepthHead(nn.Module):
    """(B, C, H/2, W/2) fused features -> (B, H, W) non-negative relative inverse depth.

    `clamp_negative=False` skips the final ReLU: training takes its loss there, so that a pixel
    pushed below zero keeps getting gradients instead of dying (inference always clamps).
    """

    def __init__(self, in_channels: int, hidden_channels: tuple[int, int]):
        super().__init__()
        mid_channels, last_channels = hidden_channels
        self.conv1 = nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(mid_channels, last_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(last_channels, 1, kernel_size=1)

    def forward(self, features_bchw: torch.Tensor, clamp_negative: bool = True) -> torch.Tensor:
        # On a CPU, in inference, one image at a time, and in float32 in bands of rows (see
        # depth_in_bands): nothing here mixes images or distant rows. (A GPU keeps the batch: there,
        # many small calls would cost time. So does autograd, which keeps every activation anyway,
        # and graph export, which traces that path. Half precision keeps the upsampling whole: the
        # bands would round it twice.) Unclamped output is for training only and takes the plain path.
        if features_bchw.device.type != "cpu" or torch.is_grad_enabled() or not clamp_negative:
            return self.depth_from_features(features_bchw, clamp_negative)
        per_image = self.depth_in_bands if features_bchw.dtype == torch.float32 else self.depth_from_features
        return torch.cat([per_image(image_1chw) for image_1chw in features_bchw.split(1)])

    def depth_from_features(self, features_bchw: torch.Tensor, clamp_negative: bool = True) -> torch.Tensor:
        height, width = features_bchw.shape[-2:]
        hidden = upsample_bilinear(self.conv1(features_bchw), (2 * height, 2 * width))
        hidden = F.relu(self.conv2(hidden), inplace=True)
        depth_b1hw = self.conv3(hidden)
        return (F.relu(depth_b1hw, inplace=True) if clamp_negative else depth_b1hw).squeeze(1)

    def depth_in_bands(self, features_1chw: torch.Tensor) -> torch.Tensor:
        """depth_from_features for one image, with conv1's upsampled output made BAND_VALUES at a time.

        That (1, 128, H, W) map is the largest activation of the model; made whole, it is fresh
        memory on every call (32 MiB at 256x256), and the page faults of touching it took longer
        than the upsampling itself (measured: 17 ms against 2.5 ms into memory already touched).
        Per band of output rows: the input rows it needs are upsampled along the width (F.interpolate,
        rows kept as they are), then along the height with the weights F.interpolate uses
        (align_corners: source row = y * (h - 1) / (H - 1), in float32), written with a row of halo
        on each side (zeros at the image's edges: conv2's padding) for conv2, then conv2 and conv3.
        """
        hidden_1chw = self.conv1(features_1chw)
        channels, height, width = hidden_1chw.shape[1:]
        out_h, out_w = 2 * height, 2 * width
        scale = torch.tensor(height - 1, dtype=torch.float32) / (out_h - 1)  # out_h >= 2
        source = torch.arange(out_h, dtype=torch.float32) * scale
        top = source.long().clamp(max=height - 1)  # truncation: the source is never negative
        bottom = (top + 1).clamp(max=height - 1)
        weight_bottom = (source - top).view(-1, 1, 1)  # (out_h, 1, 1): per output row
        weight_top = 1 - weight_bottom

        band_rows = max(1, BAND_VALUES // (out_w * channels))
        band_1hwc = hidden_1chw.new_empty(1, band_rows + 2, out_w, channels)
        depth_1hw = hidden_1chw.new_empty(1, out_h, out_w)
        for first in range(0, out_h, band_rows):
            last = min(first + band_rows, out_h)
            low, high = max(first - 1, 0), min(last + 1, out_h)  # upsampled rows: the band and its halo
            offset = low - (first - 1)  # 1 where the halo row lies above the image (a zero row), else 0
            source_low, source_high = int(top[low]), int(bottom[high - 1]) + 1
            widened = upsample_bilinear(hidden_1chw[:, :, source_low:source_high], (source_high - source_low, out_w))
            widened_hwc = widened[0].permute(1, 2, 0)  # (rows, out_w, C), contiguous
            upsampled = band_1hwc[0, offset : offset + high - low]
            torch.mul(widened_hwc[top[low:high] - source_low], weight_top[low:high], out=upsampled)
            upsampled.addcmul_(widened_hwc[bottom[low:high] - source_low], weight_bottom[low:high])
            band_1hwc[0, :offset].zero_()
            band_1hwc[0, offset + high - low : last - first + 2].zero_()
            band_1chw = band_1hwc[:, : last - first + 2].permute(0, 3, 1, 2)
            hidden = F.relu_(F.conv2d(band_1chw, self.conv2.weight, self.conv2.bias, padding=(0, 1)))
            depth_1hw[:, first:last] = F.relu_(self.conv3(hidden))[:, 0]
        return depth_1hw


BAND_VALUES = 2**20  # floats of conv1's upsampled output made at once by DepthHead.depth_in_bands (4 MiB)


def _weights_to_channels_last_after_load(decoder: "DPTDecoder", incompatible_keys) -> None:
    decoder.weights_to_channels_last()  # a module-level function, not a lambda: the model pickles


class DPTDecoder(nn.Module):
    """Stage outputs [(B, H_i, W_i, C_i)], finest first (H_0 = H / 4) -> depth (B, H, W).

    reassemble[i]: tokens of stage i as an image, projected to the fusion width by a 3x3 conv.
    fusion[i]: fuses stage i into the running result coming from stage i + 1.

    Images stay channels-last throughout: the encoder's (B, H, W, C) tokens already are, and the
    convolution kernels run fastest on it. The conv weights are kept channels-last too (also after
    loading a state dict), or every call would re-lay them out.
    """

    def __init__(self, config: SwinV2DPTConfig):
        super().__init__()
        channels = config.fusion_channels
        stage_count = len(config.embed_dims)
        self.reassemble = nn.ModuleList(
            Conv3x3(dim, channels, bias=False) for dim in config.embed_dims
        )
        self.fusion = nn.ModuleList(FusionBlock(channels, has_skip=i < stage_count - 1) for i in range(stage_count))
        self.head = DepthHead(channels, config.head_channels)
        self.weights_to_channels_last()
        self.register_load_state_dict_post_hook(_weights_to_channels_last_after_load)

    def weights_to_channels_last(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)

    def forward(self, stage_outputs: list[torch.Tensor], clamp_negative: bool = True) -> torch.Tensor:
        images = [conv(tokens.permute(0, 3, 1, 2)) for conv, tokens in zip(self.reassemble, stage_outputs)]
        # Each fusion block upsamples to the next finer stage's size; the finest one doubles its own.
        out_sizes_hw = [[2 * side for side in images[0].shape[-2:]]] + [image.shape[-2:] for image in images[:-1]]
        fused = self.fusion[-1](images[-1], None, out_sizes_hw[-1])
        for index in reversed(range(len(images) - 1)):
            fused = self.fusion[index](fused, images[index], out_sizes_hw[index])
        return self.head(fused, clamp_negative)
