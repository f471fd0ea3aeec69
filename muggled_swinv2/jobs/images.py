"""Depth maps for many image files: input expansion, output naming, batching, per-file errors, and
the one table of output kinds (OUTPUTS) that every writer of the image job goes through."""

import glob
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

import cv2

from ..errors import UserError, one_line
from ..io.atomic import LeftoverTemps
from ..io.colormaps import colorize, unit_depth
from ..export.geometry import (
    DEFAULT_DEPTH_RANGE, DEFAULT_FOV_DEG, depth_to_z, save_mesh, save_mesh_z, save_point_cloud, save_point_cloud_z,
)
from ..geometry import CalibrationError, CameraIntrinsics, camera_intrinsics
from ..geometry.camera import focal_from_exif
from ..io.exif import read_exif_focal
from ..io.images import IMAGE_SUFFIXES, ImageReadError, display_bgr, read_image, save_image, save_npy, save_pfm
from ..io.ledger import LedgerError, OutputLedger
from ..io.outputs import OutputError, OutputRule, check_writable_folder
from ..memory import JOB_OPTION_NAMES, SizeOptionNames, available_bytes, estimate_bytes, memory_refusal, network_hw_for
from ..predict import predict_batch
from .metric import MetricOptions, MetricResult, calibrate_picture, millimetres_png16, save_json


class ImageJobError(UserError):
    """Nothing to do: no input image found (one line)."""


@dataclass
class ImageTask:
    source: Path
    outputs: dict[str, Path]  # kind -> file to write
    note: str | None = None  # why the outputs got another name than the usual one


@dataclass
class ImageJobOptions:
    out_dir: Path
    raw_formats: tuple[str, ...] = ()
    colormap: str = "inferno"
    side_by_side: bool = False
    square: bool = False
    size: int | None = None
    batch_size: int = 1
    overwrite: bool = False  # replaces only files this tool wrote (see io/ledger.py)
    value_range: tuple | None = None  # colour range (see io.colormaps.parse_range); None: each map's min/max
    invert: bool = False  # far is bright
    memory_check: bool = True  # refuse an image whose prediction would not fit in memory (see memory.py)
    memory_names: SizeOptionNames = JOB_OPTION_NAMES  # how that refusal names the settings (the CLI: its flags)
    fov_deg: float | None = None  # camera of the 3D outputs (ply, mesh); None: a fit's, EXIF, else 60 degrees
    depth_range: tuple[float, float] = DEFAULT_DEPTH_RANGE
    point_step: int = 1
    metric: MetricOptions | None = None  # what the user knows, for the metric outputs (jobs/metric.py)

    @property
    def output_settings(self) -> str:
        """What the outputs' content is made with, as the ledger records it beside each output:
        canonical JSON of the settings named in SETTING_FLAGS (a metric option as "metric.NAME")."""
        values = {name: getattr(self, name) for name in SETTING_FLAGS if not name.startswith("metric.")}
        metric = asdict(self.metric or MetricOptions())  # none given: as the defaults, which fit nothing
        values.update({f"metric.{name}": value for name, value in metric.items()})
        return json.dumps(values, sort_keys=True, default=str)

    @property
    def output_kinds(self) -> tuple[str, ...]:
        """The rows of OUTPUTS this job writes for each picture, in this order: the colour map, the
        raw formats, and the camera with any metric output."""
        camera = ("camera",) if any(kind in METRIC_KINDS for kind in self.raw_formats) else ()
        return ("png", *self.raw_formats, *camera)


# the settings that change what an output holds, and the option that gives each
SETTING_FLAGS = {
    "colormap": "--colormap", "side_by_side": "--side-by-side", "square": "--square", "size": "--size",
    "value_range": "--range", "invert": "--invert", "fov_deg": "--fov", "depth_range": "--depth-range",
    "point_step": "--point-step", "metric.known_points": "--known", "metric.sparse_depth": "--sparse-depth",
    "metric.depth_range": "--depth-range", "metric.fit": "--fit", "metric.fov_deg": "--fov", "metric.focal_px": "--focal-px",
}


def changed_settings(path: Path, settings: str, ledger: OutputLedger) -> list[str] | None:
    """The options (SETTING_FLAGS) whose values differ between `settings` and those the ledger
    recorded for the output `path`, or None where it recorded none or the same (or `path` is not ours)."""
    record = ledger.record_of(path)
    if record is None or record.settings is None or record.settings == settings:
        return None
    try:
        recorded = json.loads(record.settings)
    except ValueError:
        recorded = {}
    current = json.loads(settings)
    changed = [flag for name, flag in SETTING_FLAGS.items() if recorded.get(name) != current.get(name)]
    return list(dict.fromkeys(changed)) or ["recorded by another version"]


def made_with_other_settings(task: ImageTask, settings: str, ledger: OutputLedger) -> str | None:
    """The one-line failure of a task one of whose outputs the ledger says was made with other
    settings than `settings` (changed_settings), else None."""
    for path in task.outputs.values():
        if changed := changed_settings(path, settings, ledger):
            return f"{task.source}: {path} was made with other settings ({', '.join(changed)}); pass --overwrite to redo it"
    return None


# ----------------------------------------------------------------------------- the output kinds: one table


@dataclass
class Prediction:
    """One picture's depth and what its outputs are made from: what every writer of OUTPUTS takes."""
    task: ImageTask
    image: np.ndarray  # the picture as read: (H, W) gray or (H, W, 3) BGR, uint8 or uint16 (io/images.read_image)
    depth: np.ndarray  # (H, W) float32 relative inverse depth at the picture's size, bigger = nearer
    options: ImageJobOptions
    metric: MetricResult | None = None  # the metric depth and camera, when the options ask for them (jobs/metric.py)

    @cached_property
    def unit(self) -> np.ndarray:
        """(H, W) depth in [0, 1] as the maps show it (--range, --invert): the colour picture and png16."""
        return unit_depth(self.depth, self.options.value_range, self.options.invert)


def depth_picture(image: np.ndarray, unit: np.ndarray, colormap: str, side_by_side: bool) -> np.ndarray:
    """The depth map to look at, from the depth in [0, 1] (Prediction.unit): 1-channel for the gray
    colour map alone, (H, W, 3) BGR otherwise; the photo left of it with `side_by_side`."""
    if colormap == "gray" and not side_by_side:
        return np.round(unit * 255.0).astype(np.uint8)
    colored = colorize(unit, colormap)
    return np.hstack([display_bgr(image), colored]) if side_by_side else colored


def write_colour(prediction: Prediction, path: Path) -> None:
    """<stem>.png: the depth map in the colour map (with --side-by-side, the photo left of it)."""
    options = prediction.options
    save_image(path, depth_picture(prediction.image, prediction.unit, options.colormap, options.side_by_side))


def scene_3d(prediction: Prediction) -> tuple[np.ndarray, CameraIntrinsics, str] | None:
    """What ply/mesh are made of when the camera is known: (depth z (H, W), camera, what z is), or
    None for the relative default (export/geometry.py: --depth-range mapping, --fov or 60 degrees).

    With a fit (any metric option): its metric depth (NaN: no point) and its camera (--focal-px,
    --fov, EXIF or 60 degrees, geometry/camera.py). Without one, but with the photo's EXIF focal
    length and no --fov: the relative depth mapped onto --depth-range, seen by the EXIF camera."""
    options = prediction.options
    if prediction.metric is not None:
        return prediction.metric.depth, prediction.metric.camera, "metric depth (metres)"
    if options.fov_deg is not None:
        return None
    height, width = prediction.depth.shape
    exif = read_exif_focal(prediction.task.source)
    if focal_from_exif(width, height, exif) is None:
        return None
    near, far = options.depth_range
    return (depth_to_z(prediction.depth, options.depth_range), camera_intrinsics(width, height, exif=exif),
            f"relative inverse depth mapped onto 1/{far:g}..1/{near:g}")


def write_npy(prediction: Prediction, path: Path) -> None:
    """<stem>.npy: the inverse depth (H, W) float32."""
    save_npy(path, prediction.depth)


def write_pfm(prediction: Prediction, path: Path) -> None:
    """<stem>.pfm: the inverse depth (H, W) float32, as MiDaS writes it."""
    save_pfm(path, prediction.depth)


def write_png16(prediction: Prediction, path: Path) -> None:
    """<stem>_16bit.png: the depth as the maps show it (Prediction.unit), 0..65535."""
    save_image(path, np.round(prediction.unit * 65535.0).astype(np.uint16))


def write_tiff(prediction: Prediction, path: Path) -> None:
    """<stem>.tiff: the inverse depth (H, W) float32."""
    save_image(path, prediction.depth.astype(np.float32))


def scene_writer(save_with_camera: Callable, save_relative: Callable) -> Callable[[Prediction, Path], None]:
    """The writer of a 3D kind (ply, mesh) from its two export/geometry.py savers: `save_with_camera`
    (depth z, camera, point step, what z is) where scene_3d knows the camera, else `save_relative`
    (the relative depth, --fov or 60 degrees, --depth-range, point step)."""

    def write(prediction: Prediction, path: Path) -> None:
        options = prediction.options
        if scene := scene_3d(prediction):
            depth_z, camera, what = scene
            save_with_camera(path, prediction.image, depth_z, camera, options.point_step, what)
        else:
            save_relative(path, prediction.image, prediction.depth, options.fov_deg or DEFAULT_FOV_DEG,
                          options.depth_range, options.point_step)
    return write


write_point_cloud = scene_writer(save_point_cloud_z, save_point_cloud)  # <stem>.ply: coloured points
write_mesh = scene_writer(save_mesh_z, save_mesh)  # <stem>_mesh.ply: a coloured triangle mesh


def write_metric(prediction: Prediction, path: Path) -> None:
    """<stem>_metric.npy: the fit's metric depth (H, W) float32 metres, NaN: no depth."""
    save_npy(path, prediction.metric.depth)


def write_metric_png16(prediction: Prediction, path: Path) -> None:
    """<stem>_metric_mm.png: the metric depth in millimetres, 0: unknown or too far (jobs/metric.py)."""
    save_image(path, millimetres_png16(prediction.metric.depth))


def write_camera(prediction: Prediction, path: Path) -> None:
    """<stem>_camera.json: the camera and the fit (MetricResult.record)."""
    save_json(path, prediction.metric.record())


@dataclass(frozen=True)
class OutputKind:
    """One kind of file the image job writes per picture."""
    file_name: str  # from the output stem, e.g. "{}_16bit.png"
    write: Callable[[Prediction, Path], None]  # writes the file at `path`, atomically (io/atomic.py)


# Output kind -> its file name and writer. A new kind is a row here (and, to be asked for, a name in
# RAW_FORMATS or an option that adds it to ImageJobOptions.output_kinds): plan_tasks names its file,
# write_outputs writes it under the output rule and records it in the ledger.
OUTPUTS: dict[str, OutputKind] = {
    "png": OutputKind("{}.png", write_colour),
    "npy": OutputKind("{}.npy", write_npy),
    "pfm": OutputKind("{}.pfm", write_pfm),
    "png16": OutputKind("{}_16bit.png", write_png16),
    "tiff": OutputKind("{}.tiff", write_tiff),
    "ply": OutputKind("{}.ply", write_point_cloud),  # the camera of the options (scene_3d, export/geometry.py)
    "mesh": OutputKind("{}_mesh.ply", write_mesh),  # the same camera
    # metric outputs, from the picture's fit (jobs/metric.py)
    "metric": OutputKind("{}_metric.npy", write_metric),
    "metric-png16": OutputKind("{}_metric_mm.png", write_metric_png16),
    "camera": OutputKind("{}_camera.json", write_camera),
}
RAW_FORMATS = ("npy", "pfm", "png16", "tiff", "ply", "mesh", "metric", "metric-png16")  # the kinds --raw asks for
METRIC_KINDS = ("metric", "metric-png16")  # written with the camera (<stem>_camera.json), from a fit


# ----------------------------------------------------------------------------- planning


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
    in the output stems); anything else is a glob pattern, of which the images are taken, as in a
    folder (by suffix: IMAGE_SUFFIXES). Duplicates are dropped, and so are
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
            files = sorted(Path(match) for match in glob.glob(argument, recursive=True) if Path(match).is_file())
            matches = [match for match in files if match.suffix.lower() in IMAGE_SUFFIXES]  # as for folders
            kept = [match for match in matches if not excluded(match)]
            if not files:
                errors.append(f"{argument}: no files match this pattern")
            elif not matches:
                errors.append(f"{argument}: matches no image files ({len(files)} other files)")
            elif not kept:
                errors.append(f"{argument}: matches only files in the --out folder; choose another --out")
            for match in kept:
                add(match, match.stem)
        else:
            errors.append(f"{path}: no such file or folder")
    return found, errors


def plan_tasks(sources: list[tuple[Path, str]], options: ImageJobOptions) -> list[ImageTask]:
    """Output paths per input; a stem whose outputs would collide with those of another input
    (same name from two folders, or `x_16bit` beside `x` with --raw png16), with a file in the
    output folder that this tool did not write, or with one it made from another input (the ledger
    records each output's input), gets _2, _3, ... (with a note saying why)."""
    kinds = options.output_kinds
    ledger = OutputLedger()
    taken, tasks = set(), []

    def why_not(name: str, source: Path) -> str | None:
        """Why the output `name` cannot be `source`'s (None: it can)."""
        path = options.out_dir / name
        try:
            if not path.exists():
                return None
            record = ledger.record_of(path)
        except LedgerError:
            raise
        except OSError:  # a name too long, say: reported when the image's outputs are written
            return None
        if record is None:
            return f"{path} exists and was not written by muggled-swinv2"
        if record.source is not None and record.source != str(source.absolute()) and path.resolve() != source.resolve():
            return f"{path} is the output of another image ({record.source})"  # (the input itself: refused later)
        return None

    for source, stem in sources:
        unique, number, blocked = stem, 1, None
        while True:
            names = [OUTPUTS[kind].file_name.format(unique) for kind in kinds]
            clash = next((name for name in names if name.lower() in taken), None)
            if clash is None:
                blocked_here = next((reason for name in names if (reason := why_not(name, source))), None)
                if blocked_here is None:
                    break
            else:
                blocked_here = f"{options.out_dir / clash} is the output of another input of this run"
            blocked = blocked or blocked_here
            number += 1
            unique = f"{stem}_{number}"
        taken.update(name.lower() for name in names)
        outputs = {kind: options.out_dir / name for kind, name in zip(kinds, names)}
        note = f"{source}: {blocked}; writing {outputs['png']} instead" if blocked else None
        tasks.append(ImageTask(source, outputs, note))
    return tasks


def prepare_image_job(inputs, recursive: bool, options: ImageJobOptions) -> tuple[list[ImageTask], list[str]]:
    """INPUT arguments -> (the tasks, one message per argument that gave no image, reported here).
    Before any work: --out is a writable folder, and at least one image was found."""
    out_dir = options.out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"--out {out_dir}: exists and is not a folder")
    sources, errors = expand_inputs(inputs, recursive, exclude_dir=out_dir.resolve())
    for message in errors:
        report_error(message)
    if not sources:
        raise ImageJobError("no input images found")
    check_writable_folder(out_dir, "--out")
    return plan_tasks(sources, options), errors


def report_error(message: str):
    """Errors always reach stderr, above the progress bar, even with --quiet."""
    tqdm.write(message, file=sys.stderr)


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
    that fails runs image by image, so that only the image at fault is reported. An image (or a
    batch) that would not fit in memory is refused (or run one by one) first (see memory.py)."""
    images = [image for _, image in batch]
    if options.memory_check:
        config, device = model.config, next(model.parameters()).device
        if len(batch) == 1:
            network_hw = network_hw_for(config, images[0].shape[:2], options.square, options.size)
            if refusal := memory_refusal(config, network_hw, images[0].shape[:2], options.memory_names, device=device):
                return [(batch[0][0], images[0], None, f"{batch[0][0].source}: {refusal}")]
        else:
            needed = sum(estimate_bytes(config, network_hw_for(config, image.shape[:2], options.square, options.size),
                                        image.shape[:2]) for image in images)
            if needed > (available_bytes(device) or needed):  # together they do not fit: one by one
                return [result for item in batch for result in predict_each(model, [item], options)]
    results = each_alone_on_failure(
        lambda images: predict_batch(model, images, options.square, options.size), [image for _, image in batch]
    )
    return [
        (task, image, depth, prediction_failed(task.source, reason) if reason else None)
        for (task, image), (depth, reason) in zip(batch, results)
    ]


def write_outputs(prediction: Prediction, ledger: OutputLedger) -> str | None:
    """Write the task's outputs (each atomically, by its row of OUTPUTS); an error message naming
    the file, or None.

    An output that exists is left as it is without --overwrite (the job goes on where a run
    stopped); otherwise the output rule decides (io/outputs.py: never the input, only a file this
    tool wrote), and what is written is recorded in the folder's ledger."""
    task, overwrite = prediction.task, prediction.options.overwrite
    rule = OutputRule(overwrite, inputs={task.source: "the input image"}, ledger=ledger)
    settings = prediction.options.output_settings
    for kind, path in task.outputs.items():
        try:
            if path.exists() and not overwrite:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with rule.writing(path, source=task.source, settings=settings):  # checked, written and recorded under the ledger's lock
                OUTPUTS[kind].write(prediction, path)
        except OutputError as error:
            return f"{task.source}: {error}"
        except (OSError, ValueError) as error:
            return f"{task.source}: cannot write {path} ({one_line(error)})"
    return None


def name_max(folder: Path) -> int:
    """Longest file name (bytes) the file system of `folder` (or of its nearest existing parent) takes."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no answer
        return 255


def name_too_long(path: Path) -> bool:
    return len(os.fsencode(path.name)) > name_max(path.parent)


def select_pending(tasks: list[ImageTask], options: ImageJobOptions, summary: JobSummary) -> list[ImageTask]:
    """The tasks to run. Those whose outputs all exist are counted as skipped (unless overwrite);
    those that would write over an input image, or whose output names the file system refuses, as
    failed (shared by the local job and the Ray pipeline). The temp files that a killed run left
    beside the outputs to be written are removed."""
    rule = OutputRule(options.overwrite, inputs={task.source: "an input image" for task in tasks})
    pending, leftovers, settings = [], LeftoverTemps(), options.output_settings
    for task in tasks:
        if task.note:
            report_error(task.note)
        try:
            if too_long := next((path for path in task.outputs.values() if name_too_long(path)), None):
                summary.failed.append(f"{task.source}: cannot write {too_long} (File name too long: "
                                      f"{len(os.fsencode(too_long.name))} bytes, the file system allows {name_max(too_long.parent)})")
            elif any(rule.overwritten_input(path) for path in task.outputs.values()):
                summary.failed.append(f"{task.source}: its output would overwrite an input image; choose another --out")
            elif not options.overwrite and (stale := made_with_other_settings(task, settings, rule.ledger)):
                summary.failed.append(stale)
            elif not options.overwrite and all(path.exists() for path in task.outputs.values()):
                summary.skipped += 1
            else:
                for path in task.outputs.values():
                    leftovers.remove(path)  # of an earlier run that was killed while writing it
                pending.append(task)
        except OSError as error:  # e.g. an output name longer than the file system allows: this image only
            path = error.filename or task.outputs["png"]
            summary.failed.append(f"{task.source}: cannot write {path} ({one_line(error)})")
    return pending


@dataclass
class TaskOutcome:
    """What became of one task: an error message (None: every output written), notes to show
    always (like errors: what went differently, warnings), and the metric fit's summary line
    (shown unless --quiet, as the job's summary is)."""
    task: ImageTask
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    metric: MetricResult | None = None

    @property
    def info(self) -> list[str]:
        """The lines shown unless --quiet: the metric fit's summary."""
        return [f"{self.task.source}: {self.metric.summary()}"] if self.metric is not None else []


def predict_and_write(model, batch: list[tuple[ImageTask, np.ndarray]], options: ImageJobOptions,
                      ledger: OutputLedger) -> Iterator[TaskOutcome]:
    """Predict and write the outputs of pictures already read: the image job's work on each
    (task, picture), shared by the command line, the Ray actors (both through run_batch) and the
    web app. Yields each picture's outcome as soon as it is done."""
    if not batch:
        return
    for task, image, depth, error in predict_each(model, batch, options):
        metric, notes = None, []
        if depth is not None and options.metric is not None:
            try:  # before any output: a picture whose fit is refused gets none
                metric = calibrate_picture(task.source, depth, options.metric)
                notes += [f"{task.source}: {warning}" for warning in metric.warnings()]
            except CalibrationError as refusal:
                depth, error = None, f"{task.source}: {refusal}"
        if depth is not None:
            error = write_outputs(Prediction(task, image, depth, options, metric), ledger)
        yield TaskOutcome(task, error, notes, metric if error is None else None)


def run_batch(model, tasks: list[ImageTask], options: ImageJobOptions, ledger: OutputLedger) -> Iterator[TaskOutcome]:
    """Read, predict and write one batch of tasks: the image job's work, shared by the local
    command and the Ray actors. Yields each image's outcome as soon as it is done."""
    batch, notes = [], {}
    for task in tasks:
        notes[id(task)] = []
        try:
            batch.append((task, read_image(task.source, notes[id(task)])))
        except ImageReadError as error:
            yield TaskOutcome(task, str(error), notes[id(task)])
    for outcome in predict_and_write(model, batch, options, ledger):
        yield replace(outcome, notes=notes[id(outcome.task)] + outcome.notes)


def run_image_job(model, tasks: list[ImageTask], options: ImageJobOptions, quiet: bool = False) -> JobSummary:
    """Predict and write every task's outputs; a file that fails is reported and skipped."""
    summary = JobSummary()
    ledger = OutputLedger()
    pending = select_pending(tasks, options, summary)
    for message in summary.failed:
        report_error(message)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        with tqdm(total=len(pending), unit="image", disable=quiet, dynamic_ncols=True) as progress:
            for first in range(0, len(pending), max(1, options.batch_size)):
                for result in run_batch(model, pending[first : first + options.batch_size], options, ledger):
                    for note in result.notes + ([] if quiet else result.info):
                        report_error(note)
                    if result.error:
                        summary.failed.append(result.error)
                        report_error(result.error)
                    else:
                        summary.processed += 1
                    progress.update(1)
    except KeyboardInterrupt:
        summary.interrupted = True  # every file written so far is complete (written atomically)
    summary.seconds = time.perf_counter() - started
    return summary
