"""The `video` job's threads fit the CPUs: the model leaves one core to the writer thread beside it."""

import os

import torch

from muggled_swinv2.devices import torch_threads_beside


def test_model_threads_leave_the_cores_that_run_beside_it(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    before = torch.get_num_threads()
    with torch_threads_beside(1):
        inside = torch.get_num_threads()
        with torch_threads_beside(9):
            at_least_one = torch.get_num_threads()
    assert (inside, at_least_one, torch.get_num_threads()) == (3, 1, before)


def test_video_job_predicts_with_one_core_left_to_the_writer(tmp_path, monkeypatch, model, clip):
    import muggled_swinv2.jobs.video as video_job

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(5)), raising=False)
    seen, infer_prepared = [], video_job.infer_prepared

    def counting(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return infer_prepared(*args, **kwargs)

    monkeypatch.setattr(video_job, "infer_prepared", counting)
    before = torch.get_num_threads()
    video_job.run_video_job(model, clip, tmp_path / "depth.mp4", video_job.VideoJobOptions(), quiet=True)
    assert seen == [4] * 7 and torch.get_num_threads() == before
