"""The threaded frame pipeline and the video job on it: every frame once and in order, whatever
stage is slow; a clean stop on an error in any stage (reader, model, writer) and on Ctrl-C."""

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import cv2
from muggled_swinv2.io.video import VideoError, VideoReader
from muggled_swinv2.video.pipeline import LivePipeline, StageError, run_pipelined
from pictures import read_video
from faults import fail_on_call


def pipeline_threads():
    return [thread for thread in threading.enumerate() if thread.name in ("frame-reader", "frame-model", "frame-writer")]


def slow_frames(count, delay=0.0, fail_at=None):
    for index in range(count):
        if index == fail_at:
            raise OSError(5, "Input/output error")
        time.sleep(delay)
        yield index


def slow_infer(delay=0.0, fail_at=None, calls=None):
    def infer(inputs):
        if calls is not None:
            calls.append(len(inputs))
        time.sleep(delay)
        if fail_at is not None and fail_at in inputs:
            raise RuntimeError("out of memory\nmore")
        return [value * 10 for value in inputs]
    return infer


@pytest.mark.parametrize("reader_delay, model_delay, batch_size", [
    (0.0, 0.004, 1),  # the model is slower than the reader
    (0.004, 0.0, 1),  # the reader is slower than the model
    (0.0, 0.004, 3),  # batches, the last one short (14 = 3 * 4 + 2)
    (0.002, 0.002, 4),
])
def test_every_frame_once_in_order(reader_delay, model_delay, batch_size):
    calls = []
    pipeline = LivePipeline(slow_frames(14, reader_delay), slow_infer(model_delay, calls=calls),
                             prepare=lambda frame: frame + 1000, batch_size=batch_size, queue_size=2)
    items = []
    for item in pipeline:
        time.sleep(0.001)  # the caller (the writer) takes time too
        items.append(item)
    assert [item.index for item in items] == list(range(14))
    assert [item.frame for item in items] == list(range(14))
    assert [item.result for item in items] == [(index + 1000) * 10 for index in range(14)]
    assert sum(calls) == 14 and max(calls) <= batch_size
    assert not pipeline_threads()


def test_queues_are_bounded():
    read = []

    def frames():
        for index in range(50):
            read.append(index)
            yield index

    ahead = []
    for item in LivePipeline(frames(), slow_infer(), queue_size=2):
        time.sleep(0.005)  # a slow writer
        ahead.append(len(read) - item.index)
    assert max(ahead) <= 2 + 2 + 3  # two queues, plus what each thread holds


@pytest.mark.parametrize("stage", ["reader", "model"])
def test_error_in_a_stage_comes_after_the_frames_before_it(stage):
    frames = slow_frames(10, fail_at=6 if stage == "reader" else None)
    infer = slow_infer(fail_at=6 if stage == "model" else None)
    seen = []
    with pytest.raises(StageError) as caught:
        for item in LivePipeline(frames, infer, batch_size=1):
            seen.append(item.index)
    assert caught.value.stage == stage and caught.value.index == 6 and seen == list(range(6))
    assert str(caught.value).count("\n") == 0
    assert not pipeline_threads()


def test_error_in_the_callers_loop_stops_the_threads():
    pipeline = LivePipeline(slow_frames(1000), slow_infer(0.001), queue_size=2)
    with pytest.raises(OSError):
        for item in pipeline:
            if item.index == 3:
                raise OSError(28, "No space left on device")
    assert not pipeline_threads()
    with LivePipeline(slow_frames(1000), slow_infer(), queue_size=2) as early:
        next(iter(early))  # leaving early also stops them
    assert not pipeline_threads()


def test_interrupt_in_a_stage_reaches_the_caller():
    def infer(inputs):
        if 3 in inputs:
            raise KeyboardInterrupt
        return inputs

    seen = []
    with pytest.raises(KeyboardInterrupt):
        for item in LivePipeline(slow_frames(10), infer):
            seen.append(item.index)
    assert seen == [0, 1, 2] and not pipeline_threads()


def test_live_mode_skips_to_the_newest_frame_in_order():
    items = list(LivePipeline(slow_frames(60, 0.001), slow_infer(0.02), newest_only=True))
    indices = [item.index for item in items]
    assert indices == sorted(set(indices)) and len(indices) < 60
    assert indices[-1] == 59  # the newest frame is never dropped


def test_a_live_camera_is_at_most_one_result_behind_a_slow_caller():
    predicted = []

    def infer(inputs):
        predicted.extend(inputs)
        return inputs

    ahead = []
    for item in LivePipeline(slow_frames(150, 0.001), infer, newest_only=True):
        ahead.append(sum(index > item.index for index in predicted))  # results made but not yet shown
        time.sleep(0.02)  # the caller shows the frame: slower than the model
    # one result waits for the caller, the model holds the next one: no backlog grows
    assert len(ahead) > 5 and max(ahead) <= 2
    with pytest.raises(ValueError):
        LivePipeline(slow_frames(3), infer, batch_size=2, newest_only=True)


# ----------------------------------------------------------------------------- the video job


class StampModel(torch.nn.Module):
    """Inverse depth = the picture's brightness, so each output says which frame it came from."""

    def __init__(self, delay=0.0):
        super().__init__()
        self.config = SimpleNamespace(native_size=64)
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.delay = delay

    def forward(self, x):
        time.sleep(self.delay)
        return x.mean(1) * self.weight


def stamped_video(path, frames=12, size_wh=(64, 48)):
    """Frame i is a flat gray of 20 + 15 i (with a little texture)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size_wh)
    for index in range(frames):
        writer.write(np.full((size_wh[1], size_wh[0], 3), 20 + 15 * index, np.uint8))
    writer.release()
    return path


def stamp_of(values) -> int:
    return int(round(((np.mean(values) + 1) / 2 * 255 - 20) / 15))


@pytest.mark.parametrize("model_delay, reader_delay, batch_size", [(0.01, 0.0, 1), (0.0, 0.01, 2), (0.005, 0.005, 5)])
def test_video_job_writes_each_frame_once_in_order(tmp_path, monkeypatch, model_delay, reader_delay, batch_size):
    from muggled_swinv2.jobs.video import VideoJobOptions, run_video_job

    real_read = VideoReader.read

    def slow_read(reader):
        time.sleep(reader_delay)
        return real_read(reader)

    monkeypatch.setattr(VideoReader, "read", slow_read)
    source = stamped_video(tmp_path / "stamped.avi")
    progress = []
    options = VideoJobOptions(raw_npz=True, side_by_side=True, stabilize=False, memory_check=False, batch_size=batch_size, queue_size=2)
    summary = run_video_job(StampModel(model_delay), source, tmp_path / "depth.avi", options, quiet=True,
                            progress=lambda done, total: progress.append(done))
    assert summary.frames == 12 and not summary.interrupted and progress == list(range(1, 13))
    raw = np.load(tmp_path / "depth.npz")
    assert [stamp_of(raw[f"frame_{index:06d}"]) for index in range(12)] == list(range(12))
    frames, _ = read_video(tmp_path / "depth.avi")
    assert [stamp_of(frame[:, :64] / 127.5 - 1) for frame in frames] == list(range(12))  # the picture beside it
    assert not pipeline_threads()


def job_fails(tmp_path, model=None, **options):
    from muggled_swinv2.jobs.video import VideoJobOptions, run_video_job

    source = stamped_video(tmp_path / "stamped.avi")
    with pytest.raises(VideoError) as caught:
        run_video_job(model or StampModel(), source, tmp_path / "depth.avi", VideoJobOptions(raw_npz=True, memory_check=False, **options),
                      quiet=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["stamped.avi"]  # no file, no temp file
    assert not pipeline_threads()
    return str(caught.value)


def test_video_job_reader_error(tmp_path, monkeypatch):
    fail_on_call(monkeypatch, VideoReader, "read", 5, cv2.error("decoder broke"))
    message = job_fails(tmp_path)
    assert "stamped.avi: cannot read frame 5 (decoder broke); no file written" in message and "\n" not in message


def test_video_job_model_error(tmp_path):
    class Failing(StampModel):
        def forward(self, x):
            if x.mean() > (20 + 15 * 3.5) / 127.5 - 1:  # from frame 5 (index 4) on
                raise RuntimeError("CUDA out of memory.\nTried to allocate")
            return super().forward(x)

    message = job_fails(tmp_path, Failing())
    assert "stamped.avi: depth estimation failed at frame 5 " in message and "(CUDA out of memory.)" in message and "\n" not in message


def test_video_job_writer_error(tmp_path, monkeypatch):
    from muggled_swinv2.io.video import AtomicVideoWriter

    real_write = AtomicVideoWriter.write

    def disk_full(writer, frame):
        if writer.frames == 4:
            raise OSError(28, "No space left on device")
        real_write(writer, frame)

    monkeypatch.setattr(AtomicVideoWriter, "write", disk_full)
    message = job_fails(tmp_path, StampModel(0.002))
    assert "depth.avi: cannot write (No space left on device); no file written" in message


# ----------------------------------------------------------------------------- run_pipelined: the model in this thread


@pytest.mark.parametrize("reader_delay, model_delay, sink_delay, batch_size", [
    (0.0, 0.004, 0.0, 1), (0.004, 0.0, 0.0, 2), (0.0, 0.0, 0.004, 3), (0.002, 0.002, 0.002, 4)])
def test_run_sinks_every_frame_once_in_order(reader_delay, model_delay, sink_delay, batch_size):
    seen = []

    def sink(item):
        time.sleep(sink_delay)
        seen.append((item.index, item.frame, item.result, threading.current_thread().name))

    assert run_pipelined(slow_frames(13, reader_delay), slow_infer(model_delay), sink, batch_size=batch_size, queue_size=2) == 13
    assert [entry[:3] for entry in seen] == [(index, index, index * 10) for index in range(13)]
    assert {entry[3] for entry in seen} == {"frame-writer"} and not pipeline_threads()


@pytest.mark.parametrize("stage", ["reader", "model", "writer"])
def test_run_stops_cleanly_on_an_error_in_any_stage(stage):
    seen = []

    def sink(item):
        if stage == "writer" and item.index == 6:
            raise OSError(28, "No space left on device")
        seen.append(item.index)

    frames = slow_frames(50, fail_at=6 if stage == "reader" else None)
    with pytest.raises(StageError) as caught:
        run_pipelined(frames, slow_infer(0.001, fail_at=6 if stage == "model" else None), sink, queue_size=2)
    assert caught.value.stage == stage and caught.value.index == 6 and seen == list(range(6))
    assert not pipeline_threads()


def test_run_interrupted_writes_what_was_predicted():
    predicted, seen = [], []

    def infer(inputs):
        if 5 in inputs:
            raise KeyboardInterrupt  # Ctrl-C while the model runs
        predicted.extend(inputs)
        return inputs

    def slow_sink(item):
        time.sleep(0.01)
        seen.append(item.index)

    with pytest.raises(KeyboardInterrupt):
        run_pipelined(slow_frames(50), infer, slow_sink, queue_size=4)
    assert seen == predicted == [0, 1, 2, 3, 4] and not pipeline_threads()
