"""Training and evaluation data checked like every other input (issue 21, defects 16-21): malformed
or empty ground truth named and skipped, unusable folders, states and disks refused in one line,
scores that exist or are null, and numeric options refused when they make no sense."""

import errno
import json
import shutil
import subprocess
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from muggled_swinv2.cli import main
from muggled_swinv2.datasets import load_folder
from muggled_swinv2.evaluation import protocol as protocol_module
from muggled_swinv2.evaluation.metrics import score_depth
from muggled_swinv2.io.images import read_pfm, save_pfm
from muggled_swinv2.model import SwinV2DPT
from muggled_swinv2.model.config import SMALL_CONFIGS
from muggled_swinv2.synthetic.scenes import render_scene
from muggled_swinv2.training import trainer as trainer_module
from muggled_swinv2.training.batches import disparity_of
from muggled_swinv2.training.trainer import TrainOptions


def make_folder(folder, depths: dict, size_hw=(48, 64)):
    """DIR/images/<name>.png (a synthetic scene) and DIR/depth/<name>.npy for each name -> depth
    array (None: that scene's true depth)."""
    (folder / "images").mkdir(parents=True)
    (folder / "depth").mkdir()
    for index, (name, depth) in enumerate(depths.items()):
        image, true_depth = render_scene(300 + index, size_hw)
        cv2.imwrite(str(folder / "images" / f"{name}.png"), image)
        np.save(folder / "depth" / f"{name}.npy", true_depth if depth is None else depth)
    return folder


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


TRAIN = ["train", "--config", "nano", "--quiet", "--device", "cpu", "--scenes", "2", "--val-count", "1",
         "--size", "64", "--steps", "2", "--warmup", "1"]

# ----------------------------------------------------------------------------- 16: a PFM's header


def test_a_pfm_header_claiming_100000_squared_pixels_is_named_and_skipped(tmp_path):
    folder = make_folder(tmp_path / "data", {"good": None, "huge": np.ones((48, 64), np.float32)})
    (folder / "depth" / "huge.npy").unlink()
    (folder / "depth" / "huge.pfm").write_bytes(b"Pf\n100000 100000\n-1\n" + bytes(64))
    with pytest.raises(ValueError, match="100000x100000"):
        read_pfm(folder / "depth" / "huge.pfm")
    samples, problems = load_folder(folder)
    assert [sample.name for sample in samples] == ["good"]
    assert len(problems) == 1 and "huge.pfm" in problems[0] and "100000x100000" in problems[0], problems


def test_pfm_files_this_tool_writes_still_read_back(tmp_path):
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    save_pfm(tmp_path / "d.pfm", depth)
    assert np.array_equal(read_pfm(tmp_path / "d.pfm"), depth)
    (tmp_path / "short.pfm").write_bytes((tmp_path / "d.pfm").read_bytes()[:-4])  # one pixel missing
    with pytest.raises(ValueError, match="short.pfm"):
        read_pfm(tmp_path / "short.pfm")


# ----------------------------------------------------------------------------- 17: no valid pixel


def test_ground_truth_without_a_valid_pixel_is_named_and_skipped(tmp_path):
    invalid = {"nan": np.full((48, 64), np.nan, np.float32), "inf": np.full((48, 64), np.inf, np.float32),
               "zero": np.zeros((48, 64), np.float32)}
    folder = make_folder(tmp_path / "data", {"good": None, **invalid})
    samples, problems = load_folder(folder)
    assert [sample.name for sample in samples] == ["good"]
    for name in invalid:
        assert any(f"{name}.npy" in line and "no valid ground-truth pixel" in line for line in problems), problems


def test_eval_and_train_on_ground_truth_with_no_valid_pixel_stop_in_one_line(tmp_path, small_checkpoint, capsys):
    folder = make_folder(tmp_path / "data", {f"s{index}": np.full((48, 64), np.nan, np.float32) for index in range(3)})
    report = tmp_path / "scores.json"
    assert main(["eval", "--weights", str(small_checkpoint), "--data", str(folder), "--quiet", "--json", str(report)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(folder) in line and "none of its 3 pairs" in line and "no valid ground-truth pixel" in line
    assert not report.exists()
    out = tmp_path / "m.safetensors"
    assert main([*TRAIN, "--data", str(folder), "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(folder) in line and "no valid ground-truth pixel" in line
    assert not out.exists()


def test_eval_prints_the_images_it_scored_and_its_json_has_null_not_nan(tmp_path, small_checkpoint, capsys, monkeypatch):
    """An image whose prediction is nowhere finite is not scored: the count says so, the means
    leave it out, and its scores are null in the JSON (bare NaN is not JSON)."""
    folder = make_folder(tmp_path / "data", {"s0": None, "s1": None, "s2": None})
    real_predict = protocol_module.predict_batch

    def nan_for_s1(model, images, **options):
        predictions = real_predict(model, images, **options)
        predictions[1] = np.full_like(predictions[1], np.nan)
        return predictions

    monkeypatch.setattr(protocol_module, "predict_batch", nan_for_s1)
    report = tmp_path / "scores.json"
    assert main(["eval", "--weights", str(small_checkpoint), "--data", str(folder), "--quiet", "--json", str(report)]) == 0
    assert capsys.readouterr().out.startswith("2 of 3 images scored: AbsRel 0.")

    def refuse(constant):
        raise AssertionError(f"{constant} in the JSON")

    result = json.loads(report.read_text(), parse_constant=refuse)
    rows = {row["name"]: row for row in result["images"]}
    assert rows["s1"]["absrel"] is None and rows["s1"]["delta1"] is None and rows["s1"]["valid"] == 0
    assert result["scored"] == 2
    assert result["mean"]["absrel"] == pytest.approx(np.mean([rows["s0"]["absrel"], rows["s2"]["absrel"]]))


def test_eval_with_no_image_scored_is_an_error_and_writes_nothing(tmp_path, small_checkpoint, capsys, monkeypatch):
    folder = make_folder(tmp_path / "data", {"s0": None})
    monkeypatch.setattr(protocol_module, "predict_batch",
                        lambda model, images, **options: [np.full(image.shape[:2], np.nan, np.float32) for image in images])
    report = tmp_path / "scores.json"
    assert main(["eval", "--weights", str(small_checkpoint), "--data", str(folder), "--quiet", "--json", str(report)]) == 2
    assert "none of the 1 images could be scored" in one_error_line(capsys.readouterr().err)
    assert not report.exists()


# ----------------------------------------------------------------------------- NaN and inf are not ground truth


def test_nan_and_inf_ground_truth_are_invalid_pixels(tmp_path):
    """The README's promise: 0, NaN and inf mark missing ground truth, in folders, in the scores
    and in the training targets (where a synthetic scene's +inf is sky: disparity 0, a known value)."""
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 10, (48, 64)).astype(np.float32)
    holes = depth.copy()
    holes[:10] = np.nan
    holes[10:20] = np.inf
    holes[20:25] = -np.inf
    folder = make_folder(tmp_path / "data", {"holes": holes})
    (sample,), _ = load_folder(folder)
    assert (sample.depth[:25] == 0).all() and np.array_equal(sample.depth[25:], depth[25:])
    prediction = rng.uniform(0.1, 1, (48, 64)).astype(np.float32)
    scores = score_depth(prediction, holes)
    only_the_rest = score_depth(prediction[25:], depth[25:])
    assert scores.valid == only_the_rest.valid == 23 * 64
    assert scores.absrel == pytest.approx(only_the_rest.absrel) and scores.delta1 == only_the_rest.delta1
    disparity, valid = disparity_of(holes)
    assert not valid[:10].any() and valid[10:20].all() and (disparity[10:20] == 0).all() and not valid[20:25].any()
    assert np.allclose(disparity[25:], 1 / depth[25:]) and valid[25:].all()


# ----------------------------------------------------------------------------- 18: folders


@pytest.mark.parametrize("layout", ["empty", "no images/", "images/ only", "no pairs"])
def test_train_on_a_folder_without_pairs_stops_in_one_line(tmp_path, capsys, layout):
    folder = tmp_path / "data"
    folder.mkdir()
    if layout == "no images/":
        (folder / "depth").mkdir()
    elif layout == "images/ only":
        (folder / "images").mkdir()
    elif layout == "no pairs":
        (folder / "images").mkdir()
        (folder / "depth").mkdir()
        cv2.imwrite(str(folder / "images" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    out = tmp_path / "m.safetensors"
    assert main([*TRAIN, "--data", str(folder), "--out", str(out)]) == 2
    assert str(folder) in one_error_line(capsys.readouterr().err)
    assert not out.exists()


# ----------------------------------------------------------------------------- 19: --resume of other files


def nano_state(out):
    """The training state of a nano model at step 1 of TRAIN's run, written by the trainer's own save_state."""
    path = trainer_module.state_path(out)
    model = SwinV2DPT(SMALL_CONFIGS["nano"])
    optimizer = torch.optim.AdamW(model.parameters())
    options = TrainOptions(out=str(out), config="nano", scenes=2, steps=2, size=64, warmup=1, val_count=1)
    trainer_module.save_state(path, model, optimizer, torch.amp.GradScaler("cpu", enabled=False), 1, options)
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["truncated", "text", "model checkpoint", "wrong dict", "wrong tensors"])
def test_resume_from_a_file_that_is_not_a_training_state_stops_in_one_line(tmp_path, capsys, small_checkpoint, kind):
    out = tmp_path / "m.safetensors"
    state = trainer_module.state_path(out)
    if kind == "truncated":
        state.write_bytes(nano_state(out)[:5000])
    elif kind == "text":
        state.write_text("my notes\n")
    elif kind == "model checkpoint":
        shutil.copyfile(small_checkpoint, state)
    elif kind == "wrong dict":
        torch.save({"step": "three", "model": [1, 2]}, state)
    else:  # every key, but the tensors of another model
        nano_state(out)
        saved = torch.load(state, weights_only=True)
        saved["model"] = {key: value.flatten()[:1] for key, value in saved["model"].items()}
        torch.save(saved, state)
    before = state.read_bytes()
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(state) in line and "not a training state" in line
    assert state.read_bytes() == before and not out.exists()


# ----------------------------------------------------------------------------- 20: a full disk


def test_a_state_that_does_not_fit_is_a_no_space_error_and_leaves_no_file(tmp_path, monkeypatch):
    """torch.save reports a failed write as RuntimeError('... unexpected pos ...') raised while
    handling the OSError; the trainer turns it back into that OSError, naming the file."""

    def full_disk_save(obj, file):
        file.write(b"PK")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(trainer_module.torch, "save", full_disk_save)
    path = trainer_module.state_path(tmp_path / "m.safetensors")
    with pytest.raises(OSError) as raised:
        nano_state(tmp_path / "m.safetensors")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
    assert list(tmp_path.iterdir()) == []


def test_training_onto_a_folder_without_room_is_refused_before_it_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(trainer_module.shutil, "disk_usage", lambda folder: SimpleNamespace(free=2**20))
    started = []
    monkeypatch.setattr(trainer_module, "load_data", lambda options, log: started.append(1))
    out = tmp_path / "m.safetensors"
    assert main([*TRAIN, "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(tmp_path) in line and "No space left on device" in line and "1.0 MiB free" in line
    assert not started and list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (needs root and a kernel that lets this process mount)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_training_onto_a_full_disk_says_so_in_one_line(tiny_disk, capsys, monkeypatch):
    out = tiny_disk / "m.safetensors"
    assert main([*TRAIN, "--out", str(out)]) == 2  # refused before the data is even rendered
    assert "No space left on device" in one_error_line(capsys.readouterr().err)
    monkeypatch.setattr(trainer_module, "check_free_space", lambda folder, model: None)  # as if the disk filled up later
    assert main([*TRAIN, "--out", str(out)]) == 2
    assert "No space left on device" in one_error_line(capsys.readouterr().err)
    assert list(tiny_disk.iterdir()) == []
    with pytest.raises(OSError) as raised:  # the state (written by torch.save) on its own
        nano_state(out)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(trainer_module.state_path(out))
    assert list(tiny_disk.iterdir()) == []


# ----------------------------------------------------------------------------- 21: numeric options


@pytest.mark.parametrize("command, option, value", [
    *[("eval", "--gt-scale", value) for value in ("0", "-1", "nan", "inf")],
    *[("train", "--gt-scale", value) for value in ("0", "-1", "nan", "inf")],
    *[("eval", "--max-depth", value) for value in ("-5", "0", "nan")],
])
def test_meaningless_scales_and_depth_caps_are_refused_when_parsed(tmp_path, capsys, monkeypatch, command, option, value):
    monkeypatch.setattr(trainer_module, "train", lambda *args, **kwargs: pytest.fail("training started"))
    with pytest.raises(SystemExit) as raised:
        main([command, option, value, "--out" if command == "train" else "--json", str(tmp_path / "x"), "--quiet"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: must be a positive number, got {value}" in err, err


# ----------------------------------------------------------------------------- --resume of a finished run


def test_resume_of_a_finished_run_says_there_is_nothing_to_do(tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main([*TRAIN, "--out", str(out)]) == 0
    capsys.readouterr()
    files = {path: path.read_bytes() for path in tmp_path.iterdir()}
    assert main([*TRAIN, "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "nothing to do" in err and "nan" not in err and len(err.strip().splitlines()) == 1, err
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == files  # nothing rewritten
