"""The one rule for every file this tool writes (images, videos, npz, ply, ONNX, safetensors, JSON,
training states), whoever writes it (the commands, the webcam script, the web app):

- an output never replaces an input: not the same path, not the same file through a symbolic or
  hard link, not a file inside an input folder, not a folder holding an input;
- an existing output is replaced only with --overwrite, and only if this tool wrote it: each writer
  records what it wrote in the folder's ledger (io/ledger.py), and a file is ours while the ledger
  knows it unchanged. One of ours that an interrupted run left (the ledger marks it partial: it
  holds only the work done before Ctrl-C) is replaced without --overwrite too, so that running the
  same command again finishes the work. (A Hugging Face model folder, which must hold nothing
  else, is told by the mark in its weights instead: formats/convert.py passes that test as `is_ours`.)

A refusal is one line naming the path and the option that named it.

The rule is applied again at the moment a finished output is moved into place (publish_output),
since a long run (a video, training, an export) gives others time to put a file there: the move
never replaces a file that is not ours (the OS refuses the move atomically where nothing was), and
such a file is kept; the run's output is then saved beside it as NAME_2.EXT (the first free name),
and the run ends with a one-line error saying so.
"""

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError
from .atomic import publish, reserve_temp, write_atomically
from .ledger import LedgerError, OutputLedger, check_ledger, ledger_path, locked_ledger


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
        try:
            if not self.overwrite:
                record = self.ledger.record_of(path)
                return None if record is not None and record.partial else f"{named}: exists; pass --overwrite to replace it"
            ours = (is_ours or self.ledger.is_ours)(path)
        except LedgerError as error:
            return str(error)
        if not ours:
            return (f"{named}: exists and was not written by muggled-swinv2; refusing to replace it, "
                    f"choose another {option or 'name'}")
        return None

    def check(self, path, option: str = "", is_ours: Callable[[Path], bool] | None = None) -> None:
        """OutputError (one line) unless `path` may be written."""
        if reason := self.refusal(path, option, is_ours):
            raise OutputError(reason)

    def record(self, path, source=None, partial: bool = False, settings: str | None = None) -> None:
        """Mark a file just written as ours (so that a later --overwrite may replace it); `source`:
        the input it was made from; `partial`: an interrupted run's output (replaced without
        --overwrite); `settings`: what it was made with (io/ledger.Record). OutputError (one line)
        if the folder's ledger cannot be used."""
        try:
            self.ledger.record(path, source, partial=partial, settings=settings)
        except LedgerError as error:
            raise OutputError(str(error)) from None

    @contextmanager
    def writing(self, path, option: str = "", source=None, settings: str | None = None) -> Iterator[None]:
        """Check `path`, let the with-block write it, record it: all under the folder's ledger lock,
        so that another run writing into the same folder sees the file and its record together."""
        path = Path(path)
        try:
            with locked_ledger(path.parent, write=True):
                self.check(path, option)
                yield
                self.record(path, source, settings=settings)
        except LedgerError as error:
            raise OutputError(str(error)) from None

    def publish_output(self, temp: Path, path, option: str = "", source=None) -> None:
        """Move the finished temp file to `path` and record it, the rule checked again at the move:
        a file that is not ours, there now though it was not (or was ours) at the start, is kept,
        the temp file saved beside it under the first free NAME_N.EXT, and OutputError says so."""
        path = Path(path)
        named = f"{option} {path}" if option else str(path)
        try:
            with locked_ledger(path.parent, write=True):
                try:
                    if path.exists() or path.is_symlink():
                        if not self.ledger.is_ours(path):
                            raise FileExistsError(path)
                        publish(temp, path)  # ours: replaced, as the check at the start allowed
                    else:
                        publish(temp, path, replace=False)  # fails if a file appears at this very moment
                except FileExistsError:
                    kept = self._publish_beside(temp, path)
                    self.record(kept, source)
                    raise OutputError(f"{named}: a file not written by muggled-swinv2 appeared there during the run; "
                                      f"kept it, and saved this run's output as {kept}") from None
                self.record(path, source)
        except LedgerError as error:
            raise OutputError(str(error)) from None

    @staticmethod
    def _publish_beside(temp: Path, path: Path) -> Path:
        """The temp file moved to the first free NAME_2.EXT, NAME_3.EXT, ... beside `path`."""
        number = 2
        while True:
            candidate = path.with_name(f"{path.stem}_{number}{path.suffix}")
            try:
                publish(temp, candidate, replace=False)
                return candidate
            except FileExistsError:
                number += 1

    def write_output(self, path, write_to, option: str = "", source=None) -> None:
        """write_to(binary file) into a temp file beside `path`, then publish_output (atomically,
        checked again at the move, recorded)."""
        write_atomically(path, write_to, publish_with=lambda temp, target: self.publish_output(temp, target, option, source))


def check_writable_folder(folder, option: str) -> None:
    """Create `folder` if needed and check that files can be written in it and its ledger (if
    there) can be used, before any work."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        reserve_temp(folder / "write-check").unlink()
    except OSError as error:
        raise OutputError(f"{option} {folder}: cannot write there ({error.strerror or error})") from None
    try:
        check_ledger(folder)  # else its outputs would go unrecorded, and count as not ours next time
    except LedgerError as error:
        raise OutputError(f"{option} {folder}: {error}") from None


@contextmanager
def new_folders_removed_if_empty(folder) -> Iterator[None]:
    """For a run that may create `folder` (an output's folder, made with its missing parents): after
    the block, those of them that did not exist before and are still empty (or hold only an empty
    ledger) are removed again, deepest first, so that a run that wrote nothing leaves nothing.
    (rmdir removes only an empty folder: whatever someone put there meanwhile stays.)"""
    folder = Path(folder).absolute()
    missing = [candidate for candidate in (folder, *folder.parents) if not os.path.lexists(candidate)]  # deepest first
    try:
        yield
    finally:
        for candidate in missing:
            ledger = ledger_path(candidate)
            try:
                if not ledger.is_symlink() and ledger.is_file() and ledger.stat().st_size == 0:
                    ledger.unlink()
                candidate.rmdir()
            except OSError:  # not empty (or gone): kept, and so are its parents
                break


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["OutputError", "OutputRule", "check_writable_folder", "new_folders_removed_if_empty"]
