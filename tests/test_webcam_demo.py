"""scripts/webcam_demo.py on a clip as its camera: headless runs, saved frames, refusals."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from types import SimpleNamespace

from pictures import read_video, write_video
from cli_runs import REPO


def test_webcam_demo_headless(tmp_path, small_checkpoint, clip):
    target = tmp_path / "live.mp4"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "webcam_demo.py"), "--source", str(clip), "--weights",
         str(small_checkpoint), "--headless", "--max-frames", "5", "--save", str(target)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    frames, fps = read_video(target)
    assert len(frames) == 5 and frames[0].shape == (64, 192, 3) and fps == pytest.approx(12.0)
    assert frames[0][:, 96:].max() > 0  # the depth half is drawn from the first frame on


def test_webcam_demo_bad_source(tmp_path, small_checkpoint):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "webcam_demo.py"), "--source", str(tmp_path / "nope.mp4"),
         "--weights", str(small_checkpoint), "--headless"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "cannot open" in result.stderr and "Traceback" not in result.stderr


def webcam_demo(*args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "webcam_demo.py"), "--headless", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_webcam_demo_never_overwrites_the_source_or_an_existing_file(tmp_path, small_checkpoint, clip):
    original = clip.read_bytes()
    result = webcam_demo("--source", clip, "--weights", small_checkpoint, "--save", clip, "--overwrite")
    assert result.returncode == 2 and "would overwrite the source video" in result.stderr
    assert clip.read_bytes() == original
    (tmp_path / "old.mp4").write_bytes(b"old")
    result = webcam_demo("--source", clip, "--weights", small_checkpoint, "--save", tmp_path / "old.mp4")
    assert result.returncode == 2 and "--overwrite" in result.stderr and (tmp_path / "old.mp4").read_bytes() == b"old"


def test_webcam_demo_bad_arguments_are_one_line(tmp_path, small_checkpoint, clip):
    (tmp_path / "file").write_text("x")
    empty = write_video(tmp_path / "empty.avi", frames=0, fourcc="MJPG")
    for args, message in [(["--size", "0"], "must be a positive integer"),
                          (["--max-frames", "-1"], "must be a positive integer"),
                          (["--save", tmp_path / "file" / "live.mp4"], "cannot write there"),
                          (["--source", empty], "empty.avi")]:
        result = webcam_demo("--source", clip, "--weights", small_checkpoint, *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
        assert message in result.stderr.strip().splitlines()[-1]  # after argparse's usage lines, if any


def load_webcam_demo():
    import importlib.util

    spec = importlib.util.spec_from_file_location("webcam_demo", REPO / "scripts" / "webcam_demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def test_webcam_demo_saved_frames_carry_their_own_depth(tmp_path, monkeypatch, clip):
    """Defect 6: a file source with --headless --save paired new frames with stale depth maps."""
    import time

    demo = load_webcam_demo()

    from muggled_swinv2.predict import prepare_input

    class SlowModel(torch.nn.Module):  # depth = the input's mean, so each depth map tells which frame it belongs to
        def __init__(self):
            super().__init__()
            self.config = SimpleNamespace(native_size=64)
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def forward(self, image_bchw):
            time.sleep(0.05)
            return image_bchw.mean(dim=(1, 2, 3))[:, None, None].expand(-1, *image_bchw.shape[2:]).clone()

    shown = []
    real_compose = demo.compose
    monkeypatch.setattr(demo, "load_model", lambda *args, **kwargs: SlowModel())
    monkeypatch.setattr(demo, "compose", lambda frame, depth, *rest: shown.append((frame, depth)) or
                        real_compose(frame, depth, *rest))
    code = demo.main(["--source", str(clip), "--weights", "unused.pt", "--headless", "--no-stabilize",
                      "--save", str(tmp_path / "live.avi")])
    assert code == 0 and len(shown) == 7
    assert all(depth is not None and depth[0, 0] == pytest.approx(float(prepare_input(frame, 64, False, None).mean()), abs=1e-3)
               for frame, depth in shown)
    assert len(read_video(tmp_path / "live.avi")[0]) == 7


def test_webcam_demo_missing_camera_is_named_before_loading_the_model(tmp_path):
    result = webcam_demo("--source", "7", "--weights", tmp_path / "missing.pt")
    assert result.returncode == 2 and result.stderr.strip() == "error: no camera 7 (or it is busy)"
    result = webcam_demo("--source", "0", "--weights", tmp_path / "missing.pt", "--save", tmp_path / "live.gif")
    assert result.returncode == 2 and "live.gif: cannot write .gif videos" in result.stderr


def test_webcam_snapshot_that_cannot_be_written_is_reported(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("webcam_demo", REPO / "scripts" / "webcam_demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the current folder no longer exists: nothing can be written there
    demo.save_snapshot(np.zeros((8, 8, 3), np.uint8))
    err = capsys.readouterr().err
    assert "cannot save" in err and "saved" not in err
    monkeypatch.chdir(tmp_path)
    demo.save_snapshot(np.zeros((8, 8, 3), np.uint8))
    demo.save_snapshot(np.zeros((8, 8, 3), np.uint8))
    assert len(list(tmp_path.glob("depth_snapshot_*.png"))) == 2  # the second does not replace the first
