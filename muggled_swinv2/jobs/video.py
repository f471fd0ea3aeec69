"""Depth video from a video: same frame count, size and rate; steady colours; clean Ctrl-C."""

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..io.colormaps import colorize, normalize
from ..memory import memory_refusal, network_hw_for
from ..predict import predict_batch
from ..io.video import AtomicNpzWriter, AtomicVideoWriter, VideoError, VideoReader


class RunningRange:
    """Colour range that follows the depth smoothly: an exponential moving average of each
    frame's min and max (each frame's own min/max would make the colours flicker)."""

    def __init__(self, momentum: float = 0.9):
        self.momentum = momentum
        self.low = self.high = None

    def update(self, depth: np.ndarray) -> tuple[float, float]:
        low, high = float(depth.min()), float(depth.max())
        if self.low is None:
            self.low, self.high = low, high
        else:
            self.low = self.momentum * self.low + (1 - self.momentum) * low
            self.high = self.momentum * self.high + (1 - self.momentum) * high
        return self.low, self.high


@dataclass
class VideoJobOptions:
    colormap: str = "inferno"
    side_by_side: bool = False
    per_frame_range: bool = False
    raw_npz: bool = False
    square: bool = False
    size: int | None = None
    batch_size: int = 1
    memory_check: bool = True  # refuse a size whose prediction would not fit in memory (see memory.py)


@dataclass
class VideoSummary:
    frames: int
    seconds: float
    interrupted: bool

    def line(self) -> str:
        rate = f", {self.frames / self.seconds:.2f} frames/s" if self.seconds > 0 else ""
        stop = " (interrupted: the file holds the frames done so far)" if self.interrupted else ""
        return f"wrote {self.frames} frames{rate}{stop}"


def run_video_job(model, source: Path, target: Path, options: VideoJobOptions, quiet: bool = False) -> VideoSummary:
    """Write the depth video of `source` to `target` (and the float frames to target.with_suffix(".npz") with --raw npz)."""
    reader = VideoReader(str(source))
    first = reader.read()
    if first is None:
        reader.close()
        raise VideoError(f"{source}: no frames could be read (empty or corrupt video)")
    height, width = first.shape[:2]
    if options.memory_check:
        network_hw = network_hw_for(model.config, (height, width), options.square, options.size)
        refusal = memory_refusal(model.config, network_hw, (height, width), batch=options.batch_size,
                                 device=next(model.parameters()).device)
        if refusal:
            reader.close()
            raise VideoError(f"{source}: {refusal}")
    writers = []
    try:
        writers.append(AtomicVideoWriter(target, reader.fps, (width * (2 if options.side_by_side else 1), height)))
        if options.raw_npz:
            writers.append(AtomicNpzWriter(target.with_suffix(".npz")))
    except VideoError:
        for writer in writers:
            writer.abandon()
        reader.close()
        raise
    colour_range = RunningRange()
    frames = [first]
    interrupted = False
    started = time.perf_counter()
    try:
        with tqdm(total=reader.frame_count, unit="frame", disable=quiet, dynamic_ncols=True) as progress:
            while frames:
                while len(frames) < options.batch_size and (frame := reader.read()) is not None:
                    frames.append(frame)
                for frame, depth in zip(frames, predict_batch(model, frames, options.square, options.size)):
                    low_high = (None, None) if options.per_frame_range else colour_range.update(depth)
                    colored = colorize(normalize(depth, *low_high), options.colormap)
                    writers[0].write(np.hstack([frame, colored]) if options.side_by_side else colored)
                    if options.raw_npz:
                        writers[1].write(depth)
                    progress.update(1)
                frame = reader.read()
                frames = [] if frame is None else [frame]
    except KeyboardInterrupt:
        interrupted = True  # finish the files below so what was written plays
    except BaseException as error:
        for writer in writers:
            writer.abandon()
        reader.close()
        if isinstance(error, OSError):  # e.g. the disk filled up while writing the .npz
            raise VideoError(f"{target}: cannot write ({error.strerror or error}); no file written") from None
        if isinstance(error, (RuntimeError, MemoryError)):  # e.g. out of memory
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise VideoError(f"{source}: depth estimation failed at frame {writers[0].frames + 1} ({reason}); "
                             f"no file written") from None
        raise
    try:
        for writer in writers:
            writer.finish()
    except BaseException:  # a write error, or Ctrl-C while the video is read back
        for writer in writers:
            writer.abandon()  # the temp files of the ones not finished yet
        raise
    finally:
        reader.close()
    return VideoSummary(writers[0].frames, time.perf_counter() - started, interrupted)
