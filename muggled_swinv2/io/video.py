"""Reading video frames and writing videos that play even when a run is cut short."""

import contextlib
import math
import os
import struct
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np

import cv2

from ..errors import UserError
from .atomic import disk_is_full, reserve_temp
from .outputs import OutputRule

# Containers OpenCV writes here and reads back whole, with the codec for each. Others are refused up
# front: OpenCV writes an image sequence for image names (.gif, .png).
VIDEO_CONTAINERS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".webm": "VP80"}

# OpenCV's FFmpeg writer drops the last column and row of an odd frame size ("width &= -2" before
# the codec is opened, whatever the codec: 333x177 reads back 332x176 in every container), while
# OpenCV's own Motion JPEG writer (cv2.CAP_OPENCV_MJPEG, AVI only) keeps any size: .avi is written
# by it, and an odd size in another container is refused rather than cropped. That writer keeps
# only whole frame rates (29.97 is written as 30) and refuses rates under 1: the file's header
# gets the exact rate afterwards (set_avi_rate).
ANY_SIZE_CONTAINERS = (".avi",)


class VideoError(UserError):
    """A video that cannot be opened, read or written (one-line message naming the file)."""


class PictureNotVideo(VideoError):
    """A picture file given where a video is expected."""


def check_video_target(path, size_wh: tuple[int, int] | None = None) -> None:
    """Refuse a video file name whose container we cannot write, or cannot write at `size_wh`
    (width, height) without cropping it (one line naming what can be written)."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_CONTAINERS:
        kind = f"{suffix} videos" if suffix else "a video without a suffix"
        raise VideoError(f"{path}: cannot write {kind}; use one of {', '.join(VIDEO_CONTAINERS)}")
    if size_wh is not None and suffix not in ANY_SIZE_CONTAINERS and (size_wh[0] % 2 or size_wh[1] % 2):
        raise VideoError(f"{path}: OpenCV writes {suffix} videos only at even frame sizes, and these frames are "
                         f"{size_wh[0]}x{size_wh[1]}; write {' or '.join(ANY_SIZE_CONTAINERS)} (Motion JPEG), which keeps the size")


def stated_size_wh(path) -> tuple[int, int] | None:
    """(width, height) of a video file's frames as its header states them (nothing decoded);
    None when it states none (or cannot be opened: reading it will say why)."""
    capture = cv2.VideoCapture(str(path))
    try:
        width, height = (int(capture.get(side)) for side in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    return (width, height) if width > 0 and height > 0 else None


class VideoReader:
    """Frames of a video file (or camera index) as BGR uint8 arrays. `fps` is the rate to write
    them at: the one the file states, or for a variable frame rate the one that keeps the file's
    duration (then `timing_note` says so, see steady_rate). A picture file is refused."""

    def __init__(self, source):
        self.source = source
        if not isinstance(source, int):
            refuse_picture(source)
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            if isinstance(source, int):
                raise VideoError(f"no camera {source} (or it is busy)")
            raise VideoError(f"{source}: cannot open as a video")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 0 < fps < 1000 else 30.0
        self.timing_note = None
        if not isinstance(source, int):
            self.fps, self.timing_note = steady_rate(source, self.fps)
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None  # an estimate: containers may not know

    def read(self) -> np.ndarray | None:
        ok, frame = self.capture.read()
        return frame if ok else None

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame

    def close(self):
        self.capture.release()


def refuse_picture(path) -> None:
    """A VideoError for a picture file (JPEG, PNG, WebP, BMP, TIFF, a still GIF, ..., recognised by
    its content, truncated or not), which FFmpeg would read as a video of one frame, or of none.
    An animated GIF, or a Motion JPEG stream, has more frames: a video."""
    if cv2.haveImageReader(str(path)) and count_frames(path, up_to=2) < 2:
        raise PictureNotVideo(f"{path}: is a picture, not a video; for its depth use `muggled-swinv2 image`")


def steady_rate(path, stated_fps: float) -> tuple[float, str | None]:
    """The constant frame rate at which `path`'s frames last as long as in the file, and a line
    saying what was done when that is not simply the rate the file states.

    OpenCV writes every frame for the same time, while a variable-frame-rate video (a phone's, a
    screen recording) gives each frame its own, and the rate OpenCV states for it may be a guess
    from the first frames (a Matroska file of 24 frames over 3.4 s said 25 frames/s: 0.96 s).
    The frames' times are read from the packets (nothing decoded: milliseconds even for long
    videos). The stated rate is kept when the duration it gives fits them (the frames' span plus
    one of their intervals, within half an interval); otherwise the frames are spread evenly over
    the time they span: (frames - 1) / (last time - first time).
    """
    capture = cv2.VideoCapture(str(path))
    times = []
    try:
        if capture.isOpened() and capture.set(cv2.CAP_PROP_FORMAT, -1):  # raw packets: no decoding
            while capture.grab():
                times.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    finally:
        capture.release()
    times = np.sort(times)
    intervals = np.diff(times)
    if times.size < 3 or not (intervals > 0).all():  # no usable times: the stated rate is all there is
        return stated_fps, None
    span, typical = times[-1] - times[0], float(np.median(intervals))
    stated_fits = span + intervals.min() - typical / 2 <= times.size / stated_fps <= span + intervals.max() + typical / 2
    even = intervals.max() - intervals.min() <= max(0.002, 0.05 * typical)  # times are rounded to the millisecond
    fps = stated_fps if stated_fits else (times.size - 1) / span
    if not even:
        return fps, (f"the source's frame rate varies ({times.size} frames over {times.size / fps:.2f} s): "
                     f"written at a constant {fps:.2f} frames/s, which keeps its duration")
    if not stated_fits:
        return fps, f"the source states {stated_fps:g} frames/s but its frames come at {fps:.2f}: written at {fps:.2f}"
    return fps, None


# WebM's VP8 is the one that OpenCV's own FFmpeg writes and browsers play (the web app's depth videos).


class AtomicVideoWriter:
    """cv2.VideoWriter into a temp file beside `path`; finish() renames it into place, so an
    interrupted run leaves either a complete, playable file or none at all."""

    def __init__(self, path, fps: float, size_wh: tuple[int, int]):
        self.path, self.size_wh = Path(path), tuple(size_wh)
        check_video_target(self.path, self.size_wh)
        try:
            self.temp_path = reserve_temp(self.path, suffix=f".partial{self.path.suffix}")  # suffix picks the container
        except OSError as error:
            raise VideoError(f"{path}: cannot write there ({error.strerror or error})") from None
        suffix = self.path.suffix.lower()
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_CONTAINERS[suffix])
        self.fps, self.own_mjpeg = fps, suffix in ANY_SIZE_CONTAINERS
        backend, rate = (cv2.CAP_OPENCV_MJPEG, max(1.0, fps)) if self.own_mjpeg else (cv2.CAP_FFMPEG, fps)
        with native_stderr_silenced():  # WebM: "tag 'VP80' is not supported", though it writes VP8
            self.writer = cv2.VideoWriter(str(self.temp_path), backend, fourcc, rate, self.size_wh)
        self.frames = 0
        self.note = None  # what the file lacks (io/av_video.open_colour_video_writer: no PyAV, no sound)
        if not self.writer.isOpened():
            self.temp_path.unlink(missing_ok=True)
            raise VideoError(f"{path}: OpenCV cannot write this video format (try .mp4 or .avi)")

    def write(self, frame_bgr: np.ndarray):
        self.writer.write(frame_bgr)
        self.frames += 1

    def finish(self):
        """Publish the video once every frame written can be read back: OpenCV reports no write
        errors (a full disk gives a truncated, unplayable file), so they are caught here."""
        self.writer.release()
        if self.own_mjpeg and self.frames:
            set_avi_rate(self.temp_path, self.fps)
        readable = count_frames(self.temp_path, up_to=self.frames) if self.frames else 0
        if readable < self.frames:
            reason = "no space left on device" if disk_is_full(self.temp_path.parent) else "OpenCV wrote a damaged file"
            self.temp_path.unlink(missing_ok=True)
            raise VideoError(f"{self.path}: could not be written completely ({readable} of {self.frames} "
                             f"frames readable back; {reason}); no file written")
        publish_frames(self.temp_path, self.path, self.frames)

    def abandon(self):
        self.writer.release()
        self.temp_path.unlink(missing_ok=True)


def set_avi_rate(path: Path, fps: float) -> None:
    """Write `fps` into an AVI file's headers (RIFF chunks 'avih' and the video 'strh'): the frame
    time in microseconds, and the rate as dwRate / dwScale, a fraction close to fps (30000 / 1001
    for 29.97). Nothing else in the file changes."""
    rate = Fraction(fps).limit_denominator(1001)
    with open(path, "r+b") as file:
        head = file.read(4096)  # the header list: OpenCV writes it first, a few hundred bytes
        main_header, stream_header = head.find(b"avih"), head.find(b"strh")
        if main_header < 0 or stream_header < 0 or head[stream_header + 8:stream_header + 12] != b"vids":
            raise VideoError(f"{path}: OpenCV wrote an AVI file without the expected headers")
        file.seek(main_header + 8)  # dwMicroSecPerFrame
        file.write(struct.pack("<I", round(1e6 / fps)))
        file.seek(stream_header + 8 + 20)  # after fccType, fccHandler, dwFlags, wPriority, wLanguage, dwInitialFrames
        file.write(struct.pack("<II", rate.denominator, rate.numerator))  # dwScale, dwRate


@contextlib.contextmanager
def native_stderr_silenced():
    """Nothing on the process's stderr (file descriptor 2) for the duration: OpenCV's FFmpeg writer
    prints some lines there directly, past the log levels that silence_opencv sets (WebM keeps no
    codec tags, so the writer complains of every tag before writing VP8 as asked)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def publish_frames(temp_path: Path, path: Path, frames: int) -> None:
    """Move a finished temp file into place and record it in the folder's ledger (no frames: no
    file), under the output rule checked again (io/outputs.py: a file that someone else put there
    during the run is kept, and OutputError says where the video went instead); on failure a
    one-line VideoError, and the temp file is gone either way."""
    try:
        if frames:
            OutputRule().publish_output(temp_path, path)
    except OSError as error:
        raise VideoError(f"{path}: cannot write ({error.strerror or error}); no file written") from None
    finally:
        temp_path.unlink(missing_ok=True)  # still there only if not published


def count_frames(path, up_to: int) -> int:
    """Frames of a video file that decode, counting no further than `up_to`."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while count < up_to and capture.grab():
        count += 1
    capture.release()
    return count


class AtomicNpzWriter:
    """Arrays streamed into an .npz one entry at a time, renamed into place at the end (the entries
    of the video job's file are named in video/depth_npz.py)."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.temp_path = reserve_temp(self.path)
        except OSError as error:
            raise VideoError(f"{path}: cannot write there ({error.strerror or error})") from None
        self.archive = zipfile.ZipFile(self.temp_path, "w", allowZip64=True)
        self.entries = 0

    def write_array(self, name: str, array: np.ndarray):
        """One entry; `name` without .npy."""
        with self.archive.open(f"{name}.npy", "w", force_zip64=True) as entry:
            np.lib.format.write_array(entry, np.asarray(array))
        self.entries += 1

    def finish(self):
        try:
            self.archive.close()
        except OSError as error:
            self.temp_path.unlink(missing_ok=True)
            raise VideoError(f"{self.path}: cannot write ({error.strerror or error}); no file written") from None
        publish_frames(self.temp_path, self.path, self.entries)

    def abandon(self):
        try:
            self.archive.close()
        except OSError:
            pass  # e.g. the disk is full: the temp file goes anyway
        self.temp_path.unlink(missing_ok=True)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["AtomicNpzWriter", "AtomicVideoWriter", "PictureNotVideo", "VideoError", "VideoReader",
           "check_video_target", "count_frames"]
