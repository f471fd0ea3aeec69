"""`video` end to end on clips written by the tests: frames, size, rate, the npz, refusals, interrupts."""

import numpy as np
import pytest

from muggled_swinv2.io.ledger import OutputLedger
from muggled_swinv2.video.depth_npz import recover_raw
from pictures import read_video, write_video
from cli_runs import listing, run
from faults import fail_on_call


def test_video_frames_size_rate_and_raw(tmp_path, capsys, small_checkpoint, model, panning_clip):
    clip = panning_clip
    target = tmp_path / "depth.mp4"
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--raw", "npz", "--batch-size", 3)
    assert code == 0, err
    frames, fps = read_video(target)
    assert len(frames) == 7 and frames[0].shape == (64, 96, 3) and fps == pytest.approx(12.0)
    inputs, _ = read_video(clip)
    raw = np.load(tmp_path / "depth.npz")
    frame_names = [f"frame_{index:06d}" for index in range(7)]
    flows = [name for name in raw.files if name.startswith("flow_")]  # the frames of a moving camera: all but the first
    assert sorted(flows) == [f"flow_{index:06d}" for index in range(1, 7)]
    assert sorted(set(raw.files) - set(flows)) == sorted(frame_names + [f"smoothed_{index:06d}" for index in range(7)]
                                                         + ["reset", "scale", "shift", "smoothing", "moving_smoothing"])
    assert raw["scale"].shape == raw["shift"].shape == raw["reset"].shape == (7,)
    assert raw["reset"][0] and raw["scale"][0] == 1 and raw["shift"][0] == 0
    recovered = recover_raw(raw)  # stabilised by default; the npz undoes it, up to rounding
    assert len(recovered) == 7
    for index, frame in enumerate(inputs):
        expected = model.predict(frame)
        assert np.allclose(recovered[index], expected, atol=1e-5 * np.ptp(expected))
    assert "wrote 7 frames" in err
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--raw", "npz", "--no-stabilize",
                       "--overwrite")
    assert code == 0, err
    raw = np.load(tmp_path / "depth.npz")
    assert sorted(raw.files) == [f"frame_{index:06d}" for index in range(7)]  # the predictions as they are
    unchanged = recover_raw(raw)  # which recover_raw gives back as they are
    for index, frame in enumerate(inputs):
        expected = model.predict(frame)
        assert np.allclose(raw[f"frame_{index:06d}"], expected, atol=1e-5 * np.ptp(expected))
        assert np.array_equal(unchanged[index], raw[f"frame_{index:06d}"])


def test_video_side_by_side_and_per_frame(tmp_path, capsys, small_checkpoint, clip):
    for extra in ([], ["--per-frame-range"]):
        target = tmp_path / f"sbs{len(extra)}.avi"
        code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--side-by-side", *extra)
        assert code == 0, err
        frames, _ = read_video(target)
        assert len(frames) == 7 and frames[0].shape == (64, 192, 3)


def test_video_running_range_is_steadier_than_per_frame():
    from muggled_swinv2.io.colormaps import RunningRange

    running = RunningRange()
    highs = [running.update(np.array([0.0, 1.0 + (index % 2)]))[1] for index in range(20)]
    assert np.abs(np.diff(highs[5:])).max() < 0.2  # the per-frame max jumps by 1 every frame
    assert all(1.0 <= high <= 2.0 for high in highs)


def test_video_bad_inputs(tmp_path, capsys, small_checkpoint, clip):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    code, _, err = run(capsys, "video", corrupt, "-w", small_checkpoint, "--out", tmp_path / "o.mp4")
    assert code == 2 and "corrupt.mp4" in err and not (tmp_path / "o.mp4").exists()
    code, _, err = run(capsys, "video", tmp_path / "missing.mp4", "-w", small_checkpoint, "--out", tmp_path / "o.mp4")
    assert code == 2 and "no such video file" in err
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", clip, "--overwrite")
    assert code == 2 and "would overwrite the input" in err and len(read_video(clip)[0]) == 7
    (tmp_path / "exists.mp4").write_bytes(b"old")
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "exists.mp4")
    assert code == 2 and "--overwrite" in err and (tmp_path / "exists.mp4").read_bytes() == b"old"
    assert not [path for path in tmp_path.iterdir() if "partial" in path.name]


@pytest.mark.parametrize("name", ["clip.gif", "depth.png", "depth.jpg", "depth"])
def test_video_containers_we_cannot_write_are_refused_up_front(tmp_path, capsys, clip, name):
    """Defect 1: .gif/.png/.jpg were processed to the end, then failed blaming the disk, leaving litter."""
    code, _, err = run(capsys, "video", clip, "-w", tmp_path / "no-weights.pt", "--out", tmp_path / name)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / name}: cannot write" in err and "use one of .mp4, .m4v, .mov, .avi, .mkv" in err
    assert listing(tmp_path) == ["clip.mp4"]  # no model was loaded, nothing written


def test_video_overwrite_replaces_only_our_file(tmp_path, capsys, small_checkpoint, clip):
    target = tmp_path / "depth.avi"
    target.write_bytes(b"someone's video")
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--overwrite", "-q")
    assert code == 2 and "was not written by muggled-swinv2" in err and target.read_bytes() == b"someone's video"
    target.unlink()
    for _ in range(2):  # the second run replaces the file the first one wrote
        code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--overwrite", "-q")
        assert code == 0, err
    assert len(read_video(target)[0]) == 7


def test_video_with_zero_frames(tmp_path, capsys, small_checkpoint):
    empty = write_video(tmp_path / "empty.avi", frames=0, fourcc="MJPG")
    assert empty.stat().st_size > 0  # a container that opens, with no frame in it
    code, _, err = run(capsys, "video", empty, "-w", small_checkpoint, "--out", tmp_path / "o.mp4")
    assert code == 2 and f"{empty}: no frames could be read (empty or corrupt video)" in err and err.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.avi"]


def test_video_interrupt_leaves_a_playable_file(tmp_path, monkeypatch, small_checkpoint, model, clip):
    import muggled_swinv2.jobs.video as video_job

    fail_on_call(monkeypatch, video_job, "infer_prepared", 4, KeyboardInterrupt())
    summary = video_job.run_video_job(model, clip, tmp_path / "cut.mp4", video_job.VideoJobOptions(raw_npz=True), quiet=True)
    assert summary.interrupted and summary.frames == 3
    assert len(read_video(tmp_path / "cut.mp4")[0]) == 3
    raw = np.load(tmp_path / "cut.npz")
    assert sorted(name for name in raw.files if name.startswith(("frame_", "smoothed_"))) == [
        "frame_000000", "frame_000001", "frame_000002", "smoothed_000000", "smoothed_000001", "smoothed_000002"]
    assert raw["scale"].shape == (3,)
    assert not [path for path in tmp_path.iterdir() if "partial" in path.name]  # no temp file left
    assert "interrupted: the files hold the first 3 frames; run the same command again" in summary.line()
    ledger = OutputLedger()  # both files ours and marked partial: the same command run again replaces them
    assert [ledger.record_of(tmp_path / name).partial for name in ("cut.mp4", "cut.npz")] == [True, True]


def test_video_out_that_is_a_folder_or_cannot_be_written(tmp_path, capsys, small_checkpoint, clip):
    (tmp_path / "folder").mkdir()
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "folder", "--overwrite")
    assert code == 2 and "is a folder" in err and not list((tmp_path / "folder").iterdir())
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "file" / "depth.mp4")
    assert code == 2 and err.count("\n") == 1 and "file: cannot write there" in err


def test_video_frames_lost_in_writing_leave_no_file(tmp_path, capsys, monkeypatch, small_checkpoint, clip):
    from muggled_swinv2.io.video import AtomicVideoWriter

    real_write = AtomicVideoWriter.write

    def drop_after_two(writer, frame):  # what OpenCV does, silently, when the disk is full
        if writer.frames < 2:
            real_write(writer, frame)
        else:
            writer.frames += 1

    monkeypatch.setattr(AtomicVideoWriter, "write", drop_after_two)
    monkeypatch.setattr("muggled_swinv2.io.av_video.av", None)  # OpenCV's writer: PyAV's reports its errors
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "--raw", "npz", "-q")
    assert code == 2 and "depth.mp4: could not be written completely (2 of 7 frames" in err
    assert "OpenCV wrote a damaged file" in err and "space" not in err  # the disk is fine: not blamed
    assert listing(tmp_path) == ["clip.mp4"]
    monkeypatch.setattr("muggled_swinv2.io.video.disk_is_full", lambda folder: True)
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "-q")
    assert code == 2 and "(2 of 7 frames readable back; no space left on device)" in err


def test_video_npz_write_error_leaves_no_file(tmp_path, capsys, monkeypatch, small_checkpoint, clip):
    from muggled_swinv2.io.video import AtomicNpzWriter

    def disk_full(writer, name, array):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(AtomicNpzWriter, "write_array", disk_full)
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "--raw", "npz", "-q")
    assert code == 2 and err.count("\n") == 1 and "depth.mp4: cannot write (No space left on device)" in err
    assert listing(tmp_path) == ["clip.mp4"]


def test_video_failed_prediction_is_one_line(tmp_path, capsys, monkeypatch, small_checkpoint, clip):
    import muggled_swinv2.jobs.video as video_job

    out_of_memory = RuntimeError("not enough memory: you tried to allocate 1 TB\nsecond line")
    fail_on_call(monkeypatch, video_job, "infer_prepared", 3, out_of_memory)
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "--raw", "npz", "-q")
    assert code == 2 and err.count("\n") == 1
    assert "clip.mp4: depth estimation failed at frame 3 (not enough memory: you tried to allocate 1 TB)" in err
    assert listing(tmp_path) == ["clip.mp4"]


def test_video_interrupted_before_any_frame_writes_nothing(tmp_path, monkeypatch, model, clip):
    import muggled_swinv2.jobs.video as video_job

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(video_job, "infer_prepared", interrupt)
    summary = video_job.run_video_job(model, clip, tmp_path / "cut.mp4", video_job.VideoJobOptions(raw_npz=True), quiet=True)
    assert summary.interrupted and summary.frames == 0
    assert listing(tmp_path) == ["clip.mp4"]  # no empty, unplayable file
