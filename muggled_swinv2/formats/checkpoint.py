"""Checkpoint files -> a configuration and our tensors: recognising the format, configuring, key mapping.

Formats, recognised from the content (never the file name):
- MiDaS v3.1 `.pt` (a plain state dict; the configuration is inferred from the tensors);
- our own `.safetensors` (only the tensors the model uses, the configuration in its metadata);
- Hugging Face transformers DPT-SwinV2: a folder with config.json and model.safetensors or
  pytorch_model.bin, or the safetensors file alone.
PyTorch files are read with `weights_only=True` (no code is ever unpickled) and memory-mapped.
Names are mapped through the one table in key_table.py. Building the model on them, choosing the
device and precision and accelerating it is the build step's (muggled_swinv2/build.py).
"""

import json
import math
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..errors import UserError
from .weights import onnx_graph_refusal
from .key_table import HF, MIDAS, KeyMappingError, summarize, to_native
from ..model import SwinV2DPT, SwinV2DPTConfig
from ..model.config import RELEASES

NATIVE_FORMAT_NAME = "muggled_swinv2"
NATIVE_FORMAT_VERSION = "1"
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # in a Hugging Face model folder, preferred first
_MIDAS_BLOCK_KEY = re.compile(r"pretrained\.model\.layers\.(?P<stage>\d+)\.blocks\.(?P<block>\d+)\.")
_HF_BLOCK_KEY = re.compile(r"backbone\.encoder\.layers\.(?P<stage>\d+)\.blocks\.(?P<block>\d+)\.")
# Hugging Face files alone carry no window or resolution: those of the published conversions
# (release.hf_id), by width.
_HF_PUBLISHED = {
    release.config.embed_dims[0]: dict(
        window_size=release.config.window_size, native_size=release.native_size,
        pretrained_window_sizes=release.config.pretrained_window_sizes,
    )
    for release in RELEASES.values()
}


class CheckpointError(UserError):
    """A checkpoint that cannot be loaded; the message is one line naming the file and the fault."""


@dataclass
class Checkpoint:
    """What a file held, in our terms."""

    config: SwinV2DPTConfig
    state_dict: dict  # our names -> tensors
    format: str  # midas-pt, muggled-safetensors, hf-directory, hf-safetensors, ...
    dropped: dict = field(default_factory=dict)  # reason -> number of tensors not used


# --------------------------------------------------------------------------- reading files


def sniff_container(path: Path) -> str:
    """'directory', 'safetensors' or 'torch', from the first bytes of the file."""
    if path.is_dir():
        return "directory"
    if refusal := onnx_graph_refusal(path):
        raise CheckpointError(refusal)
    with open(path, "rb") as file:
        head = file.read(9)
    size = path.stat().st_size
    if not head:
        raise CheckpointError(f"{path}: empty file, corrupt or truncated?")
    header_length = int.from_bytes(head[:8].ljust(8, b"\0"), "little")
    if head[8:9] == b"{" and 2 <= header_length <= size - 8:  # 8-byte length, then a JSON header
        return "safetensors"
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # torch.save zip, or a legacy pickle
        return "torch"
    raise CheckpointError(
        f"{path}: not a checkpoint (expected a PyTorch .pt/.bin, a .safetensors file or a Hugging Face "
        f"model folder), corrupt or truncated?"
    )


def first_sentence(text: str, limit: int = 160) -> str:
    """The first sentence of an error message (terminal colour codes dropped), cut at a word if long."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()
    sentence = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0].strip().rstrip(".")
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0] + " ..."
    return sentence


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Plain {name: tensor} dict from a torch.save file, never unpickling code."""
    try:
        # torch warns about unusual pickle protocols before refusing them: the error below says it all.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            if path.name.endswith(".safetensors"):  # torch.load would go by this name, not the content
                with open(path, "rb") as file:
                    state_dict = torch.load(file, map_location="cpu", weights_only=True)
            else:
                try:
                    state_dict = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError as error:
                    if "mmap" not in str(error):
                        raise
                    state_dict = torch.load(path, map_location="cpu", weights_only=True)  # legacy, non-zip file
    except pickle.UnpicklingError as error:
        named = re.search(r"GLOBAL ([\w.]+)", str(error))  # the class torch refused, when it says which
        needs = f" (it asks for {named.group(1)})" if named else ""
        raise CheckpointError(f"{path}: holds Python objects besides tensors; refusing to unpickle it{needs}") from None
    except Exception as error:  # torch raises many types for damaged files
        reason = first_sentence(str(error)) or type(error).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, corrupt or truncated? ({reason})") from None
    if not isinstance(state_dict, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state_dict.items()
    ):
        raise CheckpointError(f"{path}: not a plain state dict of named tensors")
    return state_dict


def _aligned(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor, copied if its data does not start on a 64-byte boundary.

    safetensors packs tensors back to back, so memory-mapped ones are often unaligned. CPU kernels
    take other code paths for unaligned data, which changes results in the last bits: aligned
    weights make every format compute bit for bit the same numbers.
    """
    return tensor if tensor.data_ptr() % 64 == 0 else tensor.clone()


def read_safetensors(path: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file (memory-mapped)."""
    try:
        with safe_open(path, framework="pt") as file:
            return {key: _aligned(file.get_tensor(key)) for key in file.keys()}, file.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        reason = (str(error).splitlines() or [type(error).__name__])[0][:160]
        raise CheckpointError(f"{path}: not a readable safetensors file, corrupt or truncated? ({reason})") from None


def count_blocks(state_dict: dict, block_key: re.Pattern) -> tuple[int, ...]:
    """Blocks per stage, from the names of the tensors."""
    matches = [match for match in map(block_key.match, state_dict) if match]
    if not matches:
        raise CheckpointError("no transformer blocks found")
    stage_count = 1 + max(int(match["stage"]) for match in matches)
    return tuple(len({m["block"] for m in matches if int(m["stage"]) == stage}) for stage in range(stage_count))


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
    return f"unrecognised tensor names such as {min(keys, default='(none)')}"


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
            mask = state_dict.get(f"pretrained.model.layers.{stage}.blocks.{block}.attn_mask")
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


def _shapes_of(state_dict: dict):
    """shape(key) of a tensor the configuration is read from; a missing one is a CheckpointError."""

    def shape(key):
        if key not in state_dict:
            raise CheckpointError(f"missing tensor {key}")
        return state_dict[key].shape

    return shape


def infer_midas_config(state_dict: dict) -> SwinV2DPTConfig:
    """Whole architecture from the tensors alone (widths, depths, heads, window, native size)."""
    depths = count_blocks(state_dict, _MIDAS_BLOCK_KEY)
    stage_count = len(depths)

    shape = _shapes_of(state_dict)
    patch_size = shape("pretrained.model.patch_embed.proj.weight")[-1]
    first_block = [f"pretrained.model.layers.{stage}.blocks.0." for stage in range(stage_count)]
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


# --------------------------------------------------------------------------- checking


def check_tensors(config: SwinV2DPTConfig, native_state_dict: dict) -> None:
    """`native_state_dict` holds exactly the model's tensors for `config`: every key, every shape,
    all finite; or a CheckpointError saying what is wrong."""
    with torch.device("meta"):
        expected = SwinV2DPT(config).state_dict()
    missing = expected.keys() - native_state_dict.keys()
    extra = native_state_dict.keys() - expected.keys()
    if missing:
        raise CheckpointError(f"{len(missing)} missing tensors: {summarize(missing)}")
    if extra:
        raise CheckpointError(f"{len(extra)} tensors the model does not have: {summarize(extra)}")
    wrong = [
        f"{key} {tuple(native_state_dict[key].shape)} (expected {tuple(tensor.shape)})"
        for key, tensor in expected.items()
        if native_state_dict[key].shape != tensor.shape
    ]
    if wrong:
        raise CheckpointError(f"{len(wrong)} tensors of the wrong shape: {summarize(wrong, 3)}")
    non_finite = [key for key, tensor in native_state_dict.items() if not torch.isfinite(tensor).all()]
    if non_finite:
        raise CheckpointError(f"{len(non_finite)} tensors hold NaN or Inf (damaged file?): {summarize(non_finite)}")


def hf_config(config_json: dict, state_dict: dict) -> SwinV2DPTConfig:
    """Our configuration from a transformers DPTConfig dict (or from the tensors if it is empty)."""
    if config_json:
        backbone = config_json.get("backbone_config") or {}
        if config_json.get("model_type") != "dpt" or backbone.get("model_type") != "swinv2":
            kind = f"{config_json.get('model_type')} with a {backbone.get('model_type')} backbone"
            raise CheckpointError(f"config.json describes {kind}, not DPT with a SwinV2 backbone")
        try:
            embed, depths = backbone["embed_dim"], tuple(backbone["depths"])
            image_size = backbone.get("image_size", 224)
            sizes = image_size if isinstance(image_size, (list, tuple)) else (image_size, image_size)
            mlp_ratio = backbone.get("mlp_ratio", 4.0)
            return SwinV2DPTConfig(
                embed_dims=tuple(embed * 2**stage for stage in range(len(depths))),
                depths=depths,
                num_heads=tuple(backbone["num_heads"]),
                window_size=backbone["window_size"],
                pretrained_window_sizes=tuple(backbone.get("pretrained_window_sizes") or (0,) * len(depths)),
                native_size=max(sizes),
                patch_size=backbone.get("patch_size", 4),
                mlp_hidden_dims=tuple(int(embed * 2**stage * mlp_ratio) for stage in range(len(depths))),
                fusion_channels=config_json.get("fusion_hidden_size", 256),
                head_channels=(config_json.get("fusion_hidden_size", 256) // 2, 32),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"config.json does not describe a usable SwinV2 backbone ({error})") from None
    if not any(".attention.self.continuous_position_bias_mlp." in key for key in state_dict):
        raise CheckpointError("not a SwinV2-DPT checkpoint (a Hugging Face model with another backbone?)")
    depths = count_blocks(state_dict, _HF_BLOCK_KEY)
    first_block = [f"backbone.encoder.layers.{stage}.blocks.0." for stage in range(len(depths))]

    shape = _shapes_of(state_dict)
    embed_dims = tuple(shape(block + "layernorm_before.weight")[0] for block in first_block)
    if embed_dims[0] not in _HF_PUBLISHED:
        raise CheckpointError("a Hugging Face checkpoint of an unpublished width needs its config.json beside it")
    try:
        return SwinV2DPTConfig(
            embed_dims=embed_dims,
            depths=depths,
            num_heads=tuple(shape(block + "attention.self.logit_scale")[0] for block in first_block),
            mlp_hidden_dims=tuple(shape(block + "intermediate.dense.weight")[0] for block in first_block),
            patch_size=shape("backbone.embeddings.patch_embeddings.projection.weight")[-1],
            fusion_channels=shape("neck.convs.0.weight")[0],
            head_channels=(shape("head.head.0.weight")[0], shape("head.head.2.weight")[0]),
            **_HF_PUBLISHED[embed_dims[0]],
        )
    except ValueError as error:
        raise CheckpointError(f"inconsistent architecture: {error}") from None


def native_config(metadata: dict) -> SwinV2DPTConfig:
    if metadata.get("format_version") != NATIVE_FORMAT_VERSION:
        raise CheckpointError(
            f"format version {metadata.get('format_version')!r} is not one this muggled_swinv2 reads "
            f"({NATIVE_FORMAT_VERSION}); upgrade muggled_swinv2"
        )
    try:
        return SwinV2DPTConfig.from_dict(json.loads(metadata["config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"unreadable configuration in the metadata ({error})") from None


def _mapped(state_dict: dict, column: int) -> tuple[dict, dict]:
    try:
        return to_native(state_dict, column)
    except KeyMappingError as error:
        raise CheckpointError(str(error)) from None


def check_checkpoint_path(path: Path) -> str:
    """The checks of read_checkpoint that read no tensors (a missing path, an ONNX graph, a folder
    that is no Hugging Face model, a file of another kind): CheckpointError (one line); else the
    container (sniff_container). Commands run them before checking their outputs, so that a wrong
    input is named as such."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    container = sniff_container(path)
    if container == "directory" and not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: a folder without config.json, not a Hugging Face model folder")
    return container


def read_checkpoint(path) -> Checkpoint:
    """Any supported checkpoint -> configuration + our state dict (not yet a model)."""
    path = Path(path)
    container = check_checkpoint_path(path)
    config_json = {}
    source = path
    if container == "directory":
        try:
            config_json = json.loads((path / "config.json").read_text())
        except (OSError, ValueError) as error:
            raise CheckpointError(f"{path}/config.json: not readable JSON ({error})") from None
        candidates = [path / name for name in HF_WEIGHT_FILES if (path / name).is_file()]
        if not candidates:
            raise CheckpointError(f"{path}: holds no model.safetensors or pytorch_model.bin")
        source = candidates[0]
        container = sniff_container(source)
    try:
        if container == "safetensors":
            state_dict, metadata = read_safetensors(source)
        else:
            state_dict, metadata = read_state_dict(source), {}
        suffix = "directory" if path.is_dir() else ("safetensors" if container == "safetensors" else "pt")
        if metadata.get("format") == NATIVE_FORMAT_NAME:
            config = native_config(metadata)
            return Checkpoint(config, state_dict, "muggled-safetensors")
        if config_json or any(key.startswith("backbone.embeddings.") for key in state_dict):
            config = hf_config(config_json, state_dict)  # checks the model family first
            if any(key.endswith("attention.self.key.bias") for key in state_dict):
                raise CheckpointError("has a key bias, which SwinV2 does not have")
            native, dropped = _mapped(state_dict, HF)
            return Checkpoint(config, native, f"hf-{suffix}", dropped)
        family = identify_family(state_dict)
        if family:
            raise CheckpointError(f"not a SwinV2-DPT checkpoint ({family})")
        config = infer_midas_config(state_dict)
        native, dropped = _mapped(state_dict, MIDAS)
        return Checkpoint(config, native, f"midas-{suffix}", dropped)
    except CheckpointError as error:
        message = str(error)
        raise CheckpointError(message if message.startswith(str(source)) else f"{source}: {message}") from None


def read_checked_checkpoint(path) -> Checkpoint:
    """read_checkpoint, then check_tensors: every tensor present, of the right shape and finite,
    or a CheckpointError naming the file."""
    checkpoint = read_checkpoint(path)
    try:
        check_tensors(checkpoint.config, checkpoint.state_dict)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from None
    return checkpoint
