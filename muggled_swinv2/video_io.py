"""Reading video frames and writing videos that play even when a run is cut short."""

import math
import zipfile
from pathlib import Path

import numpy as np

import cv2

from .atomic import publish, reserve_temp


class VideoError(Exception):
    """A video that cannot be opened, read or written (one-line message naming the file)."""


class VideoReader:
    """Frames of a video file (or camera index) as BGR uint8 arrays."""

    def __init__(self, source):
        self.source = source
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            raise VideoError(f"{source}: cannot open as a video")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 0 < fps < 1000 else 30.0
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


class AtomicVideoWriter:
    """cv2.VideoWriter into a temp file beside `path`; finish() renames it into place, so an
    interrupted run leaves either a complete, playable file or none at all."""

    def __init__(self, path, fps: float, size_wh: tuple[int, int]):
        self.path, self.size_wh = Path(path), tuple(size_wh)
        self.temp_path = reserve_temp(self.path, suffix=f".partial{self.path.suffix}")  # suffix picks the container
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG"))
        self.writer = cv2.VideoWriter(str(self.temp_path), fourcc, fps, size_wh)
        self.frames = 0
        if not self.writer.isOpened():
            self.temp_path.unlink(missing_ok=True)
            raise VideoError(f"{path}: OpenCV cannot write this video format (try .mp4 or .avi)")

    def write(self, frame_bgr: np.ndarray):
        self.writer.write(frame_bgr)
        self.frames += 1

    def finish(self):
        self.writer.release()
        publish(self.temp_path, self.path)

    def abandon(self):
        self.writer.release()
        self.temp_path.unlink(missing_ok=True)


class AtomicNpzWriter:
    """Float depth frames streamed into an .npz (frame_000000, ...), renamed into place at the end."""

    def __init__(self, path):
        self.path = Path(path)
        self.temp_path = reserve_temp(self.path)
        self.archive = zipfile.ZipFile(self.temp_path, "w", allowZip64=True)
        self.frames = 0

    def write(self, depth: np.ndarray):
        with self.archive.open(f"frame_{self.frames:06d}.npy", "w", force_zip64=True) as entry:
            np.lib.format.write_array(entry, depth.astype(np.float32))
        self.frames += 1

    def finish(self):
        self.archive.close()
        publish(self.temp_path, self.path)

    def abandon(self):
        self.archive.close()
        self.temp_path.unlink(missing_ok=True)
