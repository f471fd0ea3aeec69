"""Checkpoint files -> a ready SwinV2DPT: reading, recognising, configuring and key mapping.

MiDaS v3.1 `.pt` files are plain state dicts. They are read with `weights_only=True` (no code is
ever unpickled) and memory-mapped, so tensors the depth model does not use are never read.
"""

import math
import pickle
import re
from pathlib import Path

import torch

from .model import SwinV2DPT, SwinV2DPTConfig

BLOCK = "pretrained.model.layers.{stage}.blocks.{block}."
OURS_BLOCK = "encoder.stages.{stage}.blocks.{block}."

# Every tensor the model uses: (MiDaS name, our name). {stage} and {block} count from 0 on both
# sides; MiDaS numbers the decoder levels from 1 ({level}), we index them from 0 ({index}).
MIDAS_KEY_TABLE = (
    ("pretrained.model.patch_embed.proj.{param}", "encoder.patch_embed.proj.{param}"),
    ("pretrained.model.patch_embed.norm.{param}", "encoder.patch_embed.norm.{param}"),
    (BLOCK + "attn.logit_scale", OURS_BLOCK + "attn.logit_scale"),
    (BLOCK + "attn.q_bias", OURS_BLOCK + "attn.q_bias"),
    (BLOCK + "attn.v_bias", OURS_BLOCK + "attn.v_bias"),
    (BLOCK + "attn.qkv.weight", OURS_BLOCK + "attn.qkv.weight"),
    (BLOCK + "attn.cpb_mlp.0.{param}", OURS_BLOCK + "attn.cpb_mlp.0.{param}"),
    (BLOCK + "attn.cpb_mlp.2.weight", OURS_BLOCK + "attn.cpb_mlp.2.weight"),
    (BLOCK + "attn.proj.{param}", OURS_BLOCK + "attn.proj.{param}"),
    (BLOCK + "norm1.{param}", OURS_BLOCK + "norm1.{param}"),
    (BLOCK + "mlp.fc1.{param}", OURS_BLOCK + "mlp.fc1.{param}"),
    (BLOCK + "mlp.fc2.{param}", OURS_BLOCK + "mlp.fc2.{param}"),
    (BLOCK + "norm2.{param}", OURS_BLOCK + "norm2.{param}"),
    ("pretrained.model.layers.{stage}.downsample.reduction.weight", "encoder.merges.{stage}.reduction.weight"),
    ("pretrained.model.layers.{stage}.downsample.norm.{param}", "encoder.merges.{stage}.norm.{param}"),
    ("scratch.layer{level}_rn.weight", "decoder.reassemble.{index}.weight"),
    ("scratch.refinenet{level}.resConfUnit1.conv1.{param}", "decoder.fusion.{index}.skip_unit.conv1.{param}"),
    ("scratch.refinenet{level}.resConfUnit1.conv2.{param}", "decoder.fusion.{index}.skip_unit.conv2.{param}"),
    ("scratch.refinenet{level}.resConfUnit2.conv1.{param}", "decoder.fusion.{index}.unit.conv1.{param}"),
    ("scratch.refinenet{level}.resConfUnit2.conv2.{param}", "decoder.fusion.{index}.unit.conv2.{param}"),
    ("scratch.refinenet{level}.out_conv.{param}", "decoder.fusion.{index}.out_conv.{param}"),
    ("scratch.output_conv.0.{param}", "decoder.head.conv1.{param}"),
    ("scratch.output_conv.2.{param}", "decoder.head.conv2.{param}"),
    ("scratch.output_conv.4.{param}", "decoder.head.conv3.{param}"),
)

# Tensors MiDaS files hold that depth estimation does not use, and why.
MIDAS_UNUSED = (
    ("pretrained.model.head.{any}", "ImageNet classifier"),
    ("pretrained.model.norm.{param}", "the classifier's final norm"),
    (BLOCK + "attn_mask", "shift masks, rebuilt for every input size"),
    (BLOCK + "attn.relative_position_index", "derived from the window size"),
    (BLOCK + "attn.relative_coords_table", "derived from the window size"),
    ("scratch.refinenet4.resConfUnit1.{any}", "the deepest fusion block has no skip input"),
)

_PLACEHOLDERS = {"stage": r"\d+", "block": r"\d+", "level": r"[1-9]", "param": r"weight|bias", "any": r".+"}


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded; the message is one line naming the file and the fault."""


def _template_regex(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, regex in _PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{regex})")
    return re.compile(pattern)


_BLOCK_KEY = re.compile(r"pretrained\.model\.layers\.(?P<stage>\d+)\.blocks\.(?P<block>\d+)\.")
_MIDAS_MAPPING = [(_template_regex(midas), ours) for midas, ours in MIDAS_KEY_TABLE]
_MIDAS_UNUSED = [(_template_regex(template), reason) for template, reason in MIDAS_UNUSED]


def midas_to_native_key(midas_key: str) -> str | None:
    """Our name for a MiDaS tensor name, or None if the table does not know it."""
    for regex, ours in _MIDAS_MAPPING:
        match = regex.fullmatch(midas_key)
        if match:
            fields = match.groupdict()
            if "level" in fields:
                fields["index"] = int(fields["level"]) - 1
            return ours.format(**fields)
    return None


def unused_reason(midas_key: str) -> str | None:
    for regex, reason in _MIDAS_UNUSED:
        if regex.fullmatch(midas_key):
            return reason
    return None


def _summarize(keys, limit: int = 5) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


# --------------------------------------------------------------------------- reading the file


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Plain {name: tensor} dict from a torch.save file, never unpickling code."""
    try:
        try:
            state_dict = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            state_dict = torch.load(path, map_location="cpu", weights_only=True)  # legacy, non-zip file
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: holds Python objects besides tensors; refusing to unpickle it "
            f"({str(error).splitlines()[0][:160]})"
        ) from None
    except Exception as error:  # torch raises many types for damaged files
        reason = (str(error).splitlines() or [type(error).__name__])[0][:160]
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, corrupt or truncated? ({reason})") from None
    if not isinstance(state_dict, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state_dict.items()
    ):
        raise CheckpointError(f"{path}: not a plain state dict of named tensors")
    return state_dict


def identify_family(state_dict: dict) -> str | None:
    """A short description of what a non-SwinV2-DPT state dict looks like, or None if it is one."""
    keys = state_dict.keys()
    has = lambda fragment: any(fragment in key for key in keys)  # noqa: E731
    if has("attn.cpb_mlp.") and has("layers.0.blocks.0.") and has("scratch.output_conv."):
        return None
    if has("relative_position_bias_table") and has("layers.0.blocks.0."):
        return "a Swin (V1) model"
    if has("pretrained.model.blocks.") or has(".cls_token"):
        return "a ViT/BEiT model"
    if has("scratch.") and has("pretrained."):
        return "a DPT model with another backbone"
    if has("attn.cpb_mlp."):
        return "a SwinV2 encoder without the DPT depth decoder (a classifier?)"
    return "not a SwinV2-DPT model"


# --------------------------------------------------------------------------- configuration


def pretrained_windows(window_size: int, native_size: int, patch_size: int, stage_count: int) -> tuple[int, ...]:
    """Window each stage had in pre-training; the files do not store it.

    The released window-24 models (base/large at 384) were fine-tuned from window-12 ImageNet-22k
    models trained at half the resolution (timm's *_window12to24_192to384): a stage whose grid was
    smaller than 12 there had a window of its grid. Window-16 models (tiny at 256) were trained with
    their own window, which the position bias then uses (0 = none).
    """
    if window_size != 24:
        return (0,) * stage_count
    pretrain_grid = native_size // 2 // patch_size
    return tuple(min(12, pretrain_grid // 2**stage) for stage in range(stage_count))


def _native_grid_from_masks(state_dict: dict, depths, patch_size: int) -> tuple[int, int]:
    """(window size, native image side) read off the saved shift masks (windows, W*W, W*W)."""
    found = set()
    for stage, depth in enumerate(depths):
        for block in range(1, depth, 2):
            mask = state_dict.get(BLOCK.format(stage=stage, block=block) + "attn_mask")
            if mask is None:
                continue
            window, windows_per_side = math.isqrt(mask.shape[-1]), math.isqrt(mask.shape[0])
            if mask.ndim != 3 or window**2 != mask.shape[-1] or windows_per_side**2 != mask.shape[0]:
                raise CheckpointError(f"attn_mask of stage {stage} block {block} has shape {tuple(mask.shape)}")
            found.add((window, window * windows_per_side * patch_size * 2**stage))
    if len(found) != 1:
        reason = "the file has no attn_mask buffers" if not found else f"masks disagree: {sorted(found)}"
        raise CheckpointError(f"cannot tell the window size and native resolution ({reason})")
    return found.pop()


def infer_midas_config(state_dict: dict) -> SwinV2DPTConfig:
    """Whole architecture from the tensors alone (widths, depths, heads, window, native size)."""
    block_ids = [_BLOCK_KEY.match(key) for key in state_dict]
    stage_count = 1 + max(int(match["stage"]) for match in block_ids if match)
    depths = tuple(
        len({match["block"] for match in block_ids if match and int(match["stage"]) == stage})
        for stage in range(stage_count)
    )

    def shape(key):
        if key not in state_dict:
            raise CheckpointError(f"missing tensor {key}")
        return state_dict[key].shape

    patch_size = shape("pretrained.model.patch_embed.proj.weight")[-1]
    first_block = [BLOCK.format(stage=stage, block=0) for stage in range(stage_count)]
    window_size, native_size = _native_grid_from_masks(state_dict, depths, patch_size)
    try:
        return SwinV2DPTConfig(
            embed_dims=tuple(shape(block + "norm1.weight")[0] for block in first_block),
            depths=depths,
            num_heads=tuple(shape(block + "attn.logit_scale")[0] for block in first_block),
            window_size=window_size,
            pretrained_window_sizes=pretrained_windows(window_size, native_size, patch_size, stage_count),
            native_size=native_size,
            patch_size=patch_size,
            mlp_hidden_dims=tuple(shape(block + "mlp.fc1.weight")[0] for block in first_block),
            fusion_channels=shape("scratch.layer1_rn.weight")[0],
            head_channels=(shape("scratch.output_conv.0.weight")[0], shape("scratch.output_conv.2.weight")[0]),
        )
    except ValueError as error:
        raise CheckpointError(f"inconsistent architecture: {error}") from None


# --------------------------------------------------------------------------- mapping and building


def map_midas_state_dict(state_dict: dict) -> dict[str, torch.Tensor]:
    """MiDaS names -> our names; known-unused tensors dropped, unknown ones refused."""
    mapped, unknown = {}, []
    for key, tensor in state_dict.items():
        if unused_reason(key):
            continue
        ours = midas_to_native_key(key)
        if ours is None:
            unknown.append(key)
        else:
            mapped[ours] = tensor
    if unknown:
        raise CheckpointError(f"{len(unknown)} unexpected tensors: {_summarize(unknown)}")
    return mapped


def build_model(config: SwinV2DPTConfig, native_state_dict: dict) -> SwinV2DPT:
    """SwinV2DPT holding exactly `native_state_dict` (checked: every key, every shape)."""
    with torch.device("meta"):
        model = SwinV2DPT(config)
    expected = model.state_dict()
    missing = expected.keys() - native_state_dict.keys()
    extra = native_state_dict.keys() - expected.keys()
    if missing:
        raise CheckpointError(f"{len(missing)} missing tensors: {_summarize(missing)}")
    if extra:
        raise CheckpointError(f"{len(extra)} tensors the model does not have: {_summarize(extra)}")
    wrong = [
        f"{key} {tuple(native_state_dict[key].shape)} (expected {tuple(tensor.shape)})"
        for key, tensor in expected.items()
        if native_state_dict[key].shape != tensor.shape
    ]
    if wrong:
        raise CheckpointError(f"{len(wrong)} tensors of the wrong shape: {_summarize(wrong, 3)}")
    non_finite = [key for key, tensor in native_state_dict.items() if not torch.isfinite(tensor).all()]
    if non_finite:
        raise CheckpointError(f"{len(non_finite)} tensors hold NaN or Inf (damaged file?): {_summarize(non_finite)}")
    model.load_state_dict(native_state_dict, assign=True)
    return model


def load_model(path, device="cpu", dtype=torch.float32) -> SwinV2DPT:
    """Load a MiDaS v3.1 SwinV2-DPT checkpoint; returns the model in eval mode on device/dtype.

    The configuration is inferred from the tensors (model.config); `model.checkpoint_format`
    says what kind of file it was. Raises CheckpointError with a one-line reason otherwise.
    """
    path = Path(path)
    if isinstance(dtype, str):
        dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype, dtype)
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")

    state_dict = read_state_dict(path)
    family = identify_family(state_dict)
    if family:
        raise CheckpointError(f"{path}: not a MiDaS SwinV2-DPT checkpoint ({family})")
    try:
        config = infer_midas_config(state_dict)
        model = build_model(config, map_midas_state_dict(state_dict))
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    model.checkpoint_format = "midas-pt"
    return model.to(device=device).set_dtype(dtype).eval()
