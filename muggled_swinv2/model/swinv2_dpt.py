"""The whole depth model: SwinV2 encoder -> DPT decoder."""

import torch
from torch import nn

from .config import SwinV2DPTConfig
from .dpt_decoder import DPTDecoder
from .swinv2_encoder import SwinV2Encoder


class SwinV2DPT(nn.Module):
    """MiDaS v3.1 SwinV2-DPT: (B, 3, H, W) normalised RGB -> (B, H, W) relative inverse depth.

    Input: RGB scaled to [0, 1], then (x - 0.5) / 0.5. H and W: any multiples of config.stride (32);
    the output (float32) is bigger where things are nearer, up to an unknown scale and shift.
    `clamp_negative=False` (training) leaves out the head's final ReLU.
    The plain reference: `muggled_swinv2.DepthModel` (predict.py) adds `predict` (OpenCV images), and
    `muggled_swinv2.accelerate.accelerate_for_inference` its CPU speed paths.
    """

    def __init__(self, config: SwinV2DPTConfig):
        super().__init__()
        self.config = config
        self.encoder = SwinV2Encoder(config)
        self.decoder = DPTDecoder(config)

    def forward(self, image_bchw: torch.Tensor, clamp_negative: bool = True) -> torch.Tensor:
        """(B, 3, H, W) -> (B, H, W) float32."""
        stride = self.config.stride
        if image_bchw.ndim != 4 or image_bchw.shape[1] != 3 or image_bchw.shape[2] % stride or image_bchw.shape[3] % stride:
            raise ValueError(
                f"expected a (B, 3, H, W) image with H and W multiples of {stride}, got shape {tuple(image_bchw.shape)}"
            )
        encoder_dtype = self.encoder.patch_embed.proj.weight.dtype
        decoder_dtype = self.decoder.head.conv3.weight.dtype
        stage_outputs = self.encoder(image_bchw.to(encoder_dtype))
        return self.decoder([tokens.to(decoder_dtype) for tokens in stage_outputs], clamp_negative).float()

    def set_dtype(self, dtype: torch.dtype) -> "SwinV2DPT":
        """Cast for inference. float16 keeps the SwinV2 encoder in float32: its post-norm residual
        stream overflows float16 (as MiDaS warns); the convolutional decoder runs in float16."""
        self.encoder.to(torch.float32 if dtype == torch.float16 else dtype)
        self.decoder.to(dtype)
        return self


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["SwinV2DPT"]
