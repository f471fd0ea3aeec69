"""`video` through FFmpeg (PyAV): H.264 MP4 / VP9 WebM with the source's sound, the same frame
count, size, rate and duration, read back from the files; `--raw depth16` (FFV1 gray16le); and
without PyAV one line saying what is lost, OpenCV's file instead."""

import numpy as np
import pytest

av = pytest.importorskip("av")

from muggled_swinv2.cli import main  # noqa: E402
from muggled_swinv2.io import av_video  # noqa: E402
from muggled_swinv2.video import depth16  # noqa: E402
from test_av_video import FPS, SECONDS, probe, write_clip  # noqa: E402


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


def pixel_format(path) -> str:
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.pix_fmt


@pytest.mark.parametrize("suffix, video_codec, audio_codec", [(".mp4", "h264", "aac"), (".webm", "vp9", "opus")])
def test_video_writes_h264_mp4_or_vp9_webm_with_the_sources_sound(tmp_path, capsys, small_checkpoint, suffix,
                                                                   video_codec, audio_codec):
    source = write_clip(tmp_path / "clip.mp4", audio_codec="aac")
    target = tmp_path / f"depth{suffix}"
    code, err = run(capsys, "video", source, "-w", small_checkpoint, "--size", "64", "--out", target, "-q")
    assert code == 0, err
    codec, frames, size, seconds, sound, sound_seconds = probe(target)
    assert (codec, frames, size, sound) == (video_codec, round(SECONDS * FPS), (64, 48), audio_codec)
    assert seconds == pytest.approx(SECONDS, abs=1e-3)
    assert sound_seconds == pytest.approx(SECONDS, abs=0.05)  # ends with the last frame (an AAC frame is 21 ms)
    assert pixel_format(target) == "yuv420p"  # what browsers and phones play
    with av.open(str(target)) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(FPS, rel=1e-3)
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".muggled")) == ["clip.mp4", target.name]  # no temp file left


def test_an_odd_sized_video_keeps_its_size(tmp_path, capsys, small_checkpoint):
    source = write_clip(tmp_path / "clip.webm", audio_codec="libopus", size_wh=(65, 47), seconds=1.0)
    target = tmp_path / "depth.mp4"
    code, err = run(capsys, "video", source, "-w", small_checkpoint, "--size", "64", "--out", target)
    assert code == 0, err
    codec, frames, size, _, sound, _ = probe(target)
    assert (codec, frames, size, sound) == ("vp9", FPS, (65, 47), "opus")
    assert "odd side" in err


def test_raw_depth16_is_a_lossless_16_bit_video_of_the_npz_frames(tmp_path, capsys, small_checkpoint):
    source = write_clip(tmp_path / "clip.mp4", seconds=1.0)
    target = tmp_path / "depth.mp4"
    code, err = run(capsys, "video", source, "-w", small_checkpoint, "--size", "64", "--out", target,
                    "--raw", "npz,depth16", "-q")
    assert code == 0, err
    mkv = tmp_path / "depth_depth16.mkv"
    with av.open(str(mkv)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("ffv1", "gray16le")
        tags = container.metadata
        low, high = float(tags["DEPTH_LOW"]), float(tags["DEPTH_HIGH"])
        values = [frame.to_ndarray() for frame in container.decode(stream)]
    with np.load(tmp_path / "depth.npz") as npz:
        floats = [npz[f"frame_{index:06d}"] for index in range(FPS)]
    assert len(values) == FPS
    for stored, depth in zip(values, floats):
        np.testing.assert_array_equal(stored, depth16.encode(depth, low, high))  # every value kept
        assert np.abs(depth16.decode(stored, low, high) - depth).max() <= (high - low) / 65535 / 2 + 1e-6


def test_without_pyav_one_line_says_what_is_lost_and_opencv_writes(tmp_path, capsys, small_checkpoint, monkeypatch):
    source = write_clip(tmp_path / "clip.mp4", seconds=1.0)
    monkeypatch.setattr(av_video, "av", None)
    target = tmp_path / "depth.mp4"
    code, err = run(capsys, "video", source, "-w", small_checkpoint, "--size", "64", "--out", target)
    assert code == 0
    [line] = [line for line in err.splitlines() if "PyAV is not installed" in line]  # in the summary line
    assert "without sound" in line and "MPEG-4 Part 2" in line
    codec, frames, _, _, sound, _ = probe(target)
    assert (codec, frames, sound) == ("mpeg4", FPS, None)


def test_raw_depth16_without_pyav_is_refused_before_any_work(tmp_path, capsys, small_checkpoint, monkeypatch):
    source = write_clip(tmp_path / "clip.mp4", seconds=1.0)
    monkeypatch.setattr(av_video, "av", None)
    code, err = run(capsys, "video", source, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "--raw", "depth16")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--raw depth16 needs PyAV" in err
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".muggled")) == ["clip.mp4"]


def test_an_unknown_raw_kind_is_refused(tmp_path, capsys, small_checkpoint):
    source = write_clip(tmp_path / "clip.mp4", seconds=1.0)
    with pytest.raises(SystemExit) as stop:
        main(["video", str(source), "-w", str(small_checkpoint), "--out", str(tmp_path / "d.mp4"), "--raw", "npz,exr"])
    assert stop.value.code == 2 and "unknown kind 'exr'" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".muggled")) == ["clip.mp4"]


def test_the_webcam_save_of_a_video_file_keeps_its_sound(tmp_path, small_checkpoint):
    import subprocess
    import sys
    from pathlib import Path

    source = write_clip(tmp_path / "clip.mp4")
    target = tmp_path / "live.mp4"
    script = Path(__file__).resolve().parent.parent / "scripts" / "webcam_demo.py"
    result = subprocess.run([sys.executable, str(script), "--source", str(source), "--weights", str(small_checkpoint),
                             "--size", "64", "--headless", "--max-frames", "5", "--save", str(target)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    codec, frames, size, seconds, sound, sound_seconds = probe(target)
    assert (codec, frames, size, sound) == ("h264", 5, (128, 48), "aac")  # the picture beside its depth
    assert seconds == pytest.approx(0.5, abs=1e-3) and sound_seconds == pytest.approx(0.5, abs=0.05)  # cut at the last frame


def test_the_web_pages_depth_video_is_h264_with_the_uploads_sound(tmp_path, small_model):
    from pathlib import Path

    from muggled_swinv2.web.service import DepthService, Limits, ModelInfo

    service = DepthService(small_model, ModelInfo("small", Path("small.pt"), "cpu", "float32"), Limits(), tmp_path / "work")
    target = service.video(str(write_clip(tmp_path / "clip.mp4", seconds=1.0)), size=64)
    codec, frames, size, seconds, sound, _ = probe(target)
    assert (target.suffix, codec, frames, size, sound) == (".mp4", "h264", FPS, (64, 48), "aac")
    assert seconds == pytest.approx(1.0, abs=1e-3)
