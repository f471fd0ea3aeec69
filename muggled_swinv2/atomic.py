"""Writing files so that readers only ever see complete ones: temp file beside, then rename."""

import os
import tempfile
from pathlib import Path


def reserve_temp(path, suffix: str = ".partial") -> Path:
    """An empty temp file in the target's folder (same filesystem, so the rename is atomic)."""
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    return Path(name)


def publish(temp: Path, path) -> None:
    """Give the temp file normal permissions (mkstemp makes it private) and move it into place."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)
    os.replace(temp, path)


def write_atomically(path, write_to) -> None:
    """Call write_to(binary file) on a temp file beside `path`, then publish it; no partial file
    is left behind if writing fails or is interrupted."""
    temp = reserve_temp(path)
    try:
        with open(temp, "wb") as file:
            write_to(file)
        publish(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
