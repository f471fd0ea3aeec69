"""Where outputs may be written: the folder checks every writer makes before any work."""

from pathlib import Path

from .atomic import reserve_temp


class OutputError(Exception):
    """An output that may not or cannot be written; one line naming the path and the option."""


def check_writable_folder(folder, option: str) -> None:
    """Create `folder` if needed and check that files can be written in it, before any work."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        reserve_temp(folder / "write-check").unlink()
    except OSError as error:
        raise OutputError(f"{option} {folder}: cannot write there ({error.strerror or error})") from None
