"""Random MiDaS-layout weights and an independent reference model, for measuring and testing.

Used by `muggled-swinv2 bench`, the scripts in benchmarks/ and the tests; nothing else needs it.

- `random_midas_state_dict`: seeded random tensors under the key names and shapes of the released
  MiDaS v3.1 files, including the tensors the depth model ignores (classifier head, final norm,
  shift masks, refinenet4.resConfUnit1). The names are written out here, not taken from
  formats/key_table.py, so that loading such a file tests the key table. The values are chosen so
  that the network computes a non-trivial function: positive, varying inverse depth.
- `transformers_reference`: Hugging Face transformers' DPTForDepthEstimation with a SwinV2 backbone
  holding the same weights (needs transformers, imported only here). Its names are again mapped
  by a table of its own, so that agreeing with it checks our loading as well as our maths.

Known differences of the transformers model from MiDaS, and where they matter:
- its windows and shifts are fixed when the model is built, from `image_size`, so a reference must
  be built for the size it runs at;
- on a non-square grid it uses the height's window for both axes, and it zero-pads a grid that is
  not a multiple of the window without masking the padding out. It therefore agrees with MiDaS's
  per-axis rules only where every stage grid is square, or a multiple of the window on both axes;
- some versions add the shift mask twice (-200 instead of -100): exp(-100) is already 0 in fp32.
"""

import itertools
import math
import re

import torch

from .build import build_model
from .formats.checkpoint import infer_midas_config
from .formats.key_table import MIDAS, to_native
from .model import SwinV2DPT, SwinV2DPTConfig


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

    def normal(self, *shape: int, std: float = 1.0, mean: float = 0.0) -> torch.Tensor:
        return mean + std * torch.randn(shape, generator=self.generator)

    def linear(self, out_features: int, in_features: int, gain: float = 1.0) -> torch.Tensor:
        return self.normal(out_features, in_features, std=gain / math.sqrt(in_features))

    def conv(self, out_channels: int, in_channels: int, kernel: int, gain: float = 1.0) -> torch.Tensor:
        return self.normal(out_channels, in_channels, kernel, kernel, std=gain / math.sqrt(in_channels * kernel**2))


def random_midas_state_dict(config: SwinV2DPTConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """{MiDaS v3.1 key: float32 tensor} for `config`, seeded."""
    rng = _Random(seed)
    sd = {}

    def norm(prefix: str, dim: int) -> None:
        sd[prefix + ".weight"] = rng.normal(dim, std=0.1, mean=1.0)
        sd[prefix + ".bias"] = rng.normal(dim, std=0.05)

    dims, window = config.embed_dims, config.window_size
    encoder = "pretrained.model."
    sd[encoder + "patch_embed.proj.weight"] = rng.conv(dims[0], 3, config.patch_size)
    sd[encoder + "patch_embed.proj.bias"] = rng.normal(dims[0], std=0.05)
    norm(encoder + "patch_embed.norm", dims[0])
    for stage, (dim, depth, heads, hidden) in enumerate(
        zip(dims, config.depths, config.num_heads, config.mlp_hidden_dims)
    ):
        grid = config.native_size // config.patch_size // 2**stage
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
            sd[prefix + "mlp.fc1.weight"] = rng.linear(hidden, dim)
            sd[prefix + "mlp.fc1.bias"] = rng.normal(hidden, std=0.05)
            sd[prefix + "mlp.fc2.weight"] = rng.linear(dim, hidden)
            sd[prefix + "mlp.fc2.bias"] = rng.normal(dim, std=0.05)
            norm(prefix + "norm2", dim)
            if block % 2 and grid > window:
                sd[prefix + "attn_mask"] = shift_mask(grid, window)
        if stage < len(dims) - 1:
            sd[f"{encoder}layers.{stage}.downsample.reduction.weight"] = rng.linear(2 * dim, 4 * dim)
            norm(f"{encoder}layers.{stage}.downsample.norm", 2 * dim)
    norm(encoder + "norm", dims[-1])
    sd[encoder + "head.weight"] = rng.linear(1000, dims[-1])
    sd[encoder + "head.bias"] = rng.normal(1000, std=0.01)

    fusion, (head_hidden, head_last) = config.fusion_channels, config.head_channels
    for level, dim in enumerate(dims, start=1):
        sd[f"scratch.layer{level}_rn.weight"] = rng.conv(fusion, dim, 3)
    for level in range(1, 5):
        prefix = f"scratch.refinenet{level}."
        for unit, conv in itertools.product((1, 2), (1, 2)):
            sd[f"{prefix}resConfUnit{unit}.conv{conv}.weight"] = rng.conv(fusion, fusion, 3, gain=0.5)
            sd[f"{prefix}resConfUnit{unit}.conv{conv}.bias"] = rng.normal(fusion, std=0.02)
        sd[prefix + "out_conv.weight"] = rng.conv(fusion, fusion, 1)
        sd[prefix + "out_conv.bias"] = rng.normal(fusion, std=0.02)
    sd["scratch.output_conv.0.weight"] = rng.conv(head_hidden, fusion, 3)
    sd["scratch.output_conv.0.bias"] = rng.normal(head_hidden, std=0.02)
    sd["scratch.output_conv.2.weight"] = rng.conv(head_last, head_hidden, 3, gain=2.0)
    sd["scratch.output_conv.2.bias"] = rng.normal(head_last, std=0.1, mean=0.3)
    # Leaning positive: the output is positive over most pixels, with a few clipped by the last ReLU.
    sd["scratch.output_conv.4.weight"] = rng.conv(1, head_last, 1) + 0.1
    sd["scratch.output_conv.4.bias"] = torch.tensor([1.0])
    return sd


def native_model(midas_state_dict: dict[str, torch.Tensor]) -> SwinV2DPT:
    """Our model (eval mode) holding a MiDaS-layout state dict, configured from it as a file would be."""
    native, _ = to_native(midas_state_dict, MIDAS)
    return build_model(infer_midas_config(midas_state_dict), native).eval()


# ----------------------------------------------------------------------------- transformers

# (MiDaS regex, transformers template); groups are re-used by position, `refinenet{n}` -> fusion layer 4 - n.
_BLOCK = r"pretrained\.model\.layers\.(\d+)\.blocks\.(\d+)\."
_HF_BLOCK = "backbone.encoder.layers.{0}.blocks.{1}."
_RENAMES = [
    (r"pretrained\.model\.patch_embed\.proj\.(\w+)", "backbone.embeddings.patch_embeddings.projection.{0}"),
    (r"pretrained\.model\.patch_embed\.norm\.(\w+)", "backbone.embeddings.norm.{0}"),
    (_BLOCK + r"attn\.logit_scale", _HF_BLOCK + "attention.self.logit_scale"),
    (_BLOCK + r"attn\.q_bias", _HF_BLOCK + "attention.self.query.bias"),
    (_BLOCK + r"attn\.v_bias", _HF_BLOCK + "attention.self.value.bias"),
    (_BLOCK + r"attn\.cpb_mlp\.(\d)\.(\w+)", _HF_BLOCK + "attention.self.continuous_position_bias_mlp.{2}.{3}"),
    (_BLOCK + r"attn\.proj\.(\w+)", _HF_BLOCK + "attention.output.dense.{2}"),
    (_BLOCK + r"norm1\.(\w+)", _HF_BLOCK + "layernorm_before.{2}"),
    (_BLOCK + r"norm2\.(\w+)", _HF_BLOCK + "layernorm_after.{2}"),
    (_BLOCK + r"mlp\.fc1\.(\w+)", _HF_BLOCK + "intermediate.dense.{2}"),
    (_BLOCK + r"mlp\.fc2\.(\w+)", _HF_BLOCK + "output.dense.{2}"),
    (r"pretrained\.model\.layers\.(\d+)\.downsample\.(.+)", "backbone.encoder.layers.{0}.downsample.{1}"),
    (r"scratch\.output_conv\.(\d)\.(\w+)", "head.head.{0}.{1}"),
]
_IGNORED = re.compile(r"pretrained\.model\.(head|norm)\..*|.*attn_mask|scratch\.refinenet4\.resConfUnit1\..*")


def midas_to_transformers_state_dict(midas_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """MiDaS-layout tensors -> transformers DPTForDepthEstimation (SwinV2 backbone) names."""
    hf = {}
    for key, tensor in midas_sd.items():
        if _IGNORED.fullmatch(key):
            continue
        qkv = re.fullmatch(_BLOCK + r"attn\.qkv\.weight", key)
        rn = re.fullmatch(r"scratch\.layer(\d)_rn\.weight", key)
        fusion = re.fullmatch(r"scratch\.refinenet(\d)\.(resConfUnit(\d)\.conv(\d)|out_conv)\.(\w+)", key)
        if qkv:
            prefix = _HF_BLOCK.format(*qkv.groups()) + "attention.self."
            for name, part in zip(("query", "key", "value"), tensor.chunk(3, dim=0)):
                hf[prefix + name + ".weight"] = part
        elif rn:
            hf[f"neck.convs.{int(rn[1]) - 1}.weight"] = tensor
        elif fusion:
            layer = 4 - int(fusion[1])
            if fusion[2] == "out_conv":
                hf[f"neck.fusion_stage.layers.{layer}.projection.{fusion[5]}"] = tensor
            else:
                name = f"residual_layer{fusion[3]}.convolution{fusion[4]}"
                hf[f"neck.fusion_stage.layers.{layer}.{name}.{fusion[5]}"] = tensor
        else:
            for pattern, template in _RENAMES:
                match = re.fullmatch(pattern, key)
                if match:
                    hf[template.format(*match.groups())] = tensor
                    break
            else:
                raise KeyError(f"no transformers name for {key}")
    return hf


def transformers_reference(config: SwinV2DPTConfig, image_hw: tuple[int, int], midas_sd: dict[str, torch.Tensor]):
    """transformers' DPTForDepthEstimation (eval mode) for one input size, holding the MiDaS-layout weights.

    Raises ImportError without transformers.
    """
    from transformers import DPTConfig, DPTForDepthEstimation, Swinv2Config

    backbone = Swinv2Config(
        image_size=list(image_hw), patch_size=config.patch_size, embed_dim=config.embed_dims[0],
        depths=list(config.depths), num_heads=list(config.num_heads), window_size=config.window_size,
        pretrained_window_sizes=list(config.pretrained_window_sizes), drop_path_rate=0.0,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    model = DPTForDepthEstimation(
        DPTConfig(
            backbone_config=backbone, neck_hidden_sizes=list(config.embed_dims),
            fusion_hidden_size=config.fusion_channels, use_batch_norm_in_fusion_residual=False,
            add_projection=False, head_in_index=-1,
        )
    ).eval()
    weights = midas_to_transformers_state_dict(midas_sd)
    # The deepest fusion layer (MiDaS refinenet4) has a first residual unit that is never used.
    unused = "neck.fusion_stage.layers.0.residual_layer1."
    weights.update({key: value for key, value in model.state_dict().items() if key.startswith(unused)})
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [key for key in missing if "relative_" not in key]  # buffers it derives itself
    if missing or unexpected:
        raise KeyError(f"transformers mapping incomplete: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model


@torch.no_grad()
def transformers_depth(model, image_bchw: torch.Tensor) -> torch.Tensor:
    """(B, H, W) inverse depth of the transformers model for a normalised (B, 3, H, W) image."""
    return model(pixel_values=image_bchw).predicted_depth


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["native_model", "random_midas_state_dict", "transformers_depth", "transformers_reference"]
