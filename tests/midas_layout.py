"""Random-weight checkpoints in the exact MiDaS v3.1 SwinV2-DPT layout, built at test time.

Key names and shapes follow the released files (../shared/REFERENCE.md), including the tensors the
depth model ignores (classifier head, final norm, shift masks, refinenet4.resConfUnit1). The values
are random but chosen so the network computes a non-trivial function: positive, varying depth.
"""

import itertools
import math

import torch

from muggled_swinv2.formats.checkpoint import build_model, infer_midas_config
from muggled_swinv2.formats.key_table import MIDAS, to_native
from muggled_swinv2.model import SwinV2DPTConfig
from muggled_swinv2.model.config import RELEASES


def layout_config(config: SwinV2DPTConfig) -> dict:
    """A released config in the form make_midas_state_dict takes."""
    return dict(embed_dims=config.embed_dims, depths=config.depths, num_heads=config.num_heads,
                window=config.window_size, pretrained_windows=config.pretrained_window_sizes, native=config.native_size)


MIDAS_CONFIGS = {variant: layout_config(release.config) for variant, release in RELEASES.items()}

# Small enough for many fast tests; still shifts in stages 0-2 and shrinks the window in stage 3.
SMALL_CONFIG = dict(
    embed_dims=(16, 32, 64, 128), depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
    window=4, pretrained_windows=(0, 0, 0, 0), native=64,
)


def shift_mask(grid: int, window: int) -> torch.Tensor:
    """The (windows, W*W, W*W) 0/-100 buffer timm saves on shifted blocks of a square grid."""
    shift = window // 2
    region = torch.zeros(grid, grid)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for count, (rows, cols) in enumerate(itertools.product(bounds, bounds)):
        region[rows, cols] = count
    tiles = region.view(grid // window, window, grid // window, window).transpose(1, 2).reshape(-1, window * window)
    return (tiles[:, None, :] != tiles[:, :, None]).float() * -100.0


class _Random:
    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def normal(self, *shape, std=1.0, mean=0.0):
        return mean + std * torch.randn(shape, generator=self.generator)

    def linear(self, out_features, in_features, gain=1.0):
        return self.normal(out_features, in_features, std=gain / math.sqrt(in_features))

    def conv(self, out_channels, in_channels, kernel, gain=1.0):
        return self.normal(out_channels, in_channels, kernel, kernel, std=gain / math.sqrt(in_channels * kernel**2))


def make_midas_state_dict(config: dict, seed: int = 0, fusion: int = 256) -> dict[str, torch.Tensor]:
    """{MiDaS key: float32 tensor} for a config of the MIDAS_CONFIGS form."""
    rng = _Random(seed)
    sd = {}

    def norm(prefix, dim):
        sd[prefix + ".weight"] = rng.normal(dim, std=0.1, mean=1.0)
        sd[prefix + ".bias"] = rng.normal(dim, std=0.05)

    dims = config["embed_dims"]
    encoder = "pretrained.model."
    sd[encoder + "patch_embed.proj.weight"] = rng.conv(dims[0], 3, 4)
    sd[encoder + "patch_embed.proj.bias"] = rng.normal(dims[0], std=0.05)
    norm(encoder + "patch_embed.norm", dims[0])
    for stage, (dim, depth, heads) in enumerate(zip(dims, config["depths"], config["num_heads"])):
        grid = config["native"] // 4 // 2**stage
        for block in range(depth):
            prefix = f"{encoder}layers.{stage}.blocks.{block}."
            # Temperatures around 10, some heads past the ln(100) clamp.
            sd[prefix + "attn.logit_scale"] = rng.normal(heads, 1, 1, std=1.2, mean=math.log(10))
            sd[prefix + "attn.q_bias"] = rng.normal(dim, std=0.1)
            sd[prefix + "attn.v_bias"] = rng.normal(dim, std=0.1)
            sd[prefix + "attn.qkv.weight"] = rng.linear(3 * dim, dim)
            sd[prefix + "attn.proj.weight"] = rng.linear(dim, dim)
            sd[prefix + "attn.proj.bias"] = rng.normal(dim, std=0.05)
            sd[prefix + "attn.cpb_mlp.0.weight"] = rng.normal(512, 2, std=1.0)
            sd[prefix + "attn.cpb_mlp.0.bias"] = rng.normal(512, std=0.5)
            sd[prefix + "attn.cpb_mlp.2.weight"] = rng.linear(heads, 512, gain=3.0)
            norm(prefix + "norm1", dim)
            sd[prefix + "mlp.fc1.weight"] = rng.linear(4 * dim, dim)
            sd[prefix + "mlp.fc1.bias"] = rng.normal(4 * dim, std=0.05)
            sd[prefix + "mlp.fc2.weight"] = rng.linear(dim, 4 * dim)
            sd[prefix + "mlp.fc2.bias"] = rng.normal(dim, std=0.05)
            norm(prefix + "norm2", dim)
            if block % 2 and grid > config["window"]:
                sd[prefix + "attn_mask"] = shift_mask(grid, config["window"])
        if stage < len(dims) - 1:
            sd[f"{encoder}layers.{stage}.downsample.reduction.weight"] = rng.linear(2 * dim, 4 * dim)
            norm(f"{encoder}layers.{stage}.downsample.norm", 2 * dim)
    norm(encoder + "norm", dims[-1])
    sd[encoder + "head.weight"] = rng.linear(1000, dims[-1])
    sd[encoder + "head.bias"] = rng.normal(1000, std=0.01)

    for level, dim in enumerate(dims, start=1):
        sd[f"scratch.layer{level}_rn.weight"] = rng.conv(fusion, dim, 3)
    for level in range(1, 5):
        prefix = f"scratch.refinenet{level}."
        for unit, conv in itertools.product((1, 2), (1, 2)):
            sd[f"{prefix}resConfUnit{unit}.conv{conv}.weight"] = rng.conv(fusion, fusion, 3, gain=0.5)
            sd[f"{prefix}resConfUnit{unit}.conv{conv}.bias"] = rng.normal(fusion, std=0.02)
        sd[prefix + "out_conv.weight"] = rng.conv(fusion, fusion, 1)
        sd[prefix + "out_conv.bias"] = rng.normal(fusion, std=0.02)
    sd["scratch.output_conv.0.weight"] = rng.conv(fusion // 2, fusion, 3)
    sd["scratch.output_conv.0.bias"] = rng.normal(fusion // 2, std=0.02)
    sd["scratch.output_conv.2.weight"] = rng.conv(32, fusion // 2, 3, gain=2.0)
    sd["scratch.output_conv.2.bias"] = rng.normal(32, std=0.1, mean=0.3)
    # Leaning positive: the output is positive over most pixels, with a few clipped by the last ReLU.
    sd["scratch.output_conv.4.weight"] = rng.conv(1, 32, 1) + 0.1
    sd["scratch.output_conv.4.bias"] = torch.tensor([1.0])
    return sd


def save_midas_checkpoint(path, config: dict, seed: int = 0) -> None:
    torch.save(make_midas_state_dict(config, seed), path)


def native_model(midas_state_dict: dict):
    """Our model (eval mode) holding a MiDaS-layout state dict, without a file."""
    native, _ = to_native(midas_state_dict, MIDAS)
    return build_model(infer_midas_config(midas_state_dict), native).eval()
