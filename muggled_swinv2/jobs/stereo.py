"""Stereo pictures: depth (the model's, or a given .npy), the second eye, the layout, the comfort report.

For each picture: the depth -> disparity (geometry/stereo.py: metric `f * B / z`, or relative by
divergence and convergence) -> the two eyes -> the format's frames (geometry/stereo_layouts.py)
-> the files, every one under the output rule (io/outputs.py), with `<name>_comfort.json` beside
them (the disparity range, the share beyond comfort, window violations and the settings used).
"""

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import cv2

from ..errors import UserError, one_line
from ..geometry import camera_intrinsics
from ..geometry.stereo import disparity_from_inverse_depth, disparity_from_metric_depth, render_stereo
from ..geometry.stereo_layouts import ComfortReport, auto_strength, comfort_report, layout_frames
from ..io.atomic import write_atomically
from ..io.exif import read_exif_focal
from ..io.images import IMAGE_SUFFIXES, ImageReadError, display_bgr, read_image, save_image
from ..io.known_depth import decode_depth_file
from ..io.outputs import OutputError, OutputRule
from ..predict import predict_batch
from .images import ImageJobError, expand_inputs, report_error
from .metric import MetricOptions, calibrate_picture

DEPTH_KINDS = ("inverse", "metric")
# Format -> the name endings of its files (players read the layout from a VR180 file's name).
FORMAT_ENDINGS = {"sbs": ("_sbs",), "half-sbs": ("_half-sbs",), "tb": ("_tb",), "half-tb": ("_half-tb",),
                  "anaglyph": ("_anaglyph",), "cross": ("_cross",), "vr180": ("_vr180_180x180_3dh_LR",),
                  "wiggle": ("_wiggle",), "pair": ("_left", "_right")}
WIGGLE_FRAME_MS = 150


class StereoInputError(UserError):
    """A depth file or setting that does not fit the pictures (one line; nothing is written)."""


@dataclass
class StereoOptions:
    format: str = "sbs"
    eye: str = "left"  # which eye the picture is: left, right or center
    divergence_pct: float = 2.0  # relative depth: the disparity between nearest and farthest, % of the width
    convergence: float = 0.5  # relative depth: the screen plane, 0 = at the nearest point ... 1 = the farthest
    auto: bool = False  # relative depth: divergence and convergence chosen within comfort
    baseline_m: float = 0.063  # metric depth: the distance between the eyes
    convergence_distance_m: float = math.inf  # metric depth: the screen plane's distance
    fov_deg: float | None = None  # the camera's horizontal field of view (metric depth, vr180) ...
    focal_px: float | None = None  # ... or its focal length in pixels, which wins; neither: EXIF, else 60 degrees
    depth_kind: str = "inverse"
    calibration: MetricOptions | None = None  # what the user knows: the model's depth made metric (jobs/metric.py)
    dilation_px: int = 2  # near surfaces grown by this much before warping (against halos)
    square: bool = False
    size: int | None = None
    overwrite: bool = False

    @property
    def metric(self) -> bool:
        """Metric geometry (f * B / z): a metric depth file, or the depth calibrated to what the user knows."""
        return self.depth_kind == "metric" or self.calibration is not None

    def camera_for(self, image_hw: tuple[int, int], source: Path | None = None) -> tuple[float, str]:
        """(focal length in pixels, where it came from): --focal-px, --fov, the picture's EXIF, else
        60 degrees (geometry/camera.py)."""
        exif = read_exif_focal(source) if source is not None and self.fov_deg is None and self.focal_px is None else None
        camera = camera_intrinsics(image_hw[1], image_hw[0], self.fov_deg, self.focal_px, exif)
        return camera.fx, camera.focal_source


@dataclass
class StereoTask:
    source: Path
    outputs: list[Path]  # the format's files, in FORMAT_ENDINGS order
    comfort_json: Path
    depth_file: Path | None = None


@dataclass
class StereoSummary:
    processed: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    warp_seconds: float = 0.0
    comfort: ComfortReport | None = None  # the last picture's
    interrupted: bool = False

    def line(self) -> str:
        per_image = f", {self.seconds / self.processed:.3f} s per picture ({self.warp_seconds / self.processed:.3f} s " \
                    f"of it the stereo warp)" if self.processed else ""
        comfort = f"; {self.comfort.summary()}" if self.comfort and self.processed == 1 else ""
        stop = " (interrupted)" if self.interrupted else ""
        return f"stereo: processed {self.processed}, failed {len(self.failed)}{per_image}{comfort}{stop}"


def plan_stereo_tasks(inputs, out: Path, options: StereoOptions, depth_file: Path | None = None) -> list[StereoTask]:
    """The pictures and their files: `out` is a folder, or (one picture) a file name whose stem
    the format's endings replace for several files. Refused in one line, before any work: no
    picture, a depth file for several pictures, an output the rule forbids."""
    file_out = out.suffix.lower() in IMAGE_SUFFIXES or out.suffix.lower() == ".gif"
    sources, errors = expand_inputs(inputs, recursive=False, exclude_dir=None if file_out else out.resolve())
    for message in errors:
        report_error(message)
    if not sources:
        raise ImageJobError("no input pictures found")
    if depth_file is not None and len(sources) > 1:
        raise StereoInputError(f"--depth {depth_file}: one depth map for {len(sources)} pictures; give one picture")
    if file_out and len(sources) > 1:
        raise StereoInputError(f"--out {out}: a file name for {len(sources)} pictures; give a folder")
    endings = FORMAT_ENDINGS[options.format]
    suffix = ".gif" if options.format == "wiggle" else ".png"
    tasks = []
    for source, stem in sources:
        if file_out:
            base = out.with_suffix("")
            outputs = [out] if len(endings) == 1 else [out.with_name(f"{base.name}{ending}{out.suffix}") for ending in endings]
            comfort_json = out.with_name(f"{base.name}_comfort.json")
        else:
            outputs = [out / f"{stem}{ending}{suffix}" for ending in endings]
            comfort_json = out / f"{stem}{endings[0] if len(endings) == 1 else ''}_comfort.json"
        tasks.append(StereoTask(source, outputs, comfort_json, depth_file))
    rule = OutputRule(options.overwrite, inputs={**{task.source: "the input picture" for task in tasks},
                                                 **({depth_file: "the --depth file"} if depth_file else {})})
    for task in tasks:
        for path in (*task.outputs, task.comfort_json):
            rule.check(path, "--out")
    return tasks


DEPTH_FILE_SUFFIXES = (".npy", ".pfm", ".tif", ".tiff")  # the float maps `image --raw` writes (npy, pfm, tiff, metric)


def load_depth_file(path: Path, kind: str, picture_hw: tuple[int, int]) -> np.ndarray:
    """A depth map (H, W) float32 from a float file `image --raw` writes (DEPTH_FILE_SUFFIXES),
    checked against its picture and its kind (one line naming the file if not). Metric: metres,
    NaN = no depth (what the metric calibration writes where its fit passes infinity), +inf = the
    sky; both are rendered infinitely far. Zero and negative values are refused."""
    accepted = f"--depth takes a float depth map: {', '.join(DEPTH_FILE_SUFFIXES)} (as image --raw npy,pfm,tiff,metric writes)"
    if path.suffix.lower() not in DEPTH_FILE_SUFFIXES:
        raise StereoInputError(f"--depth {path}: not a depth map file; {accepted}")
    try:
        depth = decode_depth_file(path)
    except (OSError, ValueError, EOFError, cv2.error) as error:
        raise StereoInputError(f"--depth {path}: cannot be read ({one_line(error)}); {accepted}") from None
    depth = depth.squeeze()
    if depth.ndim != 2 or depth.dtype.kind not in ("fiu" if path.suffix.lower() == ".npy" else "f"):
        raise StereoInputError(f"--depth {path}: expected an (H, W) map of float numbers, got {depth.dtype} {depth.shape}")
    if depth.shape != tuple(picture_hw):
        raise StereoInputError(f"--depth {path}: {depth.shape[1]}x{depth.shape[0]} does not match the picture's "
                               f"{picture_hw[1]}x{picture_hw[0]}")
    depth = depth.astype(np.float32)
    if kind == "metric":
        with np.errstate(invalid="ignore"):
            known = ~np.isnan(depth)
            if not np.all(depth[known] > 0):
                raise StereoInputError(f"--depth {path}: metric depth must be positive metres (NaN: no depth, +inf: "
                                       f"the sky); it has zero or negative values (is it inverse depth? --depth-kind inverse)")
        if not known.any():
            raise StereoInputError(f"--depth {path}: no pixel has a depth (all NaN)")
    if kind == "inverse" and not np.isfinite(depth).all():
        raise StereoInputError(f"--depth {path}: inverse depth must be finite (is it metric? --depth-kind metric)")
    return depth


def stereo_frames(image: np.ndarray, depth_hw: np.ndarray, options: StereoOptions,
                  value_range: tuple[float, float] | None = None, strength: tuple[float, float] | None = None,
                  source: Path | None = None) -> tuple[list[np.ndarray], ComfortReport, dict]:
    """One picture and its depth (metric: metres, NaN or +inf infinitely far; else inverse) ->
    (the format's frames as BGR uint8, the comfort report, the settings used: divergence and
    convergence as chosen by --auto, the focal length and its source: `source`'s EXIF when the
    options give no camera). A video passes its steady inverse-depth `value_range` and the
    `strength` (divergence, convergence) it keeps."""
    rgb_chw = torch.from_numpy(np.ascontiguousarray(display_bgr(image)[:, :, ::-1].transpose(2, 0, 1))).float() / 255
    focal, focal_source = options.camera_for(rgb_chw.shape[1:], source)
    depth = torch.from_numpy(depth_hw)
    settings = {"format": options.format, "eye": options.eye, "depth_kind": "metric" if options.metric else "inverse",
                "focal_px": focal, "focal_source": focal_source}
    if options.metric:
        depth = torch.nan_to_num(depth, nan=math.inf)  # no depth (beyond the calibration's infinity): far away
        disparity = disparity_from_metric_depth(depth, focal, options.baseline_m, options.convergence_distance_m)
        settings.update(baseline_m=options.baseline_m,  # JSON has no infinity: null is parallel cameras
                        convergence_distance_m=None if math.isinf(options.convergence_distance_m) else options.convergence_distance_m)
    else:
        divergence, convergence = strength or (auto_strength(depth) if options.auto
                                               else (options.divergence_pct, options.convergence))
        disparity = disparity_from_inverse_depth(depth, divergence, convergence, value_range)
        settings.update(divergence_pct=divergence, convergence=convergence, auto=options.auto)
    left, right = render_stereo(rgb_chw, disparity, options.eye, options.dilation_px)
    frames = layout_frames(left, right, options.format, focal)
    bgr = [np.ascontiguousarray((frame.clamp(0, 1) * 255).round().to(torch.uint8).numpy().transpose(1, 2, 0)[:, :, ::-1])
           for frame in frames]
    return bgr, comfort_report(disparity), settings


def write_stereo_files(task: StereoTask, frames: list[np.ndarray], comfort: ComfortReport, settings: dict,
                       options: StereoOptions, rule: OutputRule) -> None:
    """The format's files and the comfort JSON, each atomically, each recorded as ours."""
    for path in (*task.outputs, task.comfort_json):
        rule.check(path, "--out")
        path.parent.mkdir(parents=True, exist_ok=True)
    if options.format == "wiggle":
        animation = cv2.Animation()
        animation.frames, animation.durations, animation.loop_count = frames, [WIGGLE_FRAME_MS] * len(frames), 0
        ok, encoded = cv2.imencodeanimation(task.outputs[0].suffix, animation)
        if not ok:
            raise ValueError(f"OpenCV cannot write an animated {task.outputs[0].suffix}")
        write_atomically(task.outputs[0], lambda file: file.write(encoded.tobytes()))
    else:
        for path, frame in zip(task.outputs, frames):
            save_image(path, frame)
    for path in task.outputs:
        rule.record(path)
    report = {"source": str(task.source), "files": [str(path) for path in task.outputs], "settings": settings,
              **comfort.as_dict()}
    text = json.dumps(report, indent=2) + "\n"
    write_atomically(task.comfort_json, lambda file: file.write(text.encode()))
    rule.record(task.comfort_json)


def run_stereo_job(model, tasks: list[StereoTask], options: StereoOptions, quiet: bool = False) -> StereoSummary:
    """Depth, eyes, layout and files for every task; a picture that fails is reported and skipped."""
    summary = StereoSummary()
    rule = OutputRule(options.overwrite, inputs={task.source: "the input picture" for task in tasks})
    started = time.perf_counter()
    try:
        for task in tasks:
            try:
                image = read_image(task.source)
                if task.depth_file is not None:
                    depth = load_depth_file(task.depth_file, options.depth_kind, image.shape[:2])
                else:
                    depth = predict_batch(model, [image], options.square, options.size)[0]
                calibration = None
                if options.calibration is not None:
                    calibration = calibrate_picture(task.source, depth, options.calibration)
                    depth = calibration.depth
                warp_started = time.perf_counter()
                frames, comfort, settings = stereo_frames(image, depth, options, source=task.source)
                summary.warp_seconds += time.perf_counter() - warp_started
                if calibration is not None:
                    settings["calibration"] = calibration.calibration.record()
                    if not quiet:
                        print(f"{task.source}: {calibration.summary()}", file=sys.stderr)
                write_stereo_files(task, frames, comfort, settings, options, rule)
            except (ImageReadError, StereoInputError, OutputError) as error:
                summary.failed.append(str(error))
                report_error(str(error))
                continue
            except (OSError, ValueError, RuntimeError) as error:
                message = f"{task.source}: {one_line(error)}"
                summary.failed.append(message)
                report_error(message)
                continue
            summary.processed += 1
            summary.comfort = comfort
            if not quiet:
                print(f"{task.outputs[0]}: {comfort.summary()}", file=sys.stderr)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.seconds = time.perf_counter() - started
    return summary


# ----------------------------------------------------------------------------- video

VIDEO_FORMATS = ("sbs", "half-sbs", "tb", "half-tb", "anaglyph", "cross", "vr180")  # one picture per frame
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")


def is_video(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class StereoVideoSummary:
    frames: int
    seconds: float
    warp_seconds: float
    comfort: ComfortReport | None
    interrupted: bool
    notes: list[str]

    def line(self) -> str:
        rate = f", {self.frames / self.seconds:.2f} frames/s" if self.seconds > 0 else ""
        warp = f" ({self.warp_seconds / self.frames:.3f} s a frame for the stereo warp)" if self.frames else ""
        comfort = f"; {self.comfort.summary()}" if self.comfort else ""
        stop = " (interrupted: the file holds the frames done so far)" if self.interrupted else ""
        notes = "".join(f"; {note}" for note in self.notes)
        return f"wrote {self.frames} stereo frames{rate}{warp}{comfort}{stop}{notes}"


def comfort_json_for(target: Path) -> Path:
    return target.with_name(f"{target.stem}_comfort.json")


def check_stereo_video_paths(source: Path, target: Path, options: StereoOptions) -> None:
    """Before any work: a format a video can hold, a container we write, the output rule."""
    from ..io.av_video import COLOUR_CONTAINERS, av
    from ..io.video import check_video_target

    if options.format not in VIDEO_FORMATS:
        raise StereoInputError(f"--format {options.format}: a video holds one picture per frame; "
                               f"use one of {', '.join(VIDEO_FORMATS)}")
    if not source.is_file():
        raise StereoInputError(f"{source}: no such video file")
    if av is not None and target.suffix.lower() not in COLOUR_CONTAINERS:
        raise StereoInputError(f"--out {target}: give a video file name ({', '.join(COLOUR_CONTAINERS)})")
    if av is None:
        check_video_target(target)
    rule = OutputRule(options.overwrite, inputs={source: "the input video"})
    rule.check(target, "--out")
    rule.check(comfort_json_for(target), "--out")


def mean_comfort(reports: list[ComfortReport]) -> ComfortReport:
    """A clip's comfort: the range over all frames, the shares averaged over the frames."""
    return ComfortReport(
        nearest_pct=max(report.nearest_pct for report in reports),
        farthest_pct=min(report.farthest_pct for report in reports),
        beyond_comfort_share=float(np.mean([report.beyond_comfort_share for report in reports])),
        window_violation_left=float(np.mean([report.window_violation_left for report in reports])),
        window_violation_right=float(np.mean([report.window_violation_right for report in reports])),
        comfort_limit_pct=reports[0].comfort_limit_pct,
    )


def run_stereo_video_job(model, source: Path, target: Path, options: StereoOptions, batch_size: int = 1,
                         quiet: bool = False, progress=None) -> StereoVideoSummary:
    """The stereo video of `source`: the model's depth of every frame, stabilised as `video` does
    (one scale and shift, a moving camera followed, reset at cuts), normalised by a running range
    so that the strength holds steady; every frame at its own time, the sound kept (PyAV; without
    it OpenCV writes the frames at a constant rate and no sound, and the summary says so). The
    comfort JSON goes beside `target`. `progress(frames_written, frame_count_or_None)` is called
    after each frame (in the writer thread; the web page stops a job by raising there)."""
    from ..io.av_video import PYAV_MISSING_NOTE, AvVideoReader, AvVideoWriter, av
    from ..io.video import AtomicVideoWriter, VideoError, VideoReader
    from ..predict import infer_prepared, prepare_input, restore_size
    from ..video.pipeline import run_pipelined
    from ..video.stabilize import DepthStabilizer
    from .video import RunningRange, job_error, one_opencv_thread

    notes = [] if av is not None else [PYAV_MISSING_NOTE]
    if av is not None:
        reader = AvVideoReader(source)
        frames, fps, frame_count = reader.frames(), reader.fps, reader.frame_count
    else:
        reader = VideoReader(str(source))
        frames, fps, frame_count = iter(reader), reader.fps, reader.frame_count
    stabilizer, running_range = DepthStabilizer(), RunningRange()
    state = {"writer": None, "reports": [], "strength": None, "warp": 0.0}
    native = model.config.native_size

    def image_of(frame):
        return frame.image_bgr if av is not None else frame

    def prepare(frame):  # in the reader thread
        image = image_of(frame)
        return prepare_input(image, native, options.square, options.size), image.shape[:2]

    def infer(prepared):  # in this thread
        depths = infer_prepared(model, [network_input for network_input, _ in prepared])
        return [restore_size(depth, size_hw) for depth, (_, size_hw) in zip(depths, prepared)]

    def sink(item):  # in the writer thread: stabilise, warp, lay out, encode
        image = image_of(item.frame)
        depth = stabilizer(item.result, image).depth
        if state["strength"] is None:
            state["strength"] = auto_strength(torch.from_numpy(depth)) if options.auto else (
                options.divergence_pct, options.convergence)
        warp_started = time.perf_counter()
        layout, comfort, settings = stereo_frames(image, depth, options, running_range.update(depth), state["strength"])
        state["warp"] += time.perf_counter() - warp_started
        state["reports"].append(comfort)
        state["settings"] = settings
        if state["writer"] is None:
            size_wh = layout[0].shape[1::-1]
            state["writer"] = (AvVideoWriter(target, fps, size_wh, audio_source=source) if av is not None
                               else AtomicVideoWriter(target, fps, size_wh))
        if av is not None:
            state["writer"].write(layout[0], item.frame.time_s)
        else:
            state["writer"].write(layout[0])
        bar.update(1)
        if progress is not None:
            progress(len(state["reports"]), frame_count)

    interrupted = False
    started = time.perf_counter()
    with one_opencv_thread(), tqdm_bar(frame_count, quiet) as bar:
        try:
            run_pipelined(frames, infer, sink, prepare, batch_size=batch_size)
        except KeyboardInterrupt:
            interrupted = True
        except BaseException as error:
            if state["writer"] is not None:
                state["writer"].abandon()
            reader.close()
            raise job_error(error, source, target, len(state["reports"]) + 1) from None
    reader.close()
    if state["writer"] is None:
        raise VideoError(f"{source}: no frames could be read (empty or corrupt video)")
    state["writer"].finish()
    if av is not None and state["writer"].note:
        notes.append(state["writer"].note)
    comfort = mean_comfort(state["reports"])
    report = {"source": str(source), "files": [str(target)], "frames": len(state["reports"]),
              "settings": state["settings"], **comfort.as_dict()}
    text = json.dumps(report, indent=2) + "\n"
    write_atomically(comfort_json_for(target), lambda file: file.write(text.encode()))
    OutputRule().record(comfort_json_for(target))
    return StereoVideoSummary(len(state["reports"]), time.perf_counter() - started, state["warp"], comfort,
                              interrupted, notes)


def tqdm_bar(total, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", disable=quiet, dynamic_ncols=True)
