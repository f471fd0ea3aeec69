"""The test suite's MiDaS v3.1 configurations (from the release registry, model.config.RELEASES) and
random-weight checkpoints for them built by muggled_swinv2/reference.py."""

import torch

from muggled_swinv2.model import SwinV2DPTConfig
from muggled_swinv2.model.config import RELEASES
from muggled_swinv2.reference import native_model, random_midas_state_dict, shift_mask  # noqa: F401



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
