"""Which files in a folder this tool wrote, so that --overwrite never replaces anyone else's file.

Each folder we write into gets a hidden ledger, `.muggled_swinv2-outputs.jsonl`: one JSON line per
file written (name, size, modification time in ns, the input it was made from where there is
one, the settings it was made with where the writer says them, and `"partial": true` for an
interrupted run's output), appended after the file is in place. A file is ours while it still has the size and time
recorded; a file put there or changed by anyone else is not, and neither is any file when the
ledger is missing (the safe side).

The ledger is shared by every process writing into the folder: each reads and appends it under an
exclusive lock (flock), reading what the others appended since (so two runs into one folder know
each other's files). A writer holds the lock from its check to its record (OutputRule.writing), so
a file in place is always already in the ledger for the others.

A ledger that cannot be used is reported (LedgerError, one line), never followed or ignored: a
symbolic link (it is opened without following links: a link could make us append to, or create,
a file anywhere), anything but a regular file (a FIFO would hang the read), one we cannot write, or
one larger than MAX_LEDGER_BYTES. A line cut short (a run killed mid-append) is skipped, and the
next record starts on a new line. A ledger of more than COMPACT_AFTER lines is rewritten with the
latest record of each file still ours when those are at most half its lines (checked when a
process first records into it, and whenever it holds twice as many lines as files).
"""

import errno
import fcntl
import json
import os
import stat as stat_module
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import UserError
from .atomic import publish, reserve_temp

LEDGER_NAME = ".muggled_swinv2-outputs.jsonl"
MAX_LEDGER_BYTES = 256 << 20  # about 2 million records (with their inputs): far beyond a compacted ledger of a real folder
COMPACT_AFTER = 1000  # lines: a longer ledger is looked at for compaction (see the module docstring)


class LedgerError(UserError, OSError):
    """A ledger that cannot be used; one line naming it and what to do. (An OSError: where a file
    cannot be written, the writers report it as such.)"""

    def __init__(self, message: str):
        super().__init__(message)


class Record(NamedTuple):  # a tuple: a million of them are made quickly
    size: int
    mtime_ns: int
    source: str | None = None  # the input the file was made from (absolute path), if any
    partial: bool = False  # an interrupted run's output (complete, but holding only part of the work)
    settings: str | None = None  # what it was made with, as the writer put it (jobs/images.output_settings), if said


@dataclass
class _Read:
    """What was read of one folder's ledger: its identity, how far, and the latest record per name."""
    file_id: tuple[int, int]  # (device, inode): a compacted ledger is another file
    offset: int = 0  # bytes read, up to the last complete line
    lines: int = 0
    records: dict[str, Record] = field(default_factory=dict)
    looked: bool = False  # whether its records' files were looked at for compaction


def ledger_path(folder) -> Path:
    return Path(folder) / LEDGER_NAME


def _unusable(path: Path, reason: str) -> LedgerError:
    return LedgerError(f"{path}: the output ledger {reason}; remove it "
                       f"(without it, no file in that folder counts as written by muggled-swinv2)")


def _problem(path: Path, error: OSError) -> LedgerError:
    """The one-line report of a ledger that could not be opened."""
    if error.errno == errno.ELOOP:
        return _unusable(path, "is a symbolic link; refusing to follow it")
    if error.errno in (errno.EISDIR, errno.ENXIO):
        return _unusable(path, "is not a regular file")
    return _unusable(path, f"cannot be used ({error.strerror or error})")


def _checked(path: Path, descriptor: int) -> os.stat_result:
    """fstat of an open ledger; LedgerError unless it is a regular file of a sane size."""
    stat = os.fstat(descriptor)
    reason = None
    if not stat_module.S_ISREG(stat.st_mode):
        reason = "is not a regular file (a folder, a FIFO or a device)"
    elif stat.st_size > MAX_LEDGER_BYTES:
        reason = f"is {stat.st_size / 2**20:.0f} MiB, more than this tool ever writes ({MAX_LEDGER_BYTES >> 20} MiB)"
    if reason:
        raise _unusable(path, reason)
    return stat


def _open(folder: Path, write: bool) -> int | None:
    """The folder's ledger, opened without following links and without blocking (a FIFO); for
    writing it is created if missing. None: no ledger (reading). LedgerError if it cannot be used."""
    path = ledger_path(folder)
    flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    flags |= (os.O_RDWR | os.O_APPEND | os.O_CREAT) if write else os.O_RDONLY
    try:
        descriptor = os.open(path, flags, 0o666)
    except FileNotFoundError:
        if write:
            raise  # the folder itself is missing: the writer reports it
        return None
    except OSError as error:
        raise _problem(path, error) from None
    try:
        _checked(path, descriptor)
    except LedgerError:
        os.close(descriptor)
        raise
    return descriptor


# The ledgers this process holds locked: flock locks belong to an open file, so a second lock of
# the same ledger from this process would wait for itself. Threads take turns (one RLock a folder).
_registry_guard = threading.Lock()
_thread_locks: dict[Path, threading.RLock] = {}
_held: dict[Path, int] = {}


@contextmanager
def locked_ledger(folder, write: bool) -> Iterator[int | None]:
    """The folder's ledger descriptor, locked (exclusive) for the duration; re-entrant in a thread.
    write=False: None while there is no ledger (nothing is created)."""
    folder = Path(folder).absolute()
    with _registry_guard:
        thread_lock = _thread_locks.setdefault(folder, threading.RLock())
    with thread_lock:
        if folder in _held:
            yield _held[folder]
            return
        while True:
            descriptor = _open(folder, write)
            if descriptor is None:
                yield None
                return
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:  # compacted by another process while we waited: lock the new ledger instead
                same = os.stat(ledger_path(folder), follow_symlinks=False).st_ino == os.fstat(descriptor).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(descriptor)
        _held[folder] = descriptor
        try:
            yield descriptor
        finally:
            del _held[folder]
            os.close(descriptor)  # releases the lock


def check_ledger(folder) -> None:
    """LedgerError (one line) if the folder's ledger is there but cannot be used (read, locked and
    appended to): checked before any work, so that no run's outputs go unrecorded."""
    descriptor = _open(Path(folder), write=False)
    if descriptor is None:
        return
    os.close(descriptor)
    try:
        os.close(os.open(ledger_path(folder), os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK))
    except OSError as error:
        raise _problem(ledger_path(folder), error) from None


def _parse(line: str) -> tuple[str, Record] | None:
    try:
        values = json.loads(line)
        name, size, mtime_ns, source = values["name"], values["size"], values["mtime_ns"], values.get("source")
        partial, settings = values.get("partial", False), values.get("settings")
        if (type(name) is str and type(size) is int and type(mtime_ns) is int and (source is None or type(source) is str)
                and type(partial) is bool and (settings is None or type(settings) is str)):
            return name, Record(size, mtime_ns, source, partial, settings)
        return None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a damaged line (a write cut short): that file is simply not known as ours


def _same_file(stat: os.stat_result, record: Record | None) -> bool:
    return record is not None and (record.size, record.mtime_ns) == (stat.st_size, stat.st_mtime_ns)


class OutputLedger:
    """The ledgers of the folders a job writes into, read as far as needed each time they are asked."""

    def __init__(self):
        self._read: dict[Path, _Read] = {}

    def _refresh(self, folder: Path, descriptor: int | None) -> dict[str, Record]:
        """The folder's records, with whatever was appended since the last read (under the lock)."""
        if descriptor is None:
            self._read.pop(folder, None)
            return {}
        stat = _checked(ledger_path(folder), descriptor)
        known = self._read.get(folder)
        if known is None or known.file_id != (stat.st_dev, stat.st_ino) or stat.st_size < known.offset:
            known = self._read[folder] = _Read((stat.st_dev, stat.st_ino))
        data = os.pread(descriptor, stat.st_size - known.offset, known.offset)
        complete = data.rfind(b"\n") + 1  # a last line without its newline may still be being written
        for line in data[:complete].decode("utf-8", errors="replace").split("\n")[:-1]:
            known.lines += 1
            if parsed := _parse(line):
                known.records[parsed[0]] = parsed[1]
        known.offset += complete
        return known.records

    def record_of(self, path) -> Record | None:
        """The ledger's record of `path` if it is ours (this tool wrote it and nobody changed it since), else None."""
        path = Path(path)
        folder = path.parent.absolute()
        while True:
            with locked_ledger(folder, write=False) as descriptor:
                try:
                    stat = path.stat()
                except OSError:
                    return None
                if descriptor is None and os.path.lexists(ledger_path(folder)):
                    continue  # created (and locked) by a writer since we looked: read it under its lock
                record = self._refresh(folder, descriptor).get(path.name)
            return record if _same_file(stat, record) else None

    def is_ours(self, path) -> bool:
        """True if `path` is a file this tool wrote and nobody has changed since."""
        return self.record_of(path) is not None

    def is_foreign(self, path) -> bool:
        """True if `path` exists and is not ours: it must never be replaced."""
        return Path(path).exists() and not self.is_ours(path)

    def record(self, path, source=None, partial: bool = False, settings: str | None = None) -> None:
        """Note a file we have just written (and the input it was made from; `partial`: by a run
        that was interrupted; the settings it was made with). LedgerError (one line) if the ledger
        cannot be used: the file is in place, but will count as not ours."""
        path = Path(path)
        folder = path.parent.absolute()
        try:
            with locked_ledger(folder, write=True) as descriptor:
                stat = path.stat()
                records = self._refresh(folder, descriptor)
                entry = {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
                if source is not None:
                    entry["source"] = str(Path(source).absolute())
                if partial:
                    entry["partial"] = True
                if settings is not None:
                    entry["settings"] = settings
                end = os.fstat(descriptor).st_size
                newline = b"\n" if end and os.pread(descriptor, 1, end - 1) != b"\n" else b""  # after a line cut short
                os.write(descriptor, newline + json.dumps(entry).encode("utf-8") + b"\n")
                records[path.name] = Record(stat.st_size, stat.st_mtime_ns, entry.get("source"), partial, settings)
                known = self._read[folder]
                # Stale lines: records replaced by later ones, or (looked at once per process and
                # ledger) of files gone or changed since.
                if known.lines > COMPACT_AFTER and (known.lines > COMPACT_AFTER + 2 * len(records) or not known.looked):
                    known.looked = True
                    self._compact(folder, records, known.lines)
        except LedgerError:
            raise
        except OSError as error:
            raise LedgerError(f"{path}: written, but not recorded in {ledger_path(folder)} "
                              f"({error.strerror or error}): it will count as not written by muggled-swinv2") from None

    def _compact(self, folder: Path, records: dict[str, Record], lines: int) -> None:
        """Rewrite the ledger (under its lock) with the records of the files still ours, if they
        are at most half its lines: the others would never match again. Processes waiting for
        the lock then open the new one."""
        kept = {}
        with os.scandir(folder) as entries:  # one listing, not a failed stat per file gone
            for entry in entries:
                record = records.get(entry.name)
                if record is not None and _same_file(entry.stat(follow_symlinks=False), record):
                    kept[entry.name] = record
        if 2 * len(kept) > lines:
            return
        lines = []
        for name, record in kept.items():
            entry = {"name": name, "size": record.size, "mtime_ns": record.mtime_ns}
            if record.source is not None:
                entry["source"] = record.source
            if record.partial:
                entry["partial"] = True
            if record.settings is not None:
                entry["settings"] = record.settings
            lines.append(json.dumps(entry) + "\n")
        temp = reserve_temp(ledger_path(folder))
        try:
            temp.write_text("".join(lines), encoding="utf-8")
            publish(temp, ledger_path(folder))
        finally:
            temp.unlink(missing_ok=True)
        self._read.pop(folder, None)  # read again (the new file) next time
