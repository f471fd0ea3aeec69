"""(image, depth) samples for training and evaluation: a synthetic split or a folder of pairs.

Every sample is (image uint8 (H, W, 3) BGR, depth float32 (H, W) in the data's units), with
0, NaN and inf marking pixels without ground truth. Folder layout:

    DIR/images/<stem>.<jpg|png|...>
    DIR/depth/<stem>.<npy|pfm|tiff|tif|png|exr>       (or DIR/disparity/: inverse depth)

16-bit PNGs are divided by --gt-scale (e.g. 1000 for millimetres, 256 for KITTI); float files are
taken as they are.
"""

import sys
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .errors import UserError, first_line
from .io.images import IMAGE_SUFFIXES, ImageReadError, display_bgr, read_image, read_pfm
from .synthetic.scenes import SPLITS, has_photo_textures, render_scene

GT_SUFFIXES = (".npy", ".pfm", ".tiff", ".tif", ".png", ".exr")


class DataError(UserError):
    """Unusable training or evaluation data (one line naming the folder or file)."""


@dataclass
class Sample:
    name: str
    image: np.ndarray  # (H, W, 3) uint8 BGR
    depth: np.ndarray  # (H, W) float32, 0/NaN/inf = no ground truth


# ----------------------------------------------------------------------------- synthetic


def _render_one(args):
    seed, size = args
    image, depth = render_scene(seed, (size, size))
    return image, depth


TRAIN_EXTRA_HINT = "pip install 'muggled_swinv2[train]'"


def check_scene_textures() -> None:
    """DataError (one line) when the synthetic scenes cannot be rendered as trained and scored:
    without scikit-image they would silently lose their photo textures."""
    if not has_photo_textures():
        raise DataError(f"--data synthetic needs scikit-image, whose photos texture the scenes: {TRAIN_EXTRA_HINT}")


def check_split_count(split: str, count: int) -> None:
    """DataError (one line) when a synthetic split has fewer than `count` scenes."""
    start, stop = SPLITS[split]
    if count > stop - start:
        raise DataError(f"the synthetic {split} split has {stop - start} scenes, {count} asked for")


def render_processes(count: int, workers: int = 2) -> int:
    """How many processes render_split renders `count` scenes in at once."""
    return workers if workers > 1 and count >= 8 else 1


def render_split(split: str, count: int, size: int, quiet: bool = False, workers: int = 2) -> list[Sample]:
    """The first `count` scenes of a split at size x size, rendered in `workers` processes."""
    check_scene_textures()
    check_split_count(split, count)
    start = SPLITS[split][0]
    jobs = [(start + index, size) for index in range(count)]
    progress = dict(total=count, desc=f"rendering {split} scenes", unit="scene", disable=quiet, file=sys.stderr)
    if render_processes(count, workers) > 1:
        with get_context("fork").Pool(workers) as pool:
            pairs = list(tqdm(pool.imap(_render_one, jobs, chunksize=8), **progress))
    else:
        pairs = [_render_one(job) for job in tqdm(jobs, **progress)]
    return [Sample(f"{split}_{seed:07d}", image, depth) for (seed, _), (image, depth) in zip(jobs, pairs)]


# ----------------------------------------------------------------------------- folders


def read_ground_truth(path: Path, gt_scale: float) -> np.ndarray:
    """A depth or disparity map file -> float32 (H, W), as stored (16-bit PNG divided by gt_scale)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        values = np.load(path, allow_pickle=False)
    elif suffix == ".pfm":
        values = read_pfm(path)
    else:
        values = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_UNCHANGED)
        if values is None:
            raise ValueError("OpenCV cannot decode it")
        if values.dtype == np.uint16 or values.dtype == np.uint8:
            values = values.astype(np.float32) / gt_scale
    values = np.asarray(values)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[..., 0]
    if values.ndim != 2 or values.dtype.kind not in "fiu":
        raise ValueError(f"expected a one-channel map, got shape {values.shape} of {values.dtype}")
    return values.astype(np.float32)


def to_depth(values: np.ndarray, is_disparity: bool) -> np.ndarray:
    """Depth with 0 for missing values; disparity maps are inverted (disparity 0 -> missing)."""
    values = np.where(np.isfinite(values) & (values > 0), values, 0).astype(np.float32)
    if is_disparity:
        values = np.divide(1.0, values, out=np.zeros_like(values), where=values > 0)
    return values


def folder_pairs(folder) -> tuple[list[tuple[Path, Path, bool]], list[str]]:
    """(image, ground truth, is_disparity) matched by stem, and one line per file left out (unmatched,
    not a regular file, or a second image of the same name)."""
    folder = Path(folder)
    images_dir = folder / "images"
    gt_dirs = [(folder / "depth", False), (folder / "disparity", True)]
    gt_dirs = [(path, flag) for path, flag in gt_dirs if path.is_dir()]
    if not folder.is_dir():
        raise DataError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    if not images_dir.is_dir() or not gt_dirs:
        raise DataError(f"{folder}: expected sub-folders images/ and depth/ (or disparity/)")
    ground_truth, problems = {}, []
    for gt_dir, is_disparity in gt_dirs:
        for path in sorted(gt_dir.iterdir()):
            if path.suffix.lower() in GT_SUFFIXES:
                if not path.is_file():  # a FIFO would hang the reading, as in the image command
                    problems.append(f"{path}: not a regular file; skipped")
                    continue
                ground_truth.setdefault(path.stem, (path, is_disparity))
    pairs, paired = [], {}  # stem -> the image scored against that ground truth
    for image_path in sorted(images_dir.iterdir()):
        if image_path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if not image_path.is_file():
            problems.append(f"{image_path}: not a regular file; skipped")
            continue
        if image_path.stem not in ground_truth:
            problems.append(f"{image_path}: no ground truth with the same name in {', '.join(str(d) for d, _ in gt_dirs)}; skipped")
            continue
        if image_path.stem in paired:  # a.jpg beside a.png: one ground truth, scored once
            problems.append(f"{image_path}: {paired[image_path.stem].name} has the same name and is scored against "
                            f"{ground_truth[image_path.stem][0].name}; skipped")
            continue
        paired[image_path.stem] = image_path
        pairs.append((image_path, *ground_truth[image_path.stem]))
    if not pairs:
        raise DataError(f"{folder}: no image in images/ has a ground-truth file of the same name")
    return pairs, problems


def load_folder(folder, gt_scale: float = 1.0, limit: int | None = None) -> tuple[list[Sample], list[str]]:
    """All readable pairs of a folder (in memory), and one line for each pair skipped and why."""
    pairs, problems = folder_pairs(folder)
    unmatched = len(problems)
    samples = []
    for image_path, gt_path, is_disparity in pairs[:limit]:
        try:
            image = read_image(image_path)
            depth = to_depth(read_ground_truth(gt_path, gt_scale), is_disparity)
        except ImageReadError as error:
            problems.append(f"{error}; skipped")
            continue
        except (OSError, ValueError, MemoryError, cv2.error) as error:
            reason = first_line(error).removeprefix(f"{gt_path}: ")  # read_pfm names the file too
            problems.append(f"{gt_path}: unreadable ground truth ({reason}); skipped")
            continue
        if image.shape[:2] != depth.shape:
            problems.append(f"{gt_path}: {depth.shape[1]}x{depth.shape[0]} does not match its image "
                            f"({image.shape[1]}x{image.shape[0]}); skipped")
            continue
        if not depth.any():
            problems.append(f"{gt_path}: no valid ground-truth pixel (all 0, NaN or infinite); skipped")
            continue
        samples.append(Sample(image_path.stem, np.ascontiguousarray(display_bgr(image)), depth))
    if not samples:
        first = problems[unmatched].removesuffix("; skipped")
        raise DataError(f"{folder}: none of its {len(pairs[:limit])} pairs is usable (the first: {first})")
    return samples, problems


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["DataError", "Sample", "check_scene_textures", "load_folder", "render_split"]
