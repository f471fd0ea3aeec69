"""Finding checkpoints on disk and fetching the official ones."""

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from ..demo import DEMO_WEIGHTS
from ..model.config import RELEASE_URL, RELEASES

WEIGHTS_ENV = "MUGGLED_SWINV2_WEIGHTS"
OFFICIAL_FILES = {variant: release.file_name for variant, release in RELEASES.items()}  # what `download` fetches
CHECKPOINT_SUFFIXES = {".pt", ".pth", ".safetensors", ".bin"}


class WeightsError(Exception):
    """No usable checkpoint, or a download that failed; one-line message saying what to do."""


def weights_dirs() -> list[Path]:
    """$MUGGLED_SWINV2_WEIGHTS if set, else ./weights and the weights/ folder of this repository."""
    if os.environ.get(WEIGHTS_ENV):
        return [Path(os.environ[WEIGHTS_ENV])]
    candidates = [Path.cwd() / "weights", Path(__file__).resolve().parents[2] / "weights"]
    unique = []
    for folder in candidates:
        if folder.is_dir() and all(not folder.samefile(seen) for seen in unique):
            unique.append(folder)
    return unique or [Path("weights")]


def find_checkpoints() -> list[Path]:
    """Checkpoint files (and Hugging Face model folders) in the weights folders."""
    found = []
    for folder in weights_dirs():
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            is_file = entry.is_file() and entry.suffix in CHECKPOINT_SUFFIXES
            is_hf_dir = entry.is_dir() and (entry / "config.json").is_file()
            if is_file or is_hf_dir:
                found.append(entry)
    return found


def resolve_weights(path) -> Path:
    """The --weights argument, or the single checkpoint in the weights folders, or (none there)
    the embedded demo model (is_demo() tells; callers say so to the user)."""
    if path:
        return Path(path)
    found = find_checkpoints()
    if len(found) == 1:
        return found[0]
    named = os.environ.get(WEIGHTS_ENV)
    if named and Path(named).is_file():
        raise WeightsError(
            f"${WEIGHTS_ENV}={named} is a file; set it to the folder of checkpoints, or pass --weights {named}"
        )
    if not found and DEMO_WEIGHTS.is_file():
        return DEMO_WEIGHTS
    where = " or ".join(str(folder) for folder in weights_dirs())
    if not found:
        raise WeightsError(
            f"no checkpoint in {where}; get one with `muggled-swinv2 download tiny` "
            f"(or see weights/README.md), or pass --weights FILE"
        )
    names = ", ".join(entry.name for entry in found)
    raise WeightsError(f"several checkpoints in {where} ({names}); choose one with --weights FILE")


def is_demo(path) -> bool:
    """Whether `path` is the embedded demo model."""
    return Path(path).resolve() == DEMO_WEIGHTS


def download(variant: str, folder=None, base_url: str = RELEASE_URL, quiet: bool = False) -> Path:
    """Fetch an official checkpoint into `folder` (default: the first weights folder).

    Written to NAME.partial and renamed only once complete and of the announced size; an existing
    .partial file is resumed with an HTTP range request.
    """
    name = RELEASES[variant].file_name
    folder = Path(folder) if folder else weights_dirs()[0]
    target, partial = folder / name, folder / (name + ".partial")
    if target.exists():
        return target
    url = base_url.rstrip("/") + "/" + name
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise WeightsError(f"--base-url {base_url}: not an http:// or https:// address")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(f"{folder}: cannot create the folder to save into ({error.strerror or error})") from None
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            resumed = response.status == 206
            if not resumed:
                have = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length else None
            with open(partial, "ab" if resumed else "wb") as file, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=name, disable=quiet
            ) as progress:
                while chunk := response.read(1 << 20):
                    file.write(chunk)
                    progress.update(len(chunk))
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # range past the end: the partial file is already whole
            total = have
        else:
            raise WeightsError(f"download of {url} failed: HTTP {error.code} {error.reason}") from None
    except http.client.HTTPException as error:  # e.g. the connection dropped mid-file
        raise WeightsError(f"download of {url} broke off ({type(error).__name__}); run again to resume") from None
    except urllib.error.URLError as error:
        raise WeightsError(
            f"cannot download {url} ({error.reason}); with no network, fetch it elsewhere and copy it to {target}"
        ) from None
    except (ConnectionError, TimeoutError) as error:
        raise WeightsError(f"download of {url} broke off ({error.strerror or error}); run again to resume") from None
    except OSError as error:  # the partial file could not be written: no permission, full disk
        raise WeightsError(f"{partial}: cannot write the download ({error.strerror or error})") from None
    size = partial.stat().st_size
    if total is not None and size != total:
        raise WeightsError(f"download of {url} stopped at {size} of {total} bytes; run again to resume")
    if not zipfile.is_zipfile(partial):
        partial.unlink()
        raise WeightsError(f"{url} did not return a PyTorch checkpoint (deleted the download)")
    os.replace(partial, target)
    return target
