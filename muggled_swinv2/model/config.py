"""The numbers that define one SwinV2-DPT depth model, and the registry of the released ones."""

from dataclasses import dataclass


@dataclass(frozen=True)
class SwinV2DPTConfig:
    """Architecture of a SwinV2 encoder + DPT decoder.

    Stage i works on a token grid of (H / (patch_size * 2**i), W / (patch_size * 2**i)) with
    `embed_dims[i]` channels, `depths[i]` blocks and `num_heads[i]` attention heads.
    `pretrained_window_sizes[i]` is the window that stage was pre-trained with (0 = none); the
    continuous position bias normalises its offsets by it (see windows.relative_coords_table).
    `native_size` is the square image side the checkpoint was trained at (pixels).
    """

    embed_dims: tuple[int, ...]
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    window_size: int
    pretrained_window_sizes: tuple[int, ...]
    native_size: int
    patch_size: int = 4
    mlp_hidden_dims: tuple[int, ...] = ()
    fusion_channels: int = 256
    head_channels: tuple[int, int] = (128, 32)

    def __post_init__(self):
        if not self.mlp_hidden_dims:
            object.__setattr__(self, "mlp_hidden_dims", tuple(4 * dim for dim in self.embed_dims))
        stage_count = len(self.embed_dims)
        per_stage = (self.depths, self.num_heads, self.pretrained_window_sizes, self.mlp_hidden_dims)
        if stage_count != 4 or any(len(values) != stage_count for values in per_stage):
            raise ValueError(f"a SwinV2-DPT model has 4 stages, got config {self}")
        for dim, heads in zip(self.embed_dims, self.num_heads):
            if dim % heads:
                raise ValueError(f"stage width {dim} is not divisible by its {heads} heads")
        for dim, next_dim in zip(self.embed_dims, self.embed_dims[1:]):
            if next_dim != 2 * dim:
                raise ValueError(f"patch merging doubles the width, but widths are {self.embed_dims}")

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this (the deepest stage's downsampling)."""
        return self.patch_size * 2 ** (len(self.depths) - 1)

    @property
    def release_name(self) -> str:
        """Name of the MiDaS v3.1 release this config matches (Release.name, e.g. 'tiny-256'), or
        'custom'. (A release's `variant` is its size alone: 'tiny'.)"""
        identity = (self.embed_dims, self.depths, self.native_size)
        for release in RELEASES.values():
            if identity == (release.config.embed_dims, release.config.depths, release.native_size):
                return release.name
        return "custom"

    def to_dict(self) -> dict:
        return {
            "variant": self.release_name,  # the key our safetensors and ONNX files have always had
            "embed_dims": list(self.embed_dims),
            "depths": list(self.depths),
            "num_heads": list(self.num_heads),
            "window_size": self.window_size,
            "pretrained_window_sizes": list(self.pretrained_window_sizes),
            "native_size": self.native_size,
            "patch_size": self.patch_size,
            "mlp_hidden_dims": list(self.mlp_hidden_dims),
            "fusion_channels": self.fusion_channels,
            "head_channels": list(self.head_channels),
        }

    @classmethod
    def from_dict(cls, values: dict) -> "SwinV2DPTConfig":
        fields = {key: value for key, value in values.items() if key != "variant"}
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()})


RELEASE_URL = "https://github.com/isl-org/MiDaS/releases/download/v3_1/"


@dataclass(frozen=True)
class Release:
    """One MiDaS v3.1 SwinV2-DPT checkpoint as published: the one place its facts are written.

    `file_name` is the MiDaS release file (fetched from RELEASE_URL by `download`), `hf_id` the
    Hugging Face conversion of the same weights, `file_mib` the size of the release file (rounded).
    `file_bytes` and `sha256` are what `download` checks a file against (formats/weights.py); None
    where no authoritative value was found (MiDaS publishes none): never guessed, and `download`
    then says what it could check (the archive's own CRC-32s).
    """

    variant: str  # tiny, base or large: what `download`, `bench --models` and the tests call it
    config: SwinV2DPTConfig
    file_name: str
    hf_id: str
    file_mib: int
    file_bytes: int | None = None
    sha256: str | None = None

    @property
    def native_size(self) -> int:
        return self.config.native_size

    @property
    def name(self) -> str:
        """The variant with its native size, e.g. 'tiny-256': what `config.release_name` says."""
        return f"{self.variant}-{self.native_size}"

    @property
    def url(self) -> str:
        return RELEASE_URL + self.file_name


RELEASES = {
    release.variant: release
    for release in (
        Release(
            "tiny",
            SwinV2DPTConfig(
                embed_dims=(96, 192, 384, 768), depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                window_size=16, pretrained_window_sizes=(0, 0, 0, 0), native_size=256,
            ),
            file_name="dpt_swin2_tiny_256.pt", hf_id="Intel/dpt-swinv2-tiny-256", file_mib=164,
        ),
        Release(
            "base",
            SwinV2DPTConfig(
                embed_dims=(128, 256, 512, 1024), depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
                window_size=24, pretrained_window_sizes=(12, 12, 12, 6), native_size=384,
            ),
            file_name="dpt_swin2_base_384.pt", hf_id="Intel/dpt-swinv2-base-384", file_mib=416,
        ),
        Release(
            "large",
            SwinV2DPTConfig(
                embed_dims=(192, 384, 768, 1536), depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48),
                window_size=24, pretrained_window_sizes=(12, 12, 12, 6), native_size=384,
            ),
            file_name="dpt_swin2_large_384.pt", hf_id="Intel/dpt-swinv2-large-384", file_mib=840,
        ),
    )
}


# Small configurations for training from scratch on a CPU (`muggled-swinv2 train --config NAME`).
# "micro" is the embedded demo model's: 3.5 M parameters, 8x8 windows, a 64-channel decoder.
SMALL_CONFIGS = {
    "micro": SwinV2DPTConfig(
        embed_dims=(32, 64, 128, 256), depths=(2, 2, 4, 2), num_heads=(1, 2, 4, 8),
        window_size=8, pretrained_window_sizes=(0, 0, 0, 0), native_size=256,
        fusion_channels=64, head_channels=(32, 16),
    ),
    "nano": SwinV2DPTConfig(
        embed_dims=(16, 32, 64, 128), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 4),
        window_size=4, pretrained_window_sizes=(0, 0, 0, 0), native_size=64,
        fusion_channels=16, head_channels=(16, 8),
    ),
}


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["RELEASES", "RELEASE_URL", "Release", "SMALL_CONFIGS", "SwinV2DPTConfig"]
