"""Writing files so that readers only ever see complete ones: temp file beside, then rename."""

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def temp_prefix(path: Path) -> str:
    """How the temp files of `path` start: a dot and at most 64 bytes of its stem, so that a target
    whose own name is near the file system's 255-byte limit still gets a temp file."""
    return "." + os.fsdecode(os.fsencode(path.stem)[:64]) + "."


def reserve_temp(path, suffix: str = ".partial") -> Path:
    """An empty temp file in the target's folder (same filesystem, so the rename is atomic)."""
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=suffix, dir=path.parent)
    os.close(handle)
    return Path(name)


# A temp file reserve_temp makes: its target's prefix, mkstemp's 8 random characters, the suffix.
TEMP_NAME = re.compile(r"(\..*\.)[a-z0-9_]{8}\.partial")


class LeftoverTemps:
    """Removes the temp files that writers killed part way left beside their targets (a process
    killed with SIGKILL, or on a node that was lost, cannot clean up after itself). Use it only for
    targets about to be written again. Each folder is listed once, however many targets it holds."""

    def __init__(self):
        self._folders: dict[Path, dict[str, list[str]]] = {}  # folder -> {target prefix: temp names}

    def remove(self, path) -> None:
        path = Path(path)
        if path.parent not in self._folders:
            by_prefix = self._folders[path.parent] = {}
            try:
                with os.scandir(path.parent) as entries:
                    for entry in entries:
                        if match := TEMP_NAME.fullmatch(entry.name):
                            by_prefix.setdefault(match.group(1), []).append(entry.name)
            except OSError:
                pass  # a folder that cannot be listed: writing into it reports the real problem
        for name in self._folders[path.parent].pop(temp_prefix(path), []):
            try:
                (path.parent / name).unlink(missing_ok=True)
            except OSError:
                pass


def usual_mode(mode: int = 0o666) -> int:
    """`mode` less the process's umask: the permissions a plainly created file or folder gets."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def publish(temp: Path, path, replace: bool = True) -> None:
    """Give the temp file normal permissions (mkstemp makes it private) and move it into place.

    replace=False never replaces a file that is there at the moment of the move (FileExistsError,
    the temp file left as it is): a hard link then the temp name's removal, which the OS makes
    atomically fail if the name exists (a rename would replace it)."""
    os.chmod(temp, usual_mode())
    if replace:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)
    except OSError as error:
        if error.errno not in NO_HARD_LINKS:
            raise
        if os.path.lexists(path):  # a file system without hard links (FAT, some network ones): check, then move
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(temp, path)
        return
    os.unlink(temp)


NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


def disk_is_full(folder, needed: int = 16 << 20) -> bool:
    """True if the file system of `folder` has less than `needed` bytes free."""
    try:
        return shutil.disk_usage(folder).free < needed
    except OSError:
        return False


def write_atomically(path, write_to, publish_with: Callable[[Path, Path], None] = publish) -> None:
    """Call write_to(binary file) on a temp file beside `path`, then publish_with(temp, path) (by
    default `publish`; io/outputs.py passes its check at the rename); no partial file is left
    behind if writing fails or is interrupted."""
    temp = reserve_temp(path)
    try:
        with open(temp, "wb") as file:
            write_to(file)
        publish_with(temp, Path(path))
    except OSError as error:
        temp.unlink(missing_ok=True)
        # numpy reports a short write as "307200 requested and 27616 written", with no errno
        if error.errno is None and disk_is_full(temp.parent):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
