"""The test suite's MiDaS v3.1 configurations, written out (not taken from the package, so that
config inference is tested against them), and random-weight checkpoints for them built by
muggled_swinv2/reference.py.
"""

import torch

from muggled_swinv2.model import SwinV2DPTConfig
from muggled_swinv2.reference import native_model, random_midas_state_dict, shift_mask  # noqa: F401

MIDAS_CONFIGS = {
    "tiny": dict(
        embed_dims=(96, 192, 384, 768), depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
        window=16, pretrained_windows=(0, 0, 0, 0), native=256,
    ),
    "base": dict(
        embed_dims=(128, 256, 512, 1024), depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
        window=24, pretrained_windows=(12, 12, 12, 6), native=384,
    ),
    "large": dict(
        embed_dims=(192, 384, 768, 1536), depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48),
        window=24, pretrained_windows=(12, 12, 12, 6), native=384,
    ),
}

# Small enough for many fast tests; still shifts in stages 0-2 and shrinks the window in stage 3.
SMALL_CONFIG = dict(
    embed_dims=(16, 32, 64, 128), depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
    window=4, pretrained_windows=(0, 0, 0, 0), native=64,
)


def as_config(spec: dict) -> SwinV2DPTConfig:
    """A spec of the MIDAS_CONFIGS form as the package's config."""
    return SwinV2DPTConfig(
        embed_dims=spec["embed_dims"], depths=spec["depths"], num_heads=spec["num_heads"],
        window_size=spec["window"], pretrained_window_sizes=spec["pretrained_windows"], native_size=spec["native"],
    )


def make_midas_state_dict(spec: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """{MiDaS key: float32 tensor} for a spec of the MIDAS_CONFIGS form."""
    return random_midas_state_dict(as_config(spec), seed)


def save_midas_checkpoint(path, spec: dict, seed: int = 0) -> None:
    torch.save(make_midas_state_dict(spec, seed), path)
