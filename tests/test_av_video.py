"""Video through PyAV: H.264/VP9 with the source's sound, exact times, rotation, odd sizes, 16-bit depth."""

from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

from muggled_swinv2.io.av_video import AvVideoReader, AvVideoWriter, DepthVideoWriter  # noqa: E402
from muggled_swinv2.io.video import VideoError  # noqa: E402

FPS, SECONDS, SIZE_WH, TONE_HZ = 10, 2.0, (64, 48), 440.0


def colour_frame(index: int, size_wh=SIZE_WH) -> np.ndarray:
    width, height = size_wh
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, :, 1] = 40 + 10 * index
    frame[: height // 2, : width // 2, 2] = 255  # a red top-left quarter: orientation
    return frame


def write_clip(path, audio_codec="aac", seconds=SECONDS, size_wh=SIZE_WH, times=None, rotation=None):
    """A test clip made by PyAV: FPS frames a second (or at `times`), a sine tone for `seconds`."""
    output = av.open(str(path), "w")
    video = output.add_stream("libx264" if path.suffix != ".webm" else "libvpx-vp9", rate=FPS)
    video.width, video.height, video.pix_fmt = *size_wh, "yuv420p"
    video.codec_context.time_base = Fraction(1, 1000)
    if rotation is not None:
        video.set_display_rotation(rotation)
    rate = 48000
    audio = output.add_stream(audio_codec, rate=rate) if audio_codec else None
    if audio is not None:
        audio.layout = "mono"
    times = times if times is not None else [index / FPS for index in range(int(seconds * FPS))]
    for index, time_s in enumerate(times):
        frame = av.VideoFrame.from_ndarray(colour_frame(index, size_wh), format="bgr24")
        frame.pts, frame.time_base = round(time_s * 1000), Fraction(1, 1000)
        output.mux(video.encode(frame))
    output.mux(video.encode(None))
    if audio is not None:
        samples = np.sin(2 * np.pi * TONE_HZ * np.arange(int(seconds * rate)) / rate).astype(np.float32)
        chunk = 960
        for start in range(0, samples.size, chunk):
            piece = samples[start:start + chunk][None]
            frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            output.mux(audio.encode(frame))
        output.mux(audio.encode(None))
    output.close()
    return path


def probe(path):
    """(video codec, frames, (w, h), video seconds, audio codec or None, audio seconds or None)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = [frame for frame in container.decode(video)]
        size = (frames[0].width, frames[0].height)
        video_seconds = float(frames[-1].time) - float(frames[0].time) + 1 / FPS
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return video.codec_context.name, len(frames), size, video_seconds, None, None
        audio = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio))
        return video.codec_context.name, len(frames), size, video_seconds, audio.codec_context.name, samples / audio.rate


def copy_video(source, target, **writer_options):
    reader = AvVideoReader(source)
    writer = None
    for timed in reader.frames():
        if writer is None:
            writer = AvVideoWriter(target, reader.fps, timed.image_bgr.shape[1::-1], **writer_options)
        writer.write(timed.image_bgr, timed.time_s)
    writer.finish()
    reader.close()
    return writer


@pytest.mark.parametrize("suffix, video_codec, audio_codec", [(".mp4", "h264", "aac"), (".webm", "vp9", "opus"),
                                                              (".mkv", "h264", "aac")])
def test_the_written_video_keeps_frames_duration_size_and_sound(tmp_path, suffix, video_codec, audio_codec):
    source = write_clip(tmp_path / "source.mp4")
    assert probe(source)[4] == "aac"
    writer = copy_video(source, tmp_path / f"out{suffix}", audio_source=source)
    codec, frames, size, seconds, sound, sound_seconds = probe(tmp_path / f"out{suffix}")
    assert (codec, frames, size, sound) == (video_codec, SECONDS * FPS, SIZE_WH, audio_codec)
    assert seconds == pytest.approx(SECONDS, abs=1e-3)
    assert sound_seconds == pytest.approx(SECONDS, abs=0.05)
    assert (writer.note is not None) == (suffix == ".webm")  # AAC does not go in WebM: re-encoded as Opus
    assert [path.name for path in tmp_path.iterdir() if "partial" in path.name] == []


def test_the_sound_is_copied_as_it_is_when_the_container_holds_it(tmp_path):
    source = write_clip(tmp_path / "source.mp4")
    copy_video(source, tmp_path / "out.mp4", audio_source=source)
    with av.open(str(source)) as original, av.open(str(tmp_path / "out.mp4")) as copied:
        before = [bytes(packet) for packet in original.demux(original.streams.audio[0]) if packet.size]
        after = [bytes(packet) for packet in copied.demux(copied.streams.audio[0]) if packet.size]
    assert after == before[:len(after)] and len(after) >= len(before) - 1


def test_a_source_without_sound_gives_a_silent_video(tmp_path):
    source = write_clip(tmp_path / "silent.mp4", audio_codec=None)
    copy_video(source, tmp_path / "out.mp4", audio_source=source)
    assert probe(tmp_path / "out.mp4")[4] is None


def test_variable_frame_times_are_read_and_written_exactly(tmp_path):
    times = [0.0, 0.1, 0.35, 0.4, 0.9, 1.0]
    source = write_clip(tmp_path / "vfr.mp4", audio_codec=None, times=times)
    assert [round(timed.time_s, 3) for timed in AvVideoReader(source).frames()] == times
    copy_video(source, tmp_path / "out.mp4")
    assert [round(timed.time_s, 4) for timed in AvVideoReader(tmp_path / "out.mp4").frames()] == times


def test_rotation_metadata_turns_the_frames_upright(tmp_path):
    source = write_clip(tmp_path / "phone.mp4", audio_codec=None, seconds=0.3, rotation=-90)  # a phone's "rotate 90"
    reader = AvVideoReader(source)
    first = next(reader.frames()).image_bgr
    assert reader.rotation_deg == -90
    assert first.shape[:2] == (SIZE_WH[0], SIZE_WH[1])  # turned a quarter: portrait
    assert first[2, -3, 2] > 200 and first[-3, 2, 2] < 50  # the red corner went from top left to top right


def test_an_odd_size_comes_back_at_its_size_as_vp9(tmp_path):
    source = write_clip(tmp_path / "odd.webm", audio_codec=None, seconds=0.5, size_wh=(33, 21))
    writer = copy_video(source, tmp_path / "out.mp4")
    assert "odd side" in writer.note
    codec, frames, size, *_ = probe(tmp_path / "out.mp4")
    assert (codec, frames, size) == ("vp9", 5, (33, 21))


def test_depth_frames_are_kept_exactly_in_16_bits(tmp_path):
    rng = np.random.default_rng(0)
    depths = [rng.integers(0, 65536, (21, 33), dtype=np.uint16) for _ in range(3)]
    writer = DepthVideoWriter(tmp_path / "depth.mkv", 10, (33, 21))
    for depth in depths:
        writer.write(depth)
    writer.finish()
    with av.open(str(tmp_path / "depth.mkv")) as container:
        assert container.streams.video[0].codec_context.name == "ffv1"
        read = [frame.to_ndarray(format="gray16le") for frame in container.decode(video=0)]
    assert len(read) == 3 and all(np.array_equal(a, b) for a, b in zip(read, depths))


def test_unwritable_containers_are_refused_in_one_line(tmp_path):
    with pytest.raises(VideoError, match="cannot write .gif videos"):
        AvVideoWriter(tmp_path / "out.gif", 10, SIZE_WH)
    with pytest.raises(VideoError, match=r"\.mkv"):
        DepthVideoWriter(tmp_path / "depth.mp4", 10, SIZE_WH)
    assert list(tmp_path.iterdir()) == []
