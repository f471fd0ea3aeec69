"""Video through FFmpeg's own libraries (PyAV, the optional `[video]` extra): exact frame times,
rotation, sound, and the codecs that browsers and phones play.

- Reading: every frame upright (the rotation a phone records is applied) with its own time in
  seconds, so a variable frame rate is kept.
- Writing colour: `.mp4`, `.m4v`, `.mov` and `.mkv` as H.264 (yuv420p, +faststart for the web);
  `.webm` as VP9. H.264's 4:2:0 frames have even sides (its cropping counts in pairs of pixels), so
  an odd-sized video is written as VP9 in the same container instead (browsers play VP9 in MP4
  too): it comes back at its own size, never padded or cropped (`note` says so).
- Sound: the source's first audio stream is copied packet by packet when the container holds its
  codec, else re-encoded (AAC; Opus for WebM); it ends with the last video frame.
- Writing depth: 16-bit grey as FFV1 (lossless) in `.mkv`, for compositing.

Files are written to a temp file and renamed into place when complete (io/video.py's rule).
"""

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .atomic import reserve_temp
from .video import AtomicVideoWriter, VideoError, check_video_target, publish_frames

try:
    import av
except ImportError:  # the [video] extra is not installed: io/video.py's OpenCV writer is used
    av = None

PYAV_MISSING_NOTE = ("PyAV is not installed (pip install 'muggled_swinv2[video]'): videos are written by "
                     "OpenCV as MPEG-4 Part 2 (browsers do not play it), without sound")

COLOUR_CONTAINERS = {".mp4": "libx264", ".m4v": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
ODD_SIZE_CODEC = "libvpx-vp9"
ODD_SIZE_CONTAINERS = (".mp4", ".mkv", ".webm")  # the ones that hold VP9 (Apple's .m4v and .mov do not)
# Audio codecs each container holds as they are (copied), and the encoder for any other.
AUDIO_KEPT = {".mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus"}, ".m4v": {"aac", "mp3", "alac", "ac3", "eac3"},
              ".mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"},
              ".mkv": {"aac", "mp3", "opus", "vorbis", "flac", "ac3", "eac3", "pcm_s16le", "pcm_s24le"},
              ".webm": {"opus", "vorbis"}}
AUDIO_ENCODER = {".webm": "libopus"}  # others: "aac"
TIME_BASE = Fraction(1, 90000)  # frame times to 1/90000 s, MPEG's clock


def pyav_installed() -> bool:
    return av is not None


def writes_with_pyav(path) -> bool:
    """Whether a colour video named `path` goes through FFmpeg (PyAV installed, a container it
    writes here); otherwise OpenCV writes it (`.avi`: Motion JPEG, any size)."""
    return av is not None and Path(path).suffix.lower() in COLOUR_CONTAINERS


def check_colour_video_target(path, size_wh: tuple[int, int] | None = None) -> None:
    """Refuse, before any work, a video name neither writer can write (at `size_wh`): one line."""
    if not writes_with_pyav(path):
        check_video_target(path, size_wh)
    elif size_wh is not None and (size_wh[0] % 2 or size_wh[1] % 2) and Path(path).suffix.lower() not in ODD_SIZE_CONTAINERS:
        raise VideoError(f"{path}: these frames are {size_wh[0]}x{size_wh[1]}, an odd side that H.264 cannot hold, "
                         f"and {Path(path).suffix} cannot hold VP9; write {', '.join(ODD_SIZE_CONTAINERS)}, which keep the size")


def open_colour_video_writer(path, fps: float, size_wh: tuple[int, int], audio_source=None):
    """The writer for a colour video: AvVideoWriter (H.264 or VP9, any size, the sound of
    `audio_source`) when PyAV writes `path`, else OpenCV's AtomicVideoWriter. Both have write(frame),
    finish(), abandon(), `frames` and `note` (what the file lacks or how it was written, or None)."""
    if writes_with_pyav(path):
        return AvVideoWriter(path, fps, size_wh, audio_source=audio_source)
    writer = AtomicVideoWriter(path, fps, size_wh)
    if av is None:
        writer.note = PYAV_MISSING_NOTE
    return writer


def require_pyav() -> None:
    if av is None:
        raise VideoError(PYAV_MISSING_NOTE)


@dataclass(frozen=True)
class TimedFrame:
    image_bgr: np.ndarray  # (H, W, 3) uint8, upright
    time_s: float  # when it is shown, from the stream's start


class AvVideoReader:
    """The frames of a video file, upright, with their times. `fps` is the average rate (for
    writers that want one), `frame_count` the container's count (None if it does not say),
    `rotation_deg` the counter-clockwise display rotation the file asks for (applied to frames)."""

    def __init__(self, path):
        require_pyav()
        self.path = Path(path)
        try:
            self.container = av.open(str(path))
        except (av.FFmpegError, OSError) as error:
            raise VideoError(f"{path}: cannot open as a video ({error})") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"{path}: holds no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 30.0
        self.frame_count = self.stream.frames or None
        self.has_audio = bool(self.container.streams.audio)
        self.start_s = float(self.stream.start_time * self.stream.time_base) if self.stream.start_time is not None else 0.0
        self.rotation_deg = 0

    def frames(self):
        """TimedFrame after TimedFrame, times from the stream's start (the first frame usually 0)."""
        try:
            for frame in self.container.decode(self.stream):
                self.rotation_deg = int(round(frame.rotation or 0))
                image = frame.to_ndarray(format="bgr24")
                if self.rotation_deg % 360:
                    image = np.ascontiguousarray(np.rot90(image, k=self.rotation_deg // 90))
                yield TimedFrame(image, float(frame.time) - self.start_s if frame.time is not None else float("nan"))
        except av.FFmpegError as error:
            raise VideoError(f"{self.path}: cannot decode ({error})") from None

    def __iter__(self):
        return (timed.image_bgr for timed in self.frames())

    def close(self):
        self.container.close()


class AvFileWriter:
    """What both writers below share: one video stream written by FFmpeg into a temp file beside
    `path`; finish() flushes the encoders and publishes the file (io/video.publish_frames: moved
    into place, recorded in the ledger), abandon() removes it. A writer opens the file with
    _open_temp and _add_video_stream, and may carry sound (`audio`, ended with the last frame)."""

    def __init__(self, path, fps: float, size_wh: tuple[int, int]):
        require_pyav()
        self.path, self.size_wh, self.fps = Path(path), tuple(size_wh), float(fps)
        self.frames = 0
        self.audio: AudioCarrier | None = None

    def _open_temp(self, suffix: str, options: dict[str, str] | None = None) -> None:
        """Reserve the temp file `<name>.partial<suffix>` (its suffix picks the container) and open it."""
        try:
            self.temp_path = reserve_temp(self.path, suffix=f".partial{suffix}")
            self.output = av.open(str(self.temp_path), "w", options=options)
        except OSError as error:
            raise VideoError(f"{self.path}: cannot write there ({error.strerror or error})") from None

    def _add_video_stream(self, codec: str, pix_fmt: str) -> None:
        """The video stream, at `fps` and `size_wh`, its frame times counted on TIME_BASE."""
        self.video = self.output.add_stream(codec, rate=Fraction(self.fps).limit_denominator(100000))
        self.video.width, self.video.height, self.video.pix_fmt = *self.size_wh, pix_fmt
        self.video.codec_context.time_base = TIME_BASE

    def finish(self):
        """Flush the encoders, the sound up to the end of the last frame, and publish the file."""
        try:
            self.output.mux(self.video.encode(None))
            if self.audio is not None:
                self.audio.finish(self.last_time_s + 1 / self.fps)
            self.output.close()
        except (av.FFmpegError, OSError) as error:
            self.abandon()
            raise VideoError(f"{self.path}: could not be written ({error}); no file written") from None
        publish_frames(self.temp_path, self.path, self.frames)

    def abandon(self):
        try:
            self.output.close()
        except (av.FFmpegError, OSError):
            pass
        if self.audio is not None:
            self.audio.close()
        self.temp_path.unlink(missing_ok=True)


class AvVideoWriter(AvFileWriter):
    """Colour frames (BGR uint8, all of `size_wh`) into a video file, with the sound of
    `audio_source` (a file path) if it has any. See the module's docstring for codecs."""

    def __init__(self, path, fps: float, size_wh: tuple[int, int], audio_source=None, quality_crf: int = 18):
        super().__init__(path, fps, size_wh)
        suffix = self.path.suffix.lower()
        if suffix not in COLOUR_CONTAINERS:
            raise VideoError(f"{path}: cannot write {suffix or 'a video without a suffix'} videos; "
                             f"use one of {', '.join(COLOUR_CONTAINERS)}")
        width, height = self.size_wh
        codec = COLOUR_CONTAINERS[suffix]
        self.notes = []
        if codec == "libx264" and (width % 2 or height % 2):
            check_colour_video_target(path, self.size_wh)
            codec = ODD_SIZE_CODEC
            self.notes.append(f"{path}: {width}x{height} has an odd side, which H.264 cannot hold: written as VP9")
        self._open_temp(suffix, {"movflags": "+faststart"} if suffix != ".webm" else {})
        self._add_video_stream(codec, "yuv420p")
        self.video.options = {"crf": str(quality_crf), "preset": "fast"} if codec == "libx264" else {
            "crf": str(quality_crf + 13), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "5"}
        self.last_time_s = -1.0  # the time of the last frame written
        self.audio = AudioCarrier(audio_source, self.output, suffix) if audio_source is not None else None
        if self.audio is not None and self.audio.note:
            self.notes.append(self.audio.note)

    @property
    def note(self) -> str | None:
        return "; ".join(self.notes) or None

    def write(self, frame_bgr: np.ndarray, time_s: float | None = None):
        """One frame, shown at `time_s` (default: frame number / fps); times must increase."""
        if frame_bgr.shape[1::-1] != self.size_wh:
            raise VideoError(f"{self.path}: a frame of {frame_bgr.shape[1]}x{frame_bgr.shape[0]} in a "
                             f"{self.size_wh[0]}x{self.size_wh[1]} video")
        time_s = self.frames / self.fps if time_s is None else time_s
        pts = round(time_s / TIME_BASE)
        if pts <= round(self.last_time_s / TIME_BASE):
            pts = round(self.last_time_s / TIME_BASE) + 1
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_bgr), format="bgr24")
        frame.pts, frame.time_base = pts, TIME_BASE
        try:
            if self.audio is not None:
                self.audio.mux_until(time_s)
            self.output.mux(self.video.encode(frame))
        except av.FFmpegError as error:  # e.g. the disk filled up
            raise VideoError(f"{self.path}: could not be written ({error}); no file written") from None
        self.frames += 1
        self.last_time_s = float(pts * TIME_BASE)


class AudioCarrier:
    """The source's first audio stream into `output`: copied when the container holds its codec,
    else decoded and re-encoded; packets go in as the video reaches their time (interleaved)."""

    def __init__(self, source, output, suffix: str):
        self.note, self.pending = None, None
        try:
            self.input = av.open(str(source))
        except (av.FFmpegError, OSError) as error:
            self.input, self.stream, self.packets = None, None, iter(())
            self.note = f"the sound of {source} could not be read ({error}): written without it"
            return
        streams = self.input.streams.audio
        self.stream = streams[0] if streams else None
        if self.stream is None:
            self.packets = iter(())
            return
        name = self.stream.codec_context.name
        self.copy = name in AUDIO_KEPT[suffix]
        if self.copy:
            self.output_stream = output.add_stream_from_template(self.stream)
        else:
            encoder = AUDIO_ENCODER.get(suffix, "aac")
            rate = 48000 if encoder == "libopus" else self.stream.rate
            self.output_stream = output.add_stream(encoder, rate=rate)
            self.output_stream.layout = self.stream.layout.name if self.stream.layout.nb_channels <= 2 else "stereo"
            self.resampler = av.AudioResampler(format=self.output_stream.format, layout=self.output_stream.layout, rate=rate)
            self.note = f"the sound ({name}) was re-encoded as {encoder.removeprefix('lib')} for {suffix}"
        self.output = output
        self.start_s = float(self.stream.start_time * self.stream.time_base) if self.stream.start_time is not None else 0.0
        self.packets = self.input.demux(self.stream)

    def mux_until(self, time_s: float) -> None:
        """Every packet that starts before `time_s` (seconds from the stream's start)."""
        while (packet := self._peek()) is not None and self._time(packet) < time_s:
            self.pending = None
            self._mux(packet)

    def finish(self, end_s: float) -> None:
        self.mux_until(end_s)
        if self.stream is not None and not self.copy:
            for frame in self.resampler.resample(None):
                self.output.mux(self.output_stream.encode(frame))
            self.output.mux(self.output_stream.encode(None))
        self.close()

    def close(self):
        if self.input is not None:
            self.input.close()

    def _peek(self):
        while self.pending is None:
            packet = next(self.packets, None)
            if packet is None:
                return None
            if packet.dts is not None and packet.pts is not None:
                self.pending = packet
        return self.pending

    def _time(self, packet) -> float:
        return float(packet.pts * packet.time_base) - self.start_s

    def _mux(self, packet) -> None:
        if self.copy:
            packet.stream = self.output_stream
            self.output.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder counts samples from the start
            for resampled in self.resampler.resample(frame):
                self.output.mux(self.output_stream.encode(resampled))


class DepthVideoWriter(AvFileWriter):
    """16-bit depth frames ((H, W) uint16) as lossless FFV1 gray16le in `.mkv`: every value kept;
    `metadata` (text) goes into the container's tags (e.g. how the values map to depth)."""

    def __init__(self, path, fps: float, size_wh: tuple[int, int], metadata: dict[str, str] | None = None):
        super().__init__(path, fps, size_wh)
        if self.path.suffix.lower() != ".mkv":
            raise VideoError(f"{path}: a 16-bit depth video is written as .mkv (FFV1)")
        self._open_temp(".mkv")
        self.output.metadata.update(metadata or {})
        self._add_video_stream("ffv1", "gray16le")

    def write(self, depth_hw: np.ndarray, time_s: float | None = None):
        if depth_hw.dtype != np.uint16 or depth_hw.shape[::-1] != self.size_wh:
            raise VideoError(f"{self.path}: expected {self.size_wh[0]}x{self.size_wh[1]} uint16 frames")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(depth_hw), format="gray16le")
        time_s = self.frames / self.fps if time_s is None else time_s
        frame.pts, frame.time_base = round(time_s / TIME_BASE), TIME_BASE
        self.output.mux(self.video.encode(frame))
        self.frames += 1


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["AvVideoReader", "AvVideoWriter", "DepthVideoWriter", "PYAV_MISSING_NOTE", "TimedFrame",
           "check_colour_video_target", "open_colour_video_writer", "pyav_installed", "writes_with_pyav"]
