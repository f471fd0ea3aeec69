"""Writing checkpoints: our own safetensors format, and the Hugging Face transformers layout.

Our format is one `.safetensors` file holding exactly the tensors SwinV2DPT uses, under its own
module names, with the configuration (JSON) and a format version in the metadata: loading it needs
no inference, no name mapping and no pickle. The Hugging Face export writes a folder that
`transformers.DPTForDepthEstimation.from_pretrained` reads (config.json + model.safetensors).
Both are written atomically: into a temp file or folder beside the target, then renamed.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .. import __version__
from ..errors import UserError
from ..io.atomic import reserve_temp, usual_mode
from ..io.outputs import OutputRule, check_writable_folder
from .checkpoint import (
    HF_WEIGHT_FILES,
    NATIVE_FORMAT_NAME,
    NATIVE_FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    read_checked_checkpoint,
)
from ..devices import DTYPES
from .key_table import HF, from_native
from ..model import SwinV2DPTConfig

TARGETS = ("muggled", "hf")


class ConversionError(UserError):
    """A conversion that cannot be done; the message is one line."""


@dataclass
class ConversionReport:
    source: Path
    target: Path
    source_format: str
    target_format: str
    release_name: str  # config.release_name: 'tiny-256' or 'custom'
    dtype: str
    tensors_kept: int
    dropped: dict  # reason -> number of source tensors left out
    bytes_before: int
    bytes_after: int

    def lines(self) -> list[str]:
        dropped = "; ".join(f"{count} {reason}" for reason, count in self.dropped.items()) or "none"
        return [
            f"{self.source} ({self.source_format}, {self.release_name}) -> {self.target} ({self.target_format}, {self.dtype})",
            f"  tensors kept: {self.tensors_kept}; dropped: {dropped}",
            f"  size: {self.bytes_before / 2**20:.1f} MiB -> {self.bytes_after / 2**20:.1f} MiB",
        ]


WRITTEN_BY = f"muggled_swinv2 {__version__}"  # in the metadata of every safetensors file we write


def native_metadata(config: SwinV2DPTConfig) -> dict[str, str]:
    return {
        "format": NATIVE_FORMAT_NAME,
        "format_version": NATIVE_FORMAT_VERSION,
        "config": json.dumps(config.to_dict()),
        "written_by": WRITTEN_BY,
    }


def our_metadata(path: Path) -> dict[str, str] | None:
    """The metadata of a safetensors file this tool wrote (our mark in it; only the header is
    read), or None for any other file."""
    try:
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None
    return metadata if metadata.get("written_by", "").startswith("muggled_swinv2 ") else None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cast(state_dict: dict, dtype: torch.dtype) -> dict:
    """Weight matrices and kernels in `dtype`; vectors (norms, biases, logit scales) and the small
    position-bias MLPs stay float32. Those are under 1% of the bytes but where half precision
    hurts most: a gain of 1.0 +- 0.4% in every post-norm compounds through the blocks."""
    return {
        key: tensor.to(dtype if tensor.ndim >= 2 and ".cpb_mlp." not in key else torch.float32).contiguous()
        for key, tensor in state_dict.items()
    }


def _write_error(path, error: Exception) -> ConversionError:
    reason = getattr(error, "strerror", None) or (str(error).strip().splitlines() or [type(error).__name__])[0]
    return ConversionError(f"{path}: cannot write ({reason})")


def save_native(checkpoint: Checkpoint, path, dtype: torch.dtype = torch.float32) -> None:
    """Our format: only the model's tensors, in `dtype`, configuration in the metadata; moved into
    place under the output rule checked again (a file someone else put there meanwhile is kept:
    OutputError) and recorded as ours in the folder's ledger (io/outputs.py)."""
    try:
        temp = reserve_temp(path)
    except OSError as error:
        raise _write_error(path, error) from None
    try:
        save_file(_cast(checkpoint.state_dict, dtype), str(temp), metadata=native_metadata(checkpoint.config))
        OutputRule().publish_output(temp, path)
    except (OSError, SafetensorError) as error:  # a full disk, say
        temp.unlink(missing_ok=True)
        raise _write_error(path, error) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def hf_config_json(config: SwinV2DPTConfig) -> dict:
    """transformers DPTConfig (SwinV2 backbone) for our configuration."""
    mlp_ratios = {hidden / dim for hidden, dim in zip(config.mlp_hidden_dims, config.embed_dims)}
    if len(mlp_ratios) != 1 or config.head_channels != (config.fusion_channels // 2, 32):
        raise ConversionError("this model's MLP or head widths have no Hugging Face DPTConfig equivalent")
    return {
        "model_type": "dpt",
        "architectures": ["DPTForDepthEstimation"],
        "backbone_config": {
            "model_type": "swinv2",
            "image_size": [config.native_size, config.native_size],
            "patch_size": config.patch_size,
            "embed_dim": config.embed_dims[0],
            "depths": list(config.depths),
            "num_heads": list(config.num_heads),
            "window_size": config.window_size,
            "pretrained_window_sizes": list(config.pretrained_window_sizes),
            "mlp_ratio": mlp_ratios.pop(),
            "qkv_bias": True,
            "hidden_act": "gelu",
            "drop_path_rate": 0.0,
            "out_features": [f"stage{index + 1}" for index in range(len(config.depths))],
        },
        "neck_hidden_sizes": list(config.embed_dims),
        "fusion_hidden_size": config.fusion_channels,
        "use_batch_norm_in_fusion_residual": False,
        "add_projection": False,
        "head_in_index": -1,
        "is_hybrid": False,
    }


def hf_preprocessor_json(config: SwinV2DPTConfig) -> dict:
    """transformers' DPTImageProcessor settings, as the published Intel/dpt-swinv2-* models carry
    them: MiDaS's square pipeline (squash to the native square, bicubic, (x - 0.5) / 0.5), so that
    `transformers.pipeline("depth-estimation", model=FOLDER)` works on the exported folder."""
    return {
        "image_processor_type": "DPTImageProcessor",
        "do_resize": True,
        "size": {"height": config.native_size, "width": config.native_size},
        "resample": 3,  # PIL bicubic
        "keep_aspect_ratio": False,
        "ensure_multiple_of": config.stride,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_pad": False,
    }


def hf_state_dict(checkpoint: Checkpoint, dtype: torch.dtype) -> dict:
    """Our tensors under transformers' names (q/k/v split apart)."""
    tensors = from_native(_cast(checkpoint.state_dict, dtype), HF)
    # transformers builds a first residual unit for its deepest fusion layer too, though it never
    # runs (that layer has no skip input): zeros, so that it loads without "newly initialised" noise.
    channels = checkpoint.config.fusion_channels
    for conv in ("convolution1", "convolution2"):
        prefix = f"neck.fusion_stage.layers.0.residual_layer1.{conv}."
        tensors[prefix + "weight"] = torch.zeros(channels, channels, 3, 3, dtype=dtype)
        tensors[prefix + "bias"] = torch.zeros(channels, dtype=dtype)
    return tensors


HF_FOLDER_FILES = {"config.json", "preprocessor_config.json", *HF_WEIGHT_FILES}


def save_hf(checkpoint: Checkpoint, folder, dtype: torch.dtype = torch.float32) -> None:
    """A Hugging Face model folder (config.json, preprocessor_config.json, model.safetensors),
    replacing `folder` whole.

    An existing folder is replaced only if it holds nothing but a model's files (HF_FOLDER_FILES),
    written by this tool (see is_our_model_folder): anything else in it would be deleted with it."""
    folder = Path(folder).resolve()
    if folder.exists() and not is_our_model_folder(folder):
        raise ConversionError(f"{folder}: exists and was not written by muggled-swinv2; refusing to replace it")
    config_json = hf_config_json(checkpoint.config) | {"torch_dtype": str(dtype).removeprefix("torch.")}
    texts = {"config.json": json.dumps(config_json, indent=2) + "\n",
             "preprocessor_config.json": json.dumps(hf_preprocessor_json(checkpoint.config), indent=2) + "\n"}
    # The weights' mark carries each other file's SHA-256: a file edited since is then not ours (is_our_model_folder).
    files_sha256 = json.dumps({name: sha256_hex(text.encode()) for name, text in texts.items()})
    try:
        temp = Path(tempfile.mkdtemp(prefix=f".{folder.name[:64]}.", suffix=".partial", dir=folder.parent))
    except OSError as error:
        raise _write_error(folder, error) from None
    try:
        save_file(hf_state_dict(checkpoint, dtype), str(temp / "model.safetensors"),
                  metadata={"format": "pt", "written_by": WRITTEN_BY, "files_sha256": files_sha256})
        for name, text in texts.items():
            (temp / name).write_bytes(text.encode())
        for child in temp.iterdir():  # safetensors creates its file private (0600): the usual mode, as for any output
            os.chmod(child, usual_mode())
        os.chmod(temp, usual_mode(0o777))  # mkdtemp makes it private
        if folder.exists():  # only reached with overwrite: swap the old folder out, then delete it
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            os.replace(temp, folder)
            shutil.rmtree(old)
        else:
            os.replace(temp, folder)
    except (OSError, SafetensorError) as error:
        shutil.rmtree(temp, ignore_errors=True)
        raise _write_error(folder, error) from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def is_our_model_folder(folder: Path) -> bool:
    """Whether --overwrite may replace this Hugging Face folder: it holds nothing but a model's
    files, its model.safetensors carries our mark, and each other file is as we wrote it (the
    SHA-256 in the mark); or it is empty: nothing is lost. A folder holding other files, or a file
    changed since, is refused here, naming them (they would be deleted with it)."""
    others = sorted(child.name for child in folder.iterdir() if child.name not in HF_FOLDER_FILES)
    if others:
        listed = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise ConversionError(f"{folder}: holds other files ({listed}); refusing to replace it, choose a new folder")
    if not any(folder.iterdir()):
        return True
    metadata = our_metadata(folder / "model.safetensors")
    if metadata is None:
        return False
    try:
        files_sha256 = json.loads(metadata.get("files_sha256", "{}"))
    except ValueError:
        files_sha256 = {}
    for child in sorted(folder.iterdir()):
        if child.name == "model.safetensors":
            continue
        if child.name not in files_sha256 or not child.is_file() or sha256_hex(child.read_bytes()) != files_sha256[child.name]:
            raise ConversionError(f"{child}: changed since muggled-swinv2 wrote it (or not written by it); "
                                  f"refusing to replace its folder, choose a new folder")
    return True


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(child.stat().st_size for child in path.rglob("*") if child.is_file())
    return path.stat().st_size


def convert(source, target, dtype: str = "float32", to: str = "muggled", overwrite: bool = False) -> ConversionReport:
    """Any checkpoint we read -> our safetensors file (to="muggled") or a Hugging Face folder ("hf")."""
    source, target = Path(source), Path(target)
    if dtype not in DTYPES:
        raise ConversionError(f"--dtype {dtype}: choose from {', '.join(DTYPES)}")
    if to not in TARGETS:
        raise ConversionError(f"--to {to}: choose from {', '.join(TARGETS)}")
    if to == "muggled" and target.is_dir():
        raise ConversionError(f"{target}: is a folder; give the .safetensors file to write (or --to hf)")
    if to == "hf" and target.exists() and not target.is_dir():
        raise ConversionError(f"{target}: is a file; --to hf writes a folder")
    refusal = OutputRule(overwrite, inputs={source: "the input"}).refusal(
        target, "OUT", is_ours=is_our_model_folder if to == "hf" else None)
    if refusal:
        raise ConversionError(refusal)
    if to == "muggled" and target.suffix.lower() != ".safetensors":  # a .pt name would promise a pickle
        raise ConversionError(f"{target}: convert writes a .safetensors file; name OUT NAME.safetensors "
                              f"(or --to hf for a Hugging Face folder)")
    check_writable_folder(target.parent, "OUT folder")  # made with its missing parents, as for every output

    checkpoint = read_checked_checkpoint(source)  # the loader's checks: what we write will load
    if to == "muggled":
        save_native(checkpoint, target, DTYPES[dtype])
        target_format = f"{NATIVE_FORMAT_NAME} safetensors v{NATIVE_FORMAT_VERSION}"
    else:
        save_hf(checkpoint, target, DTYPES[dtype])
        target_format = "Hugging Face DPTForDepthEstimation folder"
    return ConversionReport(
        source=source,
        target=target,
        source_format=checkpoint.format,
        target_format=target_format,
        release_name=checkpoint.config.release_name,
        dtype=dtype,
        tensors_kept=len(checkpoint.state_dict),
        dropped=checkpoint.dropped,
        bytes_before=_size(source),
        bytes_after=_size(target),
    )


__all__ = ["ConversionError", "ConversionReport", "CheckpointError", "convert", "save_hf", "save_native"]
