"""What `info` says about a checkpoint: its file, format, stored precision and architecture."""

from pathlib import Path

import torch

from .checkpoint import read_checked_checkpoint
from ..model import SwinV2DPT


def stored_precision(state_dict: dict) -> str:
    """The dtypes a checkpoint stores, by share of the bytes: 'float16 (98%), float32 (2%)'."""
    by_dtype = {}
    for tensor in state_dict.values():
        name = str(tensor.dtype).removeprefix("torch.")
        by_dtype[name] = by_dtype.get(name, 0) + tensor.numel() * tensor.element_size()
    total = sum(by_dtype.values()) or 1
    ranked = sorted(by_dtype.items(), key=lambda item: -item[1])
    if len(ranked) == 1:
        return ranked[0][0]
    return ", ".join(f"{name} ({size / total:.0%} of the bytes)" for name, size in ranked)


def file_size(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (a Hugging Face model folder)."""
    if path.is_dir():
        return sum(child.stat().st_size for child in path.rglob("*") if child.is_file())
    return path.stat().st_size


def describe_checkpoint(path) -> list[tuple[str, object]]:
    """(name, value) rows describing a checkpoint (checked as the loader checks it)."""
    checkpoint = read_checked_checkpoint(path)
    config = checkpoint.config
    with torch.device("meta"):  # shapes only
        parameters = sum(tensor.numel() for tensor in SwinV2DPT(config).parameters())
    return [
        ("file", path),
        ("file size", f"{file_size(Path(path)) / 2**20:.1f} MiB"),
        ("format", checkpoint.format),
        ("stored precision", stored_precision(checkpoint.state_dict)),
        ("variant", config.release_name),  # the label `info` has always printed
        ("widths", ", ".join(map(str, config.embed_dims))),
        ("depths", ", ".join(map(str, config.depths))),
        ("heads", ", ".join(map(str, config.num_heads))),
        ("window", config.window_size),
        ("pretrained windows", ", ".join(str(size or "-") for size in config.pretrained_window_sizes)),
        ("native size", f"{config.native_size}x{config.native_size}"),
        ("parameters", f"{parameters / 1e6:.1f} M"),
    ]
