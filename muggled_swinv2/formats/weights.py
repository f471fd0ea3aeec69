"""Finding checkpoints on disk and fetching the official ones."""

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from ..demo import DEMO_NOTE, DEMO_WEIGHTS
from ..errors import UserError
from ..model.config import RELEASE_URL, RELEASES, Release

WEIGHTS_ENV = "MUGGLED_SWINV2_WEIGHTS"  # a folder of checkpoints, searched first
CACHE_ENV = "MUGGLED_SWINV2_CACHE"  # moves the user cache folder
CHECKPOINT_SUFFIXES = {".pt", ".pth", ".safetensors", ".bin"}


class WeightsError(UserError):
    """No usable checkpoint, or a download that failed; one-line message saying what to do."""


def cache_folder() -> Path:
    """This package's user cache folder, as torch.hub and Hugging Face keep theirs: $MUGGLED_SWINV2_CACHE,
    else $XDG_CACHE_HOME/muggled_swinv2, else ~/.cache/muggled_swinv2. `download` saves checkpoints
    here; the ONNX engine keeps its exports in its onnx/ sub-folder."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "muggled_swinv2"


def search_folders() -> list[tuple[str, Path]]:
    """(name for the user, folder) where a checkpoint is looked for when --weights is not given,
    in order: $MUGGLED_SWINV2_WEIGHTS (if set), ./weights, the cache folder."""
    folders = [(f"${WEIGHTS_ENV}", Path(os.environ[WEIGHTS_ENV]))] if os.environ.get(WEIGHTS_ENV) else []
    return folders + [("./weights", Path("weights")), ("the cache folder", cache_folder())]


def searched_text() -> str:
    """The folders searched, as the messages name them: '$MUGGLED_SWINV2_WEIGHTS (/w), ./weights or ...'."""
    named = [f"{name} ({folder.absolute()})" for name, folder in search_folders()]
    return ", ".join(named[:-1]) + " or " + named[-1]


def checkpoints_in(folder: Path) -> list[Path]:
    """Checkpoint files (and Hugging Face model folders) in `folder`, by name. Hidden entries are
    not checkpoints: macOS leaves `._model.pt` (AppleDouble metadata) beside each file it copies
    to a foreign disk, and our own temp files start with a dot."""
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        is_file = entry.is_file() and entry.suffix in CHECKPOINT_SUFFIXES
        is_hf_dir = entry.is_dir() and (entry / "config.json").is_file()
        if is_file or is_hf_dir:
            found.append(entry)
    return found


def onnx_graph_refusal(path: Path) -> str | None:
    """What every loader says of an exported .onnx file passed as a checkpoint, or None for another path."""
    if path.suffix.lower() != ".onnx":
        return None
    return (f"{path}: an exported ONNX graph, not a checkpoint; run it with ONNX Runtime (`muggled-swinv2 info "
            f"{path}` describes it), or pass the checkpoint it came from (--engine onnx exports the graphs it needs)")


def resolve_weights(path) -> Path:
    """The --weights argument, or else the checkpoint of the first search folder that has one
    (search_folders), or (none anywhere) the embedded demo model (is_demo() tells; callers say so
    with demo_note())."""
    if path:
        path = Path(path)
        if refusal := onnx_graph_refusal(path):
            raise WeightsError(refusal)
        return path
    named = os.environ.get(WEIGHTS_ENV)
    if named and Path(named).is_file():
        raise WeightsError(
            f"${WEIGHTS_ENV}={named} is a file; set it to the folder of checkpoints, or pass --weights {named}"
        )
    if named and not Path(named).is_dir():  # a typo would otherwise run the demo model, or another checkpoint
        raise WeightsError(f"${WEIGHTS_ENV}={named}: no such folder; set it to the folder of checkpoints, or unset it")
    for _, folder in search_folders():
        found = checkpoints_in(folder)
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(entry.name for entry in found)
            raise WeightsError(f"several checkpoints in {folder} ({names}); choose one with --weights FILE")
    if DEMO_WEIGHTS.is_file():
        return DEMO_WEIGHTS
    raise WeightsError(
        f"no checkpoint in {searched_text()}; get one with `muggled-swinv2 download tiny`, or pass --weights FILE"
    )


def demo_note() -> str:
    """What a command says when it runs the demo model because no checkpoint was found."""
    return f"no checkpoint given or found in {searched_text()}: {DEMO_NOTE}"


def is_demo(path) -> bool:
    """Whether `path` is the embedded demo model."""
    return Path(path).resolve() == DEMO_WEIGHTS


class ReleaseFileError(WeightsError):
    """A file that is not the published release file: "PATH: reason", one line."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


def archive_problem(path: Path) -> str | None:
    """What is wrong with a file meant to be a torch.save checkpoint (a zip archive holding a
    data.pkl), or None: each entry is read back and checked against the CRC-32 the archive
    carries, which catches a truncated or damaged file even where no SHA-256 is published."""
    if not zipfile.is_zipfile(path):
        return "not a PyTorch checkpoint (not a zip archive)"
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in archive.namelist()):
                return "not a PyTorch checkpoint (a zip archive without data.pkl)"
            if (damaged := archive.testzip()) is not None:
                return f"damaged (its entry {damaged} fails its CRC-32 check)"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as error:
        return f"damaged ({str(error) or type(error).__name__})"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_release_file(path: Path, release: Release) -> str:
    """Check that `path` is `release`'s published file: a regular file, of its published size and
    SHA-256 where the registry holds them (model/config.py), a sound checkpoint archive in any case.
    Returns what was checked, for the "ready" line; a problem is a one-line ReleaseFileError."""
    if not path.is_file():
        raise ReleaseFileError(path, "is not a file")
    size = path.stat().st_size
    if release.file_bytes is not None and size != release.file_bytes:
        raise ReleaseFileError(path, f"{size} bytes, not the {release.file_bytes} of the published "
                                     f"{release.file_name} (cut short, or another file)")
    if release.sha256 is not None and _sha256(path) != release.sha256:
        raise ReleaseFileError(path, f"its SHA-256 is not that of the published {release.file_name} (damaged, or another file)")
    if problem := archive_problem(path):
        raise ReleaseFileError(path, problem)
    if release.sha256 is not None:
        return "size and SHA-256 checked"
    if release.file_bytes is not None:
        return "size and archive checked, no published SHA-256"
    return "archive checked (CRC-32 of each entry), no published size or SHA-256"



def download(variant: str, folder=None, base_url: str = RELEASE_URL, quiet: bool = False) -> tuple[Path, str]:
    """Fetch an official checkpoint into `folder` (default: the cache folder, where commands find it
    from any working folder); returns its path and what was checked of it (check_release_file).

    Written to NAME.partial and renamed only once complete, of the announced size and checked; an
    existing .partial file is resumed with an HTTP range request. A file already there is checked,
    never replaced: one that fails is reported (WeightsError, one line) for the user to delete.
    """
    release = RELEASES[variant]
    name = release.file_name
    folder = Path(folder) if folder else cache_folder()
    target, partial = folder / name, folder / (name + ".partial")
    again = f"delete it and run `muggled-swinv2 download {variant}` again"
    if target.exists() or target.is_symlink():
        try:
            return target, check_release_file(target, release)
        except ReleaseFileError as error:
            raise WeightsError(f"{error}; {again}") from None
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
    if release.file_bytes is not None and size < release.file_bytes and total is None:
        raise WeightsError(f"download of {url} stopped at {size} of {release.file_bytes} bytes; run again to resume")
    try:
        checked = check_release_file(partial, release)
    except ReleaseFileError as error:
        partial.unlink()  # ours, and useless: resuming it would only append to the damage
        if error.reason.startswith("not a PyTorch checkpoint"):
            raise WeightsError(f"{url} did not return a PyTorch checkpoint (deleted the download)") from None
        raise WeightsError(f"{url} did not give the published file ({error.reason}); deleted the download, "
                           f"run again") from None
    os.replace(partial, target)
    return target, checked


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["WeightsError", "cache_folder", "demo_note", "download", "is_demo", "resolve_weights"]
