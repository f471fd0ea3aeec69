"""Depth maps for many image files: input expansion, output naming, batching, per-file errors."""

import glob
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

import cv2

from ..io.colormaps import colorize, normalize, to_uint16
from ..io.images import IMAGE_SUFFIXES, ImageReadError, read_image, save_image, save_npy, save_pfm
from ..predict import predict_batch

# Output kind -> (file name from the stem, writer(path, depth, colored image)).
OUTPUTS = {
    "png": ("{}.png", lambda path, depth, picture: save_image(path, picture)),
    "npy": ("{}.npy", lambda path, depth, picture: save_npy(path, depth)),
    "pfm": ("{}.pfm", lambda path, depth, picture: save_pfm(path, depth)),
    "png16": ("{}_16bit.png", lambda path, depth, picture: save_image(path, to_uint16(depth))),
    "tiff": ("{}.tiff", lambda path, depth, picture: save_image(path, depth.astype(np.float32))),
}
RAW_FORMATS = tuple(kind for kind in OUTPUTS if kind != "png")


@dataclass
class ImageTask:
    source: Path
    outputs: dict[str, Path]  # kind -> file to write


@dataclass
class ImageJobOptions:
    out_dir: Path
    raw_formats: tuple[str, ...] = ()
    colormap: str = "inferno"
    side_by_side: bool = False
    square: bool = False
    size: int | None = None
    batch_size: int = 1
    overwrite: bool = False


@dataclass
class JobSummary:
    processed: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)  # one-line messages
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C: the images not reached are left for a later run

    def line(self) -> str:
        per_image = f", {self.seconds / self.processed:.3f} s per image" if self.processed else ""
        skipped = f", skipped {self.skipped} (outputs exist; --overwrite to redo)" if self.skipped else ""
        stop = " (interrupted: run again to do the rest)" if self.interrupted else ""
        return f"processed {self.processed}{skipped}, failed {len(self.failed)}{per_image}{stop}"


def expand_inputs(inputs, recursive: bool, exclude_dir: Path | None = None) -> tuple[list[tuple[Path, str]], list[str]]:
    """INPUT arguments -> ([(image file, output stem)], [errors]).

    Files are taken as given; folders give their images (sub-folders too with `recursive`, mirrored
    in the output stems); anything else is a glob pattern. Duplicates are dropped, and so are
    files that folders or patterns find inside `exclude_dir` (the outputs of an earlier run); a
    folder that is `exclude_dir` or inside it is an error, since all its images would be dropped.
    """
    found, errors, seen = [], [], set()

    def excluded(path: Path) -> bool:
        return exclude_dir is not None and exclude_dir in path.resolve().parents

    def add(path: Path, stem: str):
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append((path, stem))

    for argument in map(str, inputs):
        path = Path(argument)
        if path.is_file():
            add(path, path.stem)
        elif path.is_dir():
            if exclude_dir is not None and (path.resolve() == exclude_dir or excluded(path)):
                errors.append(f"{path}: this folder is the --out folder or inside it; choose another --out")
                continue
            pattern = "**/*" if recursive else "*"
            images = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                errors.append(f"{path}: no images in this folder" + ("" if recursive else " (--recursive for sub-folders)"))
            for image in images:
                if not excluded(image):
                    add(image, str(image.relative_to(path).with_suffix("")))
        elif glob.has_magic(argument):
            matches = sorted(Path(match) for match in glob.glob(argument, recursive=True) if Path(match).is_file())
            kept = [match for match in matches if not excluded(match)]
            if not matches:
                errors.append(f"{argument}: no files match this pattern")
            elif not kept:
                errors.append(f"{argument}: matches only files in the --out folder; choose another --out")
            for match in kept:
                add(match, match.stem)
        else:
            errors.append(f"{path}: no such file or folder")
    return found, errors


def plan_tasks(sources: list[tuple[Path, str]], options: ImageJobOptions) -> list[ImageTask]:
    """Output paths per input; a stem whose outputs would collide with those of another input
    (same name from two folders, or `x_16bit` beside `x` with --raw png16) gets _2, _3, ..."""
    kinds = ("png", *options.raw_formats)
    taken, tasks = set(), []
    for source, stem in sources:
        unique, number = stem, 1
        while any(OUTPUTS[kind][0].format(unique).lower() in taken for kind in kinds):
            number += 1
            unique = f"{stem}_{number}"
        names = [OUTPUTS[kind][0].format(unique) for kind in kinds]
        taken.update(name.lower() for name in names)
        tasks.append(ImageTask(source, {kind: options.out_dir / name for kind, name in zip(kinds, names)}))
    return tasks


def display_bgr(image: np.ndarray) -> np.ndarray:
    """Any image read_image returns -> 8-bit BGR for showing beside the depth."""
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def depth_picture(image: np.ndarray, depth: np.ndarray, colormap: str, side_by_side: bool) -> np.ndarray:
    colored = colorize(normalize(depth), colormap)
    return np.hstack([display_bgr(image), colored]) if side_by_side else colored


def report_error(message: str):
    """Errors always reach stderr, above the progress bar, even with --quiet."""
    tqdm.write(message, file=sys.stderr)


def one_line(error: BaseException) -> str:
    """An exception as a short reason for a one-line message."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


PREDICTION_ERRORS = (RuntimeError, MemoryError, ValueError, cv2.error)


def each_alone_on_failure(predict, items: list) -> list[tuple[object, str | None]]:
    """[(result, None) or (None, short reason)] for predict(items) -> results.

    The batch runs as one; if that fails (out of memory, say) its items run one by one, so
    that only the item at fault is reported.
    """
    try:
        return [(result, None) for result in predict(items)]
    except PREDICTION_ERRORS as error:
        if len(items) == 1:
            return [(None, one_line(error))]
    return [pair for item in items for pair in each_alone_on_failure(predict, [item])]


def prediction_failed(source, reason: str) -> str:
    return f"{source}: depth estimation failed ({reason})"


def predict_each(model, batch: list[tuple[ImageTask, np.ndarray]], options: ImageJobOptions):
    """(task, image, depth or None, error message or None) for each image of a batch; a batch
    that fails runs image by image, so that only the image at fault is reported."""
    results = each_alone_on_failure(
        lambda images: predict_batch(model, images, options.square, options.size), [image for _, image in batch]
    )
    return [
        (task, image, depth, prediction_failed(task.source, reason) if reason else None)
        for (task, image), (depth, reason) in zip(batch, results)
    ]


def write_outputs(task: ImageTask, depth: np.ndarray, picture: np.ndarray, overwrite: bool) -> str | None:
    """Write the task's outputs (each atomically); an error message naming the file, or None."""
    for kind, path in task.outputs.items():
        if overwrite or not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                OUTPUTS[kind][1](path, depth, picture)
            except (OSError, ValueError) as error:
                return f"{task.source}: cannot write {path} ({one_line(error)})"
    return None


def select_pending(tasks: list[ImageTask], options: ImageJobOptions, summary: JobSummary) -> list[ImageTask]:
    """The tasks to run; those whose outputs all exist are counted as skipped (unless overwrite),
    and those that would write over an input image as failed."""
    input_paths = {task.source.resolve() for task in tasks}
    pending = []
    for task in tasks:
        if any(path.resolve() in input_paths for path in task.outputs.values()):
            summary.failed.append(f"{task.source}: its output would overwrite an input image; choose another --out")
        elif not options.overwrite and all(path.exists() for path in task.outputs.values()):
            summary.skipped += 1
        else:
            pending.append(task)
    return pending


def run_image_job(model, tasks: list[ImageTask], options: ImageJobOptions, quiet: bool = False) -> JobSummary:
    """Predict and write every task's outputs; a file that fails is reported and skipped."""
    summary = JobSummary()
    pending = select_pending(tasks, options, summary)
    for message in summary.failed:
        report_error(message)
    options.out_dir.mkdir(parents=True, exist_ok=True)

    def fail(message: str):
        summary.failed.append(message)
        report_error(message)

    started = time.perf_counter()
    try:
        with tqdm(total=len(pending), unit="image", disable=quiet, dynamic_ncols=True) as progress:
            for first in range(0, len(pending), max(1, options.batch_size)):
                batch = []
                for task in pending[first : first + options.batch_size]:
                    try:
                        batch.append((task, read_image(task.source)))
                    except ImageReadError as error:
                        fail(str(error))
                        progress.update(1)
                if not batch:
                    continue
                for task, image, depth, error in predict_each(model, batch, options):
                    if depth is not None:
                        picture = depth_picture(image, depth, options.colormap, options.side_by_side)
                        error = write_outputs(task, depth, picture, options.overwrite)
                    if error:
                        fail(error)
                    else:
                        summary.processed += 1
                    progress.update(1)
    except KeyboardInterrupt:
        summary.interrupted = True  # every file written so far is complete (written atomically)
    summary.seconds = time.perf_counter() - started
    return summary
