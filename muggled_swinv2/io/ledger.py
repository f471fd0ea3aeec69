"""Which files in a folder this tool wrote, so that --overwrite never replaces anyone else's file.

Each folder we write into gets a hidden ledger, `.muggled_swinv2-outputs.jsonl`: one JSON line per
file written (name, size, modification time in ns), appended after the file is in place. A file is
ours while it still has the size and time recorded; a file put there or changed by anyone else is
not, and neither is any file when the ledger is missing or cannot be written (the safe side).
"""

import json
import os
from pathlib import Path

from .atomic import usual_mode

LEDGER_NAME = ".muggled_swinv2-outputs.jsonl"


class OutputLedger:
    """Reads each folder's ledger once, then keeps it up to date as outputs are recorded."""

    def __init__(self):
        self._folders: dict[Path, dict[str, tuple[int, int]]] = {}

    def _entries(self, folder: Path) -> dict[str, tuple[int, int]]:
        folder = folder.absolute()
        if folder not in self._folders:
            entries = {}
            try:
                lines = (folder / LEDGER_NAME).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                lines = []
            for line in lines:
                try:
                    record = json.loads(line)
                    entries[str(record["name"])] = (int(record["size"]), int(record["mtime_ns"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a damaged line (a write cut short): that file is simply not known as ours
            self._folders[folder] = entries
        return self._folders[folder]

    def is_ours(self, path) -> bool:
        """True if `path` is a file this tool wrote and nobody has changed since."""
        path = Path(path)
        try:
            stat = path.stat()
        except OSError:
            return False
        return self._entries(path.parent).get(path.name) == (stat.st_size, stat.st_mtime_ns)

    def is_foreign(self, path) -> bool:
        """True if `path` exists and is not ours: it must never be replaced."""
        return Path(path).exists() and not self.is_ours(path)

    def record(self, path) -> None:
        """Note a file we have just written. Failing to (a full disk, say) only makes it count as
        foreign later: it is then kept, never replaced."""
        path = Path(path)
        try:
            stat = path.stat()
            line = json.dumps({"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}) + "\n"
            descriptor = os.open(path.parent / LEDGER_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, usual_mode())
            try:
                os.write(descriptor, line.encode("utf-8"))
            finally:
                os.close(descriptor)
        except OSError:
            return
        self._entries(path.parent)[path.name] = (stat.st_size, stat.st_mtime_ns)
