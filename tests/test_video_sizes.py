"""Videos of awkward sizes: tiny and thin frames (too small for optical flow) are stabilised
without motion compensation and say so; odd sizes come back at their size in .avi and are refused,
not cropped, by the containers OpenCV writes only at even sizes."""

import cv2
import numpy as np
import pytest

from cli_runs import run
from muggled_swinv2.io import av_video
from muggled_swinv2.io.av_video import ODD_SIZE_CONTAINERS, writes_with_pyav
from muggled_swinv2.io.video import ANY_SIZE_CONTAINERS, VIDEO_CONTAINERS, AtomicVideoWriter, VideoError
from muggled_swinv2.jobs.video import VideoJobOptions, run_video_job
from muggled_swinv2.video.motion import upsample_flow
from muggled_swinv2.video.stabilize import DepthStabilizer
from pictures import read_video


def panning_frames(size_wh, frames: int = 4, step: int = 3) -> list[np.ndarray]:
    """BGR uint8 frames of a textured scene seen through a window moving `step` pixels right a frame."""
    width, height = size_wh
    rng = np.random.default_rng(3)
    scene = cv2.GaussianBlur(rng.random((height + 8, width + step * frames + 8)).astype(np.float32), (0, 0), 2)
    scene = ((scene - scene.min()) / np.ptp(scene) * 255).astype(np.uint8)
    return [cv2.cvtColor(scene[4:4 + height, 4 + step * index:4 + step * index + width], cv2.COLOR_GRAY2BGR)
            for index in range(frames)]


def write_avi(path, frames: list[np.ndarray], fps: float = 10.0):
    """Motion JPEG in AVI by OpenCV's own writer, which keeps any frame size (FFmpeg's crops odd ones)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


# ----------------------------------------------------------------------------- tiny and thin frames

TINY = [(8, 8), (4, 4), (2, 2), (2000, 8)]  # (width, height): a side under 16 pixels, no flow
THIN = [(1280, 32), (32, 600), (80, 20), (40, 30)]  # flow on 320x32, 32x320, 96x32 (DIS crashed at 20x80), 96x32


@pytest.mark.parametrize("size_wh", TINY + THIN)
def test_the_stabiliser_runs_on_tiny_and_thin_frames(size_wh):
    frames = panning_frames(size_wh, frames=5)
    rng = np.random.default_rng(0)
    stabilizer = DepthStabilizer()
    outs = [stabilizer((1 + frame[..., 0] / 64 + 0.01 * rng.standard_normal(frame.shape[:2])).astype(np.float32), frame)
            for frame in frames]  # DIS raised cv2.error at the second frame of the tiny ones
    assert all(out.depth.shape == size_wh[::-1] and np.isfinite(out.depth).all() for out in outs)
    if size_wh in TINY:
        assert stabilizer.motion.too_small == size_wh[::-1] and all(out.flow_low is None for out in outs)
    else:  # a pan of 3 pixels a frame along the long side: found, in the depth map's pixels
        assert stabilizer.motion.too_small is None and all(out.flow_low is not None for out in outs[1:])
        flow = upsample_flow(outs[-1].flow_low, size_wh[::-1])  # a pixel now at x was at x + 3
        assert np.median(flow[..., 0]) == pytest.approx(3, abs=0.5) and np.median(flow[..., 1]) == pytest.approx(0, abs=0.5)


@pytest.mark.parametrize("size_wh", [(8, 8), (2, 2), (2000, 8), (1280, 32)])
def test_video_of_tiny_and_thin_frames(tmp_path, capsys, small_checkpoint, size_wh):
    source = write_avi(tmp_path / "tiny.avi", panning_frames(size_wh, frames=4))
    target = tmp_path / "depth.avi"
    code, _, err = run(capsys, "video", source, "-w", small_checkpoint, "--out", target)
    assert code == 0, err
    frames, fps = read_video(target)
    assert len(frames) == 4 and frames[0].shape[:2] == size_wh[::-1] and fps == pytest.approx(10.0)
    too_small = min(size_wh) < 16
    note = f"frames of {size_wh[0]}x{size_wh[1]} pixels are too small for optical flow (at least 16 a side): " \
           f"stabilised without motion compensation"
    assert (note in err) == too_small, err


# ----------------------------------------------------------------------------- odd sizes, every container


def test_every_container_reads_back_at_the_frames_size(tmp_path, small_model):
    """Even frames in every container the `video` command offers; odd ones (333x177) at their size in
    .avi and wherever FFmpeg (PyAV) writes, and refused in one line, before any work and with nothing
    written, where OpenCV would crop (without PyAV)."""
    for size_wh in [(334, 178), (333, 177)]:
        source = write_avi(tmp_path / f"source_{size_wh[0]}.avi", panning_frames(size_wh, frames=3), fps=12.0)
        for suffix in VIDEO_CONTAINERS:
            target = tmp_path / f"depth_{size_wh[0]}{suffix}"
            options = VideoJobOptions(size=64, memory_check=False)
            if size_wh[0] % 2 and suffix not in (*ANY_SIZE_CONTAINERS, *(ODD_SIZE_CONTAINERS if writes_with_pyav(target) else ())):
                with pytest.raises(VideoError, match="only at even frame sizes|an odd side"):
                    run_video_job(small_model, source, target, options, quiet=True)
                assert not target.exists()
                continue
            run_video_job(small_model, source, target, options, quiet=True)
            frames, fps = read_video(target)
            assert len(frames) == 3 and frames[0].shape[:2] == size_wh[::-1] and fps == pytest.approx(12.0), suffix


@pytest.mark.parametrize("suffix", [suffix for suffix in VIDEO_CONTAINERS if suffix not in ANY_SIZE_CONTAINERS])
def test_an_odd_size_is_refused_where_it_would_be_cropped(tmp_path, capsys, small_checkpoint, suffix, monkeypatch):
    monkeypatch.setattr(av_video, "av", None)  # OpenCV writes: FFmpeg through PyAV keeps odd sizes (test_video_ffmpeg.py)
    source = write_avi(tmp_path / "odd.avi", panning_frames((333, 177), frames=2))
    target = tmp_path / f"depth{suffix}"
    code, _, err = run(capsys, "video", source, "-w", small_checkpoint, "--out", target)
    assert code == 2 and err.count("\n") == 1
    assert err == (f"error: {target}: OpenCV writes {suffix} videos only at even frame sizes, and these frames are "
                   f"333x177; write .avi (Motion JPEG), which keeps the size\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["odd.avi"]


def test_side_by_side_of_an_odd_size_keeps_it(tmp_path, capsys, small_checkpoint, monkeypatch):
    source = write_avi(tmp_path / "odd.avi", panning_frames((333, 177), frames=2))
    if av_video.pyav_installed():  # FFmpeg: VP9 in MP4 keeps it; .m4v cannot hold VP9 and says so
        code, _, err = run(capsys, "video", source, "-w", small_checkpoint, "--out", tmp_path / "sbs.mp4", "--side-by-side")
        assert code == 0, err
        frames, _ = read_video(tmp_path / "sbs.mp4")
        assert len(frames) == 2 and frames[0].shape[:2] == (177, 666)
        code, _, err = run(capsys, "video", source, "-w", small_checkpoint, "--out", tmp_path / "sbs.m4v", "--side-by-side")
        assert code == 2 and "these frames are 666x177" in err and not (tmp_path / "sbs.m4v").exists()
    monkeypatch.setattr(av_video, "av", None)  # OpenCV's writer
    code, _, err = run(capsys, "video", source, "-w", small_checkpoint, "--out", tmp_path / "sbs2.mp4", "--side-by-side")
    assert code == 2 and "these frames are 666x177" in err  # twice as wide: even, but 177 rows
    code, _, err = run(capsys, "video", source, "-w", small_checkpoint, "--out", tmp_path / "sbs.avi", "--side-by-side")
    assert code == 0, err
    frames, _ = read_video(tmp_path / "sbs.avi")
    assert len(frames) == 2 and frames[0].shape[:2] == (177, 666)


def test_the_web_pages_webm_of_an_odd_size_drops_the_odd_edge(tmp_path, small_model):
    """The web page's WebM preview (browsers play it; OpenCV writes it at even sizes only)."""
    source = write_avi(tmp_path / "odd.avi", panning_frames((333, 177), frames=2))
    run_video_job(small_model, source, tmp_path / "preview.webm", VideoJobOptions(size=64, even_size=True), quiet=True)
    frames, _ = read_video(tmp_path / "preview.webm")
    assert len(frames) == 2 and frames[0].shape[:2] == (176, 332)


@pytest.mark.parametrize("fps", [29.97, 23 / 3.23, 0.5])
def test_avi_keeps_a_rate_that_is_not_a_whole_number(tmp_path, fps):
    """OpenCV's own Motion JPEG writer stores whole rates only (29.97 -> 30) and none under 1: the header is rewritten."""
    writer = AtomicVideoWriter(tmp_path / "rate.avi", fps, (33, 17))
    for frame in panning_frames((33, 17), frames=3):
        writer.write(frame)
    writer.finish()
    frames, read_fps = read_video(tmp_path / "rate.avi")
    assert len(frames) == 3 and frames[0].shape[:2] == (17, 33) and read_fps == pytest.approx(fps, rel=1e-6)
