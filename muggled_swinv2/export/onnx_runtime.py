"""ONNX Runtime as the engine of the `image` and `video` jobs: `--engine onnx` (CPU, float32).

The jobs are given an `OnnxRuntimeEngine` where they would take our model: it has the model's
`config`, its (CPU, float32) parameters and `forward((B, 3, H, W)) -> (B, H, W)`, so reading,
preprocessing, batching, the memory check and writing stay the jobs' own (jobs/images.py,
jobs/video.py). Only the forward pass differs: the network is exported once per input size
(SwinV2's windows, shifts and masks are fixed at export) by `export_onnx`, with a dynamic batch and
its own check against PyTorch, into a cache folder, and run in an ONNX Runtime CPU session on
PyTorch's number of threads.

Cache: <cache folder>/onnx/<variant>-<weights key>-<H>x<W>.onnx, in the package's user cache folder
(formats.weights.cache_folder: $MUGGLED_SWINV2_CACHE, else $XDG_CACHE_HOME/muggled_swinv2, else
~/.cache/muggled_swinv2). The
weights key hashes the configuration, the export format, this package's version and every weight
tensor, so the same weights read from any file format share their exports, and changed weights
never meet an old export. A cached file that is damaged, or whose metadata does not match, is
exported again.

Needs the `[onnx]` extra; nothing else in the package imports this.
"""

import hashlib
import json
import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import __version__
from ..errors import first_line, one_line
from ..formats.weights import cache_folder
from .onnx import FORMAT_NAME, FORMAT_VERSION, ExportError, export_onnx, read_metadata, session

MAX_SESSIONS = 2  # sessions kept open at once (each holds a copy of the weights), least recently used dropped


def weights_key(model) -> str:
    """20 hex digits naming the model's weights and configuration (and the export's format)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    digest.update(f"{FORMAT_NAME} {FORMAT_VERSION} {__version__}".encode())
    for name, tensor in model.state_dict().items():
        values = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name} {values.dtype} {tuple(tensor.shape)}".encode())
        digest.update(values.view(torch.uint8).numpy())
    return digest.hexdigest()[:20]


class OnnxRuntimeEngine(nn.Module):
    """A model (SwinV2DPT, CPU, float32) whose forward pass runs in ONNX Runtime.

    model: the PyTorch model, kept for exporting at new sizes; folder: the cache folder (its onnx/
    sub-folder is used); threads: ONNX Runtime's intra-op threads (default: PyTorch's);
    notify: called with a line before each export (minutes for large models).
    """

    def __init__(self, model, folder: Path | None = None, threads: int | None = None,
                 notify: Callable[[str], None] | None = None):
        super().__init__()
        parameter = next(model.parameters())
        if parameter.device.type != "cpu" or parameter.dtype != torch.float32:
            raise ExportError("--engine onnx runs the float32 model on the CPU")
        self.model = model.eval()
        self.config = model.config
        self.folder = Path(folder or cache_folder()) / "onnx"
        self.threads = threads or torch.get_num_threads()
        self.notify = notify or (lambda line: print(line, file=sys.stderr))
        self.key = weights_key(model)
        self._sessions = OrderedDict()  # (H, W) -> ONNX Runtime session

    def graph_path(self, size_hw) -> Path:
        name = self.config.release_name if self.config.release_name != "custom" else "model"
        return self.folder / f"{name}-{self.key}-{size_hw[0]}x{size_hw[1]}.onnx"

    def forward(self, image_bchw: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised RGB -> (B, H, W) inverse depth, as SwinV2DPT.forward."""
        stride = self.config.stride
        if image_bchw.ndim != 4 or image_bchw.shape[1] != 3 or image_bchw.shape[2] % stride or image_bchw.shape[3] % stride:
            raise ValueError(
                f"expected a (B, 3, H, W) image with H and W multiples of {stride}, got shape {tuple(image_bchw.shape)}"
            )
        runner = self.session_for(tuple(image_bchw.shape[-2:]))
        image = image_bchw.detach().to("cpu", torch.float32).contiguous().numpy()
        try:
            (depth,) = runner.run(["inverse_depth"], {"image": image})
        except Exception as error:  # noqa: BLE001  (ONNX Runtime's errors are plain Exceptions)
            raise RuntimeError(f"ONNX Runtime: {first_line(error, 200)}") from None
        return torch.from_numpy(depth)

    def session_for(self, size_hw: tuple[int, int]):
        """The session of this input size: opened from the cache, or exported first."""
        if size_hw in self._sessions:
            self._sessions.move_to_end(size_hw)
            return self._sessions[size_hw]
        path = self.graph_path(size_hw)
        runner = self._open_cached(path, size_hw)
        if runner is None:
            height, width = size_hw
            self.notify(f"exporting the network at {height}x{width} for ONNX Runtime (once; kept in {self.folder})")
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                # The job checked this prediction's memory itself (or was told not to).
                export_onnx(self.model, path, size_hw=size_hw, batch="dynamic", overwrite=True, memory_check=False)
                runner = session(path, self.threads)
            except (ExportError, OSError) as error:
                reason = one_line(error).removeprefix(f"{path}: ")  # the cache file's name says nothing to the user
                raise RuntimeError(f"ONNX export at {height}x{width} failed: {reason}") from None
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        self._sessions[size_hw] = runner
        return runner

    def _open_cached(self, path: Path, size_hw):
        """A session for a cached export that fits, or None (missing, damaged or not this model's)."""
        if not path.is_file():
            return None
        try:
            values = read_metadata(path)
            fits = (
                values.get("format") == FORMAT_NAME
                and values.get("format_version") == FORMAT_VERSION
                and values.get("input_size") == f"{size_hw[0]}x{size_hw[1]}"
                and values.get("batch") == "dynamic"
                and values.get("dtype") == "float32"
                and json.loads(values.get("config", "null")) == self.config.to_dict()
            )
            return session(path, self.threads) if fits else None
        except Exception:  # noqa: BLE001  (a damaged file: export it again)
            return None
