"""Depth video from a video: same frame count, size and rate; stabilised depth and steady colours;
the model kept busy by a threaded pipeline; clean Ctrl-C."""

import contextlib
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from ..devices import torch_threads_beside
from ..errors import first_line
from ..io.colormaps import RunningRange, colorize, normalize
from ..memory import JOB_OPTION_NAMES, SizeOptionNames, memory_refusal, network_hw_for
from ..io.outputs import OutputRule, check_writable_folder
from ..geometry import CalibrationError
from ..io.av_video import check_colour_video_target, open_colour_video_writer, pyav_installed
from ..io.video import VideoError, VideoReader, stated_size_wh
from ..predict import check_long_side, infer_prepared, prepare_input, restore_size
from ..video.depth16 import Depth16Writer, depth16_path
from ..video.depth_npz import DepthNpzWriter, FrameMetric
from .metric import ClipCalibration, MetricOptions, save_json
from ..video.pipeline import StageError, one_opencv_thread, run_pipelined
from ..video.stabilize import DepthStabilizer


@dataclass
class VideoJobOptions:
    colormap: str = "inferno"
    side_by_side: bool = False
    per_frame_range: bool = False
    raw_npz: bool = False
    raw_depth16: bool = False  # also the depth as a lossless 16-bit video (video/depth16.py; needs PyAV)
    square: bool = False
    size: int | None = None
    batch_size: int = 1
    memory_check: bool = True  # refuse a size whose prediction would not fit in memory (see memory.py)
    memory_names: SizeOptionNames = JOB_OPTION_NAMES  # how that refusal names the settings (the CLI: its flags)
    stabilize: bool = True  # one scale and shift for the whole video (see video/stabilize.py)
    overwrite: bool = False  # replace outputs this tool wrote (see check_video_paths)
    queue_size: int = 4  # frames read ahead of the model, and predicted ahead of the writer
    even_size: bool = False  # drop an odd last column and row (the web page's WebM preview: io.video.ANY_SIZE_CONTAINERS)
    metric: MetricOptions | None = None  # what the user knows: metric frames in the npz, <stem>_camera.json (jobs/metric.py)


@dataclass
class VideoSummary:
    frames: int
    seconds: float
    interrupted: bool
    resets: int = 0  # stabiliser resets after the first frame (scene cuts)
    timing_note: str | None = None  # how a variable frame rate was written (io.video.steady_rate)
    unfitted: int = 0  # frames whose scale could not be fitted (video.stabilize.ReferenceAligner): not cuts
    motion_note: str | None = None  # frames too small for motion compensation (video.motion.flow_shape)
    writer_note: str | None = None  # how the video was written, or what it lacks (io.av_video.open_colour_video_writer)
    metric_note: str | None = None  # the metric fit (jobs/metric.py ClipCalibration.summary)

    def line(self) -> str:
        rate = f", {self.frames / self.seconds:.2f} frames/s" if self.seconds > 0 else ""
        cuts = f", {self.resets} scene cut{'s' if self.resets != 1 else ''}" if self.resets else ""
        unfitted = (f", {self.unfitted} frame{'s' if self.unfitted != 1 else ''} whose depth scale could not be fitted "
                    f"(matched by median and spread instead)" if self.unfitted else "")
        stop = (f" (interrupted: the files hold the first {self.frames} frames; run the same command again to "
                f"write them whole)" if self.interrupted else "")
        notes = "".join(f"; {note}" for note in (self.timing_note, self.motion_note, self.writer_note, self.metric_note)
                        if note)
        return f"wrote {self.frames} frames{rate}{cuts}{unfitted}{stop}{notes}"


def camera_json_path(target: Path) -> Path:
    """The video's camera and fit beside it: depth.mp4 -> depth_camera.json."""
    return target.with_name(f"{target.stem}_camera.json")


class DepthVideoWriters:
    """The colour video (through FFmpeg with the source's sound when PyAV is installed), with
    --raw npz the float frames with each frame's stabilisation (video/depth_npz.py) and metric depth,
    with --raw depth16 the lossless 16-bit depth video (video/depth16.py); with metric options the
    camera (`camera_json_path`)."""

    def __init__(self, source: Path, target: Path, fps: float, frame_hw: tuple[int, int], options: VideoJobOptions):
        self.options, self.target = options, target
        self.calibration = (ClipCalibration(options.metric, frame_hw, stabilized=options.stabilize)
                            if options.metric is not None else None)
        self.size_wh = output_size_wh(frame_hw, options)
        self.colour_range = RunningRange()
        self.stabilizer = DepthStabilizer() if options.stabilize else None
        self.resets, self.unfitted = [], []  # per frame: the stabiliser restarted (first frame, cuts); no fit
        self.writers = []
        try:
            self.writers.append(open_colour_video_writer(target, fps, self.size_wh, audio_source=source))
            if options.raw_npz:
                settings = self.stabilizer.settings if self.stabilizer is not None else None
                self.writers.append(DepthNpzWriter(target.with_suffix(".npz"), settings))
            if options.raw_depth16:
                self.writers.append(Depth16Writer(depth16_path(target), fps))
        except VideoError:
            self.abandon()
            raise

    @property
    def frames(self) -> int:
        return self.writers[0].frames

    def write(self, frame: np.ndarray, depth: np.ndarray):
        """One frame's raw inverse depth: stabilise, colour, encode."""
        stable = None
        if self.stabilizer is not None:
            stable = self.stabilizer(depth, frame)
            depth = stable.depth
            self.resets.append(stable.reset)
            self.unfitted.append(stable.unfitted)
        metric = None
        if self.calibration is not None:  # on the output frame: one scale and shift for the clip when stabilised
            metric_depth, fit = self.calibration(self.frames, depth, stable is not None and stable.reset)
            metric = FrameMetric(metric_depth, fit.scale, fit.shift)
        low_high = (None, None) if self.options.per_frame_range else self.colour_range.update(depth)
        colored = colorize(normalize(depth, *low_high), self.options.colormap)
        picture = np.hstack([frame, colored]) if self.options.side_by_side else colored
        self.writers[0].write(picture[:self.size_wh[1], :self.size_wh[0]])
        for writer in self.writers[1:]:
            if isinstance(writer, DepthNpzWriter):
                writer.write(depth, stable, metric)
            else:
                writer.write(depth)

    def note(self) -> str | None:
        """How the colour video was written or what it lacks, and depth16's clipped frames, or None."""
        notes = [self.writers[0].note] + [f"{writer.clipped_frames} frames of {writer.path.name} reach beyond the "
                                          f"first frame's range widened by half (clipped)"
                                          for writer in self.writers[1:]
                                          if isinstance(writer, Depth16Writer) and writer.clipped_frames]
        return "; ".join(note for note in notes if note) or None

    def motion_note(self) -> str | None:
        """A line when frames were too small for motion compensation (video/motion.py), else None."""
        motion = self.stabilizer.motion if self.stabilizer is not None else None
        if motion is None or motion.too_small is None:
            return None
        height, width = motion.too_small
        return (f"frames of {width}x{height} pixels are too small for optical flow (at least "
                f"{motion.settings.min_side} a side): stabilised without motion compensation")

    def finish(self):
        """Publish the files (the npz with what undoes the stabilisation: video/depth_npz.py)."""
        try:
            for writer in self.writers:
                writer.finish()
            if self.calibration is not None and self.calibration.fits:
                save_json(camera_json_path(self.target), self.calibration.record(self.frames))
        except BaseException:  # a write error, or Ctrl-C while the video is read back
            self.abandon()  # the temp files of the ones not finished yet
            raise

    def abandon(self):
        for writer in self.writers:
            writer.abandon()


def output_size_wh(frame_hw: tuple[int, int], options: VideoJobOptions) -> tuple[int, int]:
    """(width, height) of the depth video of frames (H, W): the frames' own (twice as wide side by side)."""
    height, width = frame_hw
    width *= 2 if options.side_by_side else 1
    if options.even_size:
        width, height = width - width % 2, height - height % 2
    return width, height


def output_paths(target: Path, options: VideoJobOptions) -> dict[Path, str]:
    """The files the job writes, each with the option that asks for it (how a refusal names it)."""
    paths = {target: "--out"}
    if options.raw_npz:
        paths[target.with_suffix(".npz")] = "--raw npz"
    if options.raw_depth16:
        paths[depth16_path(target)] = "--raw depth16"
    if options.metric is not None:
        paths[camera_json_path(target)] = "the camera file"
    return paths


def check_video_paths(source: Path, target: Path, options: VideoJobOptions) -> None:
    """Before any work: the input is a file, and the outputs (target, and its .npz with raw_npz)
    may be written there (the output rule, io/outputs.py), at the frames' size."""
    if source.is_dir():
        raise VideoError(f"{source}: is a folder; give one video file")
    if not source.is_file():
        raise VideoError(f"{source}: no such video file")
    if target.is_dir():
        raise VideoError(f"--out {target}: is a folder; give the video file to write, e.g. {target / 'depth.mp4'}")
    size_wh = stated_size_wh(source)
    check_colour_video_target(target, output_size_wh(size_wh[::-1], options) if size_wh else None)
    if options.raw_depth16 and not pyav_installed():
        raise VideoError("--raw depth16 needs PyAV (pip install 'muggled_swinv2[video]'): it writes FFV1 through FFmpeg")
    rule = OutputRule(options.overwrite, inputs={source: "the input video"})
    for path, option in output_paths(target, options).items():
        rule.check(path, option)
    check_writable_folder(target.parent, "--out folder")


def run_video_job(model, source: Path, target: Path, options: VideoJobOptions, quiet: bool = False,
                  progress: Callable[[int, int | None], None] | None = None) -> VideoSummary:
    """Write the depth video of `source` to `target` (and the float frames to target.with_suffix(".npz")
    with raw_npz). Reading and preprocessing run ahead of the model, stabilising, colouring and
    encoding behind it, in threads (video/pipeline.py); the model runs in this thread.
    `progress(frames_written, frame_count_or_None)` is called after each frame (in the writer thread). Errors are VideoError with one line; after Ctrl-C the files hold the frames
    written so far, marked partial in the folder's ledger, and the summary says it was interrupted."""
    check_long_side(options.square, options.size)
    reader = VideoReader(str(source))
    first = reader.read()
    if first is None:
        reader.close()
        raise VideoError(f"{source}: no frames could be read (empty or corrupt video)")
    height, width = first.shape[:2]
    if options.memory_check:
        network_hw = network_hw_for(model.config, (height, width), options.square, options.size)
        refusal = memory_refusal(model.config, network_hw, (height, width), options.memory_names, batch=options.batch_size,
                                 device=next(model.parameters()).device)
        if refusal:
            reader.close()
            raise VideoError(f"{source}: {refusal}")
    try:
        writers = DepthVideoWriters(source, target, reader.fps, first.shape[:2], options)
    except VideoError:
        reader.close()
        raise
    native = model.config.native_size

    def prepare(frame):  # in the reader thread
        return prepare_input(frame, native, options.square, options.size), frame.shape[:2]

    def infer(prepared):  # in this thread: the model, and its output back at the frame's size
        depths = infer_prepared(model, [network_input for network_input, _ in prepared])
        return [restore_size(depth, size_hw) for depth, (_, size_hw) in zip(depths, prepared)]

    interrupted = False
    started = time.perf_counter()
    # on the CPU the model leaves one core to the writer thread (stabilising, colouring, encoding)
    on_cpu = next(model.parameters()).device.type == "cpu"
    model_threads = torch_threads_beside(1) if on_cpu else contextlib.nullcontext()
    with one_opencv_thread(), model_threads, tqdm(total=reader.frame_count, unit="frame", disable=quiet,
                                                  dynamic_ncols=True) as bar:

        def sink(item):  # in the writer thread
            writers.write(item.frame, item.result)
            bar.update(1)
            if progress is not None:
                progress(writers.frames, reader.frame_count)

        try:
            run_pipelined(itertools.chain([first], reader), infer, sink, prepare,
                          batch_size=options.batch_size, queue_size=options.queue_size)
        except KeyboardInterrupt:
            interrupted = True  # finish the files below so what was written plays
        except BaseException as error:
            writers.abandon()
            reader.close()
            raise job_error(error, source, target, writers.frames + 1) from None
    try:
        writers.finish()
        if interrupted:  # ours, and replaced by the same command run again, without --overwrite (io/outputs.py)
            rule = OutputRule()
            for path in output_paths(target, options):
                if path.exists():
                    rule.record(path, source, partial=True)
    finally:
        reader.close()
    resets = sum(writers.resets[1:writers.frames])
    metric_note = writers.calibration.summary(writers.frames) if writers.calibration and writers.calibration.fits else None
    return VideoSummary(writers.frames, time.perf_counter() - started, interrupted, resets, reader.timing_note,
                        sum(writers.unfitted[:writers.frames]), writers.motion_note(), writers.note(), metric_note)


def job_error(error: BaseException, source: Path, target: Path, frame: int) -> BaseException:
    """The one-line VideoError for what stopped the job (a StageError of the pipeline, or an error
    at `frame`); errors that are not about the video (bugs) pass on as they are."""
    if isinstance(error, StageError):
        if error.stage == "reader":
            return VideoError(f"{source}: cannot read frame {error.index + 1} ({error.reason}); no file written")
        if error.stage == "model":
            return VideoError(f"{source}: depth estimation failed at frame {error.index + 1} ({error.reason}); "
                              f"no file written")
        error, frame = error.error, error.index + 1  # the writer: stabilising, colouring, encoding
    if isinstance(error, VideoError):
        return error
    if isinstance(error, CalibrationError):  # a frame's fit refused (a sparse map without a valid pixel, say)
        return VideoError(f"{source}: {error}; no file written")
    if isinstance(error, OSError):  # e.g. the disk filled up while writing the .npz
        return VideoError(f"{target}: cannot write ({error.strerror or error}); no file written")
    if isinstance(error, (RuntimeError, MemoryError)):  # e.g. out of memory
        return VideoError(f"{source}: depth estimation failed at frame {frame} ({first_line(error)}); no file written")
    return error


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["VideoJobOptions", "check_video_paths", "run_video_job"]
