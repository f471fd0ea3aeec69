"""The one rule for every file this tool writes (images, videos, npz, ply, ONNX, safetensors, JSON,
training states), whoever writes it (the commands, the webcam script, the web app):

- an output never replaces an input: not the same path, not the same file through a symbolic or
  hard link, not a file inside an input folder, not a folder holding an input;
- an existing output is replaced only with --overwrite, and only if this tool wrote it: each writer
  records what it wrote in the folder's ledger (io/ledger.py), and a file is ours while the ledger
  knows it unchanged. (A Hugging Face model folder, which must hold nothing else, is told by the
  mark in its weights instead: formats/convert.py passes that test as `is_ours`.)

A refusal is one line naming the path and the option that named it.
"""

from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import UserError
from .atomic import reserve_temp
from .ledger import OutputLedger


class OutputError(UserError):
    """An output that may not or cannot be written; one line naming the path and the option."""


class OutputRule:
    """May this path be written? One rule (`refusal`) for every writer; `record` marks a written file as ours."""

    def __init__(self, overwrite: bool = False, inputs: Mapping[object, str] | None = None,
                 ledger: OutputLedger | None = None):
        """inputs: {input path: how a refusal names it, e.g. "the input video"}."""
        self.overwrite = overwrite
        self.ledger = ledger or OutputLedger()
        self._inputs_by_path: dict[Path, tuple[Path, str]] = {}
        self._inputs_by_file: dict[tuple[int, int], tuple[Path, str]] = {}  # (device, inode): the same file by any name
        for source, label in (inputs or {}).items():
            source = Path(source)
            self._inputs_by_path[source.resolve()] = (source, label)
            try:
                stat = source.stat()
                self._inputs_by_file[(stat.st_dev, stat.st_ino)] = (source, label)
            except OSError:
                pass  # not there (yet): only its path can be compared

    def overwritten_input(self, path: Path) -> tuple[Path, str] | None:
        """The input (and its label) that writing `path` would replace, or None."""
        resolved = path.resolve()
        for candidate in (resolved, *resolved.parents):
            if candidate in self._inputs_by_path:
                return self._inputs_by_path[candidate]
        try:
            stat = path.stat()
        except OSError:
            return None
        if (stat.st_dev, stat.st_ino) in self._inputs_by_file:
            return self._inputs_by_file[(stat.st_dev, stat.st_ino)]
        if path.is_dir():  # a folder replaced whole: none of the inputs may be inside it
            return next((found for key, found in self._inputs_by_path.items() if resolved in key.parents), None)
        return None

    def refusal(self, path, option: str = "", is_ours: Callable[[Path], bool] | None = None) -> str | None:
        """Why `path` may not be written (one line naming it and `option`), or None if it may."""
        path = Path(path)
        named = f"{option} {path}" if option else str(path)
        if found := self.overwritten_input(path):
            source, label = found
            return f"{named}: would overwrite {label} {source}"
        if not path.exists() and not path.is_symlink():
            return None
        if not self.overwrite:
            return f"{named}: exists; pass --overwrite to replace it"
        if not (is_ours or self.ledger.is_ours)(path):
            return (f"{named}: exists and was not written by muggled-swinv2; refusing to replace it, "
                    f"choose another {option or 'name'}")
        return None

    def check(self, path, option: str = "", is_ours: Callable[[Path], bool] | None = None) -> None:
        """OutputError (one line) unless `path` may be written."""
        if reason := self.refusal(path, option, is_ours):
            raise OutputError(reason)

    def record(self, path) -> None:
        """Mark a file just written as ours (so that a later --overwrite may replace it)."""
        self.ledger.record(path)


def check_writable_folder(folder, option: str) -> None:
    """Create `folder` if needed and check that files can be written in it, before any work."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        reserve_temp(folder / "write-check").unlink()
    except OSError as error:
        raise OutputError(f"{option} {folder}: cannot write there ({error.strerror or error})") from None
