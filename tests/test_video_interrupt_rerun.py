"""Ctrl-C during `video`: complete files of the frames done, marked partial in the ledger, and the
same command run again (without --overwrite) writes them whole."""

import numpy as np

from cli_runs import listing, run
from faults import fail_on_call
from pictures import read_video, write_video


def test_rerun_after_ctrl_c_finishes_the_outputs(tmp_path, capsys, monkeypatch, small_checkpoint, clip):
    import muggled_swinv2.jobs.video as video_job

    command = ["video", clip, "-w", small_checkpoint, "--out", tmp_path / "int.mp4", "--raw", "npz", "-q"]
    with monkeypatch.context() as patch:
        fail_on_call(patch, video_job, "infer_prepared", 4, KeyboardInterrupt())
        code, out, err = run(capsys, *command)
    assert code == 130, err
    assert "wrote 3 frames" in out + err
    assert "(interrupted: the files hold the first 3 frames; run the same command again to write them whole)" in out + err
    assert len(read_video(tmp_path / "int.mp4")[0]) == 3 and np.load(tmp_path / "int.npz")["scale"].shape == (3,)

    code, out, err = run(capsys, *command)
    assert code == 0, err
    assert len(read_video(tmp_path / "int.mp4")[0]) == 7 and np.load(tmp_path / "int.npz")["scale"].shape == (7,)
    assert listing(tmp_path) == ["clip.mp4", "int.mp4", "int.npz"]

    code, _, err = run(capsys, *command)  # whole now: the rule for a finished output again
    assert code == 2 and "--out" in err and "int.mp4: exists; pass --overwrite to replace it" in err


def test_a_partial_file_changed_since_is_not_replaced(tmp_path, capsys, monkeypatch, small_checkpoint, clip):
    import muggled_swinv2.jobs.video as video_job

    command = ["video", clip, "-w", small_checkpoint, "--out", tmp_path / "int.mp4", "-q"]
    with monkeypatch.context() as patch:
        fail_on_call(patch, video_job, "infer_prepared", 3, KeyboardInterrupt())
        assert run(capsys, *command)[0] == 130
    write_video(tmp_path / "int.mp4", frames=2, size_wh=(96, 64), fps=12.0)  # someone's own file now
    code, _, err = run(capsys, *command)
    assert code == 2 and "int.mp4: exists; pass --overwrite to replace it" in err
    assert len(read_video(tmp_path / "int.mp4")[0]) == 2
