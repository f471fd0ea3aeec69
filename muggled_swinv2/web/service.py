"""What the web app does with an upload, without Gradio: check it against the limits, read it,
run the job layer on it (jobs/images.py, jobs/video.py) and write the results into a
per-request folder of the server's temporary folder.

One model is in memory, used by one request at a time (a lock, beside the queue of the page).
Every problem with an upload is an UploadError whose message is shown on the page as it is.
"""

import itertools
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import cv2

from ..errors import UserError
from ..io.images import ImageReadError, display_bgr, picture_size, read_image, save_image, save_npy
from ..io.ledger import OutputLedger
from ..io.video import PictureNotVideo, VideoError, VideoReader, count_frames
from ..geometry import CalibrationError, check_known_points, check_points_inside
from ..jobs.images import ImageJobOptions, plan_tasks, predict_and_write
from ..io.av_video import pyav_installed
from ..jobs.stereo import (StereoOptions, check_stereo_video_paths, is_video, plan_stereo_tasks, run_stereo_job,
                           run_stereo_video_job)
from ..jobs.metric import MetricOptions
from ..jobs.video import VideoJobOptions, run_video_job
from ..memory import SizeOptionNames
from ..predict import MAX_NETWORK_SIDE, predict_depth

# The image job's outputs offered for download (rows of jobs/images.OUTPUTS): the colour picture,
# the 16-bit PNG, the float depth and the mesh that the 3D view shows.
IMAGE_DOWNLOADS = ("png", "png16", "npy", "mesh")
# With known points (the Metric box), also the metric depth and the camera (the table's metric rows).
METRIC_DOWNLOADS = ("metric", "metric-png16", "camera")
MAX_KNOWN_POINTS = 100  # rows of the known points table a request may hold
PREVIEW_LONG_SIDE = 256  # the mesh has about this many vertices on the long side: the browser stays fast
KEEP_REQUESTS = 16  # result folders kept; older ones are deleted (the page holds its own copies)
SQUARE, KEEP_ASPECT = "square (MiDaS's exact pipeline)", "keep aspect ratio"
# The memory check's advice in the page's terms: its size field is the long side fed to the network.
PAGE_SIZE_NAMES = SizeOptionNames(size="long side", batch="batch size")


def browser_video_name(stem: str, kind: str) -> str:
    """The file name of a video the page shows: H.264 MP4 with the upload's sound through PyAV (the
    [video] extra), else WebM, whose VP8 OpenCV writes at even sizes only (hence even_size)."""
    return f"{stem}_{kind}{'.mp4' if pyav_installed() else '.webm'}"


class UploadError(UserError):
    """An upload the server will not or cannot process; the message is for the page."""


class ServerStopping(Exception):
    """Raised inside a running video job when the server is told to stop (Ctrl-C, SIGTERM)."""


@dataclass
class Limits:
    max_upload_mb: float = 25.0
    max_pixels: int = 25_000_000
    max_video_frames: int = 900
    max_video_seconds: float = 60.0

    def line(self) -> str:
        return (f"Limits: uploads up to {self.max_upload_mb:g} MB, pictures up to {self.max_pixels / 1e6:g} megapixels, "
                f"videos up to {self.max_video_frames} frames and {self.max_video_seconds:g} s.")


@dataclass
class ModelInfo:
    variant: str
    file: Path
    device: str
    dtype: str
    demo: bool = False  # the embedded demo model (formats.weights.is_demo)

    def line(self) -> str:
        demo = (" No checkpoint was given or found, so this is the **embedded demo model**, trained on synthetic "
                "scenes only: for real photos get a MiDaS model (`muggled-swinv2 download tiny`) and restart.") if self.demo else ""
        return f"Model: **{self.variant}** from `{self.file.name}` on **{self.device}** ({self.dtype}).{demo}"


@dataclass
class StereoResult:
    """What the Stereo tab shows and offers: an anaglyph preview (a picture's) or the stereo video,
    the files, and the comfort line."""
    preview: Path | None  # a picture's red-cyan anaglyph
    video: Path | None  # a video's stereo video
    downloads: list[Path]
    comfort: str
    seconds: float


@dataclass
class PictureResult:
    """What the Picture tab shows and offers for download."""
    photo: Path  # the picture as 8-bit, for the before/after view
    depth_png: Path  # the colour depth picture
    downloads: list[Path]
    seconds: float
    model3d: Path  # the mesh for the 3D view (a binary PLY)


def network_size(mode: str, size) -> int | None:
    """The page's size field as the jobs' size: None for the native size (0, empty, or the square
    mode); UploadError (one line) for a size that is not a whole number up to MAX_NETWORK_SIDE."""
    if mode == SQUARE or not size:
        return None
    try:
        whole = int(size)
    except (OverflowError, ValueError):  # inf, NaN
        whole = None
    if whole is None or whole != size or not 0 < whole <= MAX_NETWORK_SIDE:
        text = repr(size)
        shown = text if len(text) <= 16 else f"{text[:8]}... ({len(text)} digits)"
        raise UploadError(f"Size {shown}: the network takes a whole number of pixels up to {MAX_NETWORK_SIDE} "
                          f"(0 = the model's native size).")
    return whole


STEREO_PAGE_FORMATS = ("half-sbs", "sbs", "anaglyph", "tb", "half-tb", "cross", "vr180")  # one file each
MAX_PAGE_DIVERGENCE_PCT = 10.0


def stereo_page_options(format: str, divergence, convergence, auto: bool) -> StereoOptions:
    """The Stereo tab's settings as the stereo job's options (relative depth: the model's),
    UploadError (one line) for a setting out of range."""
    if format not in STEREO_PAGE_FORMATS:
        raise UploadError(f"Format {format!r}: choose one of {', '.join(STEREO_PAGE_FORMATS)}.")
    if not auto:
        if not (isinstance(divergence, (int, float)) and 0 < divergence <= MAX_PAGE_DIVERGENCE_PCT):
            raise UploadError(f"Divergence {divergence!r}: a number of % of the width in (0, {MAX_PAGE_DIVERGENCE_PCT:g}].")
        if not (isinstance(convergence, (int, float)) and 0 <= convergence <= 1):
            raise UploadError(f"Convergence {convergence!r}: a number in [0, 1].")
    return StereoOptions(format=format, divergence_pct=float(divergence or 2.0), convergence=float(convergence or 0.0),
                         auto=bool(auto), overwrite=True)


def image_options(out_dir: Path, colormap: str, mode: str, size, image_hw: tuple[int, int],
                  metric: MetricOptions | None = None) -> ImageJobOptions:
    """The page's settings as the image job's options: --raw png16,npy,mesh (and with `metric`,
    metric,metric-png16 and the camera), size 0 or None = native (network_size), the command line's
    camera, and one mesh vertex per --point-step pixels so that a picture of `image_hw` gives about
    PREVIEW_LONG_SIDE on its long side."""
    metric_kinds = METRIC_DOWNLOADS[:2] if metric is not None else ()
    return ImageJobOptions(out_dir=out_dir, raw_formats=(*IMAGE_DOWNLOADS[1:], *metric_kinds), colormap=colormap,
                           square=mode == SQUARE, size=network_size(mode, size), overwrite=True, memory_names=PAGE_SIZE_NAMES,
                           point_step=max(1, max(image_hw) // PREVIEW_LONG_SIDE), metric=metric)


# ----------------------------------------------------------------------------- metric depth (the Metric box)


def known_points_of(rows, fit: str, image_hw: tuple[int, int]) -> tuple[tuple[float, float, float], ...]:
    """The page's known points table (rows of x, y, z; blank rows left out) -> the points, checked
    as the command line checks them. UploadError (one line naming the row) for a cell that is not
    a number, a point outside the picture, a bad distance, too few points or too many rows."""
    rows = [row for row in (rows or []) if any(cell not in (None, "") for cell in row)]
    if len(rows) > MAX_KNOWN_POINTS:
        raise UploadError(f"{len(rows)} known points: this server takes up to {MAX_KNOWN_POINTS}.")
    points = []
    for number, row in enumerate(rows, 1):
        cells = list(row)[:3] + [None] * (3 - len(row))
        try:
            x, y, z = (float(cell) for cell in cells)
        except (TypeError, ValueError):
            raise UploadError(f"Known point {number}: expected the numbers x, y and z (metres), got "
                              f"{', '.join('blank' if cell in (None, '') else repr(cell)[:20] for cell in cells)}; "
                              f"type its distance in the z column.") from None
        points.append((x, y, z))
    if not points:
        raise UploadError("No known points: click the depth picture where you know the distance, and type it in z.")
    try:
        check_known_points(points, fit)
        check_points_inside(np.asarray(points), image_hw[1], image_hw[0])
    except CalibrationError as error:
        raise UploadError(f"{str(error)[0].upper()}{str(error)[1:]}.") from None
    return tuple(points)


def field_of_view(fov) -> float | None:
    """The page's field of view: 0 or empty = the photo's EXIF, else 60 degrees; UploadError outside (0, 180)."""
    if not fov:
        return None
    if not (isinstance(fov, (int, float)) and 0 < fov < 180):
        raise UploadError(f"Field of view {fov!r}: expected degrees between 0 and 180 (0 = from the photo).")
    return float(fov)


@dataclass
class MetricPictureResult:
    """What the Metric box shows: the downloads (the picture's and the metric ones), the fit's
    summary line, the metric depth file (for the readout at a clicked pixel) and the mesh in metres."""
    downloads: list[Path]
    summary: str
    metric_npy: Path
    model3d: Path


def depth_at(npy: Path, x: float, y: float, metric: bool) -> str:
    """One line: the depth at pixel (x, y) of a depth file of this server (np.load, memory-mapped)."""
    depth = np.load(npy, mmap_mode="r")
    column, row = int(x), int(y)
    if not (0 <= row < depth.shape[0] and 0 <= column < depth.shape[1]):
        return f"Pixel ({x:g}, {y:g}) is outside the {depth.shape[1]}x{depth.shape[0]} picture."
    value = float(depth[row, column])
    if not metric:
        return f"Pixel ({column}, {row}): relative inverse depth {value:.4g} (fit the known points for metres)."
    if value != value:
        return f"Pixel ({column}, {row}): no metric depth (the fit puts it at or beyond infinity)."
    return f"Pixel ({column}, {row}): **{value:.3f} m**"


class DepthService:
    def __init__(self, model, info: ModelInfo, limits: Limits, workdir: Path):
        self.model, self.info, self.limits = model, info, limits
        self.results = Path(workdir) / "results"
        self.results.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()  # one prediction at a time: one model's worth of memory
        self.numbers = itertools.count(1)
        self.stopping = threading.Event()  # set by stop(): a running video job ends at its next frame

    def warm_up(self):
        """One prediction each at the native square and at 4:3 (photos) before the first visitor:
        the first forward builds the model's caches, which would otherwise slow the first upload."""
        native = self.model.config.native_size
        for height, width in ((native, native), (480, 640)):
            predict_depth(self.model, np.zeros((height, width, 3), np.uint8))

    # ------------------------------------------------------------------ folders and checks

    def request_folder(self) -> Path:
        """A fresh folder for one request's results; the oldest beyond KEEP_REQUESTS go."""
        folder = self.results / f"{next(self.numbers):06d}"
        folder.mkdir()
        for old in sorted(self.results.iterdir())[:-KEEP_REQUESTS]:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    def check_upload(self, path, what: str) -> Path:
        if not path:
            raise UploadError(f"No {what} uploaded.")
        path = Path(path)
        if not path.is_file():
            raise UploadError(f"The uploaded {what} is missing on the server; upload it again.")
        megabytes = path.stat().st_size / 1e6
        if megabytes > self.limits.max_upload_mb:
            raise UploadError(f"{path.name} is {megabytes:.1f} MB; this server takes uploads up to "
                              f"{self.limits.max_upload_mb:g} MB.")
        return path

    def check_pixels(self, name: str, width: int, height: int, what: str = "pictures"):
        """The --max-megapixels limit, for pictures and for video frames alike."""
        if width * height > self.limits.max_pixels:
            raise UploadError(f"{name} has {width}x{height} pixels ({width * height / 1e6:.1f} megapixels); "
                              f"this server takes {what} up to {self.limits.max_pixels / 1e6:g} megapixels.")

    def read_picture(self, path) -> tuple[Path, np.ndarray]:
        """The upload decoded, once its header has shown that it is within the pixel limit (a small
        file can decode to gigabytes): a format whose header cannot be read is not decoded."""
        path = self.check_upload(path, "picture")
        try:
            self.check_pixels(path.name, *picture_size(path))
            image = read_image(path)
        except ImageReadError as error:
            raise UploadError(str(error).replace(str(path), path.name)) from None
        self.check_pixels(path.name, image.shape[1], image.shape[0])
        return path, image

    def check_video(self, path) -> Path:
        path = self.check_upload(path, "video")
        try:
            reader = VideoReader(str(path))
        except PictureNotVideo:
            raise UploadError(f"{path.name}: is a picture, not a video; for its depth use the Picture tab.") from None
        except VideoError:
            raise UploadError(f"{path.name}: cannot open as a video.") from None
        fps = reader.fps
        width, height = (int(reader.capture.get(side)) for side in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
        reader.close()
        if not width or not height:
            raise UploadError(f"{path.name}: its frame size cannot be read before decoding (empty or corrupt video).")
        self.check_pixels(path.name, width, height, "video frames")  # before a frame is decoded
        limit = self.limits.max_video_frames
        frames = count_frames(path, up_to=limit + 1)
        if not frames:
            raise UploadError(f"{path.name}: no frames could be read (empty or corrupt video).")
        if frames > limit:
            raise UploadError(f"{path.name} has more than {limit} frames; this server takes videos up to {limit} frames.")
        if frames / fps > self.limits.max_video_seconds:
            raise UploadError(f"{path.name} lasts {frames / fps:.1f} s; this server takes videos up to "
                              f"{self.limits.max_video_seconds:g} s.")
        return path

    # ------------------------------------------------------------------ work

    def image(self, upload, colormap: str = "inferno", mode: str = KEEP_ASPECT, size: int | None = None) -> PictureResult:
        """An uploaded picture -> its depth, computed and written by the image job
        (`muggled-swinv2 image --raw png16,npy,mesh`) into a fresh folder."""
        path, image = self.read_picture(upload)
        folder = self.request_folder()
        options = image_options(folder, colormap, mode, size, image.shape[:2])
        task = plan_tasks([(path, path.stem)], options)[0]
        started = time.perf_counter()
        with self.lock:  # the image job's memory check (memory.py), its prediction and its writers
            [outcome] = predict_and_write(self.model, [(task, image)], options, OutputLedger())
        if outcome.error:
            raise UploadError(outcome.error.replace(str(path), path.name))
        seconds = time.perf_counter() - started
        photo = folder / "photo.jpg"
        save_image(photo, display_bgr(image))
        return PictureResult(photo, task.outputs["png"], [task.outputs[kind] for kind in IMAGE_DOWNLOADS], seconds,
                             task.outputs["mesh"])

    def metric(self, upload, points, fit: str = "affine", fov=None, colormap: str = "inferno", mode: str = KEEP_ASPECT,
               size: int | None = None) -> MetricPictureResult:
        """An uploaded picture and the page's known points table (rows x, y, z metres) -> its metric
        depth, camera and mesh in metres, as `muggled-swinv2 image --known X,Y=Z... --raw
        png16,npy,mesh,metric,metric-png16` writes them (the job's one writer table)."""
        if fit not in ("affine", "scale"):
            raise UploadError(f"Fit {fit!r}: expected affine or scale.")
        path, image = self.read_picture(upload)
        metric = MetricOptions(known_points=known_points_of(points, fit, image.shape[:2]), fit=fit,
                               fov_deg=field_of_view(fov))
        folder = self.request_folder()
        options = image_options(folder, colormap, mode, size, image.shape[:2], metric)
        task = plan_tasks([(path, path.stem)], options)[0]
        with self.lock:
            [outcome] = predict_and_write(self.model, [(task, image)], options, OutputLedger())
        if outcome.error:
            raise UploadError(outcome.error.replace(str(path), path.name))
        summary = "; ".join(line.replace(str(path), path.name) for line in outcome.info + outcome.notes)
        return MetricPictureResult([task.outputs[kind] for kind in (*IMAGE_DOWNLOADS, *METRIC_DOWNLOADS)], summary,
                                   task.outputs["metric"], task.outputs["mesh"])

    def readout(self, depth_file, x: float, y: float) -> str:
        """The depth at pixel (x, y) of a depth file this server wrote (the page's state: the
        picture's .npy, or its _metric.npy once fitted)."""
        if not depth_file:
            return ""
        path = Path(depth_file).resolve()
        if self.results.resolve() not in path.parents or not path.is_file():
            return "That result has expired; estimate the depth again."
        return depth_at(path, x, y, metric=path.name.endswith("_metric.npy"))

    def video(self, upload, colormap: str = "inferno", mode: str = KEEP_ASPECT, size: int | None = None,
              side_by_side: bool = False) -> Path:
        """An uploaded video -> its depth video as `muggled-swinv2 video` makes it, in a file browsers
        play (browser_video_name)."""
        path = self.check_video(upload)
        target = self.request_folder() / browser_video_name(path.stem, "depth")
        options = VideoJobOptions(colormap=colormap, side_by_side=side_by_side, square=mode == SQUARE,
                                  size=network_size(mode, size), even_size=not pyav_installed(),
                                  memory_names=PAGE_SIZE_NAMES)
        with self.lock:
            try:  # its progress bar feeds the page's
                run_video_job(self.model, path, target, options, progress=self.stop_requested)
            except VideoError as error:
                raise UploadError(str(error).replace(str(path), path.name)) from None
            except ServerStopping:
                raise UploadError("The server is stopping; the video was not finished.") from None
        return target

    # ------------------------------------------------------------------ stereo

    def stereo(self, upload, format: str = "half-sbs", divergence: float = 2.0, convergence: float = 0.5,
               auto: bool = False) -> StereoResult:
        """An uploaded picture or video -> its stereo files as `muggled-swinv2 stereo` makes them
        (jobs/stereo.py), with a picture's anaglyph as the preview."""
        options = stereo_page_options(format, divergence, convergence, auto)
        if upload and is_video(upload):
            return self.stereo_video(upload, options)
        path, image = self.read_picture(upload)
        folder = self.request_folder()
        started = time.perf_counter()
        with self.lock:
            depth = predict_depth(self.model, image)
        depth_file = folder / f"{path.stem}_depth.npy"  # the job takes the depth from here (and it is a download)
        save_npy(depth_file, depth)
        [task] = plan_stereo_tasks([str(path)], folder, options, depth_file)
        summary = run_stereo_job(None, [task], options, quiet=True)
        if summary.failed:
            raise UploadError(summary.failed[0].replace(str(path), path.name))
        preview = task.outputs[0]
        if options.format != "anaglyph":
            anaglyph = replace(options, format="anaglyph")
            [preview_task] = plan_stereo_tasks([str(path)], folder / "preview", anaglyph, depth_file)
            run_stereo_job(None, [preview_task], anaglyph, quiet=True)
            preview = preview_task.outputs[0]
        return StereoResult(preview, None, [*task.outputs, task.comfort_json, depth_file], summary.comfort.summary(),
                            time.perf_counter() - started)

    def stereo_video(self, upload, options: StereoOptions) -> StereoResult:
        path = self.check_video(upload)
        target = self.request_folder() / browser_video_name(path.stem, f"stereo_{options.format}")
        started = time.perf_counter()
        with self.lock:
            try:
                check_stereo_video_paths(path, target, options)
                summary = run_stereo_video_job(self.model, path, target, options, quiet=True, progress=self.stop_requested)
            except UserError as error:
                raise UploadError(str(error).replace(str(path), path.name)) from None
            except ServerStopping:
                raise UploadError("The server is stopping; the video was not finished.") from None
        comfort_json = target.with_name(f"{target.stem}_comfort.json")
        return StereoResult(None, target, [target, comfort_json], summary.line(), time.perf_counter() - started)

    # ------------------------------------------------------------------ stopping

    def stop_requested(self, *progress):
        """The video job's progress callback: ends the job at the frame being written once stop() is called."""
        if self.stopping.is_set():
            raise ServerStopping

    def stop(self, timeout: float) -> bool:
        """Ask a running request to end, and wait for it (True when none runs any more). The server
        must not exit under a running job: its OpenCV and PyTorch threads would abort the process
        ("terminate called without an active exception")."""
        self.stopping.set()
        if self.lock.acquire(timeout=timeout):
            self.lock.release()
            return True
        return False
