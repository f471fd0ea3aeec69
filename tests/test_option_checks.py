"""Options and inputs that used to end in a traceback, a hang, a useless file or a double count:
train's learning rate, seed and warm-up; weights that are not finite; sizes too large for any
number type; synthetic scenes too large for memory; FIFOs and same-named images in an eval folder;
`export --size 64x`; the web page's size field."""

import json
import os
import threading

import cv2
import numpy as np
import pytest
import torch

from muggled_swinv2 import memory
from muggled_swinv2.cli import main
from muggled_swinv2.cli.arguments import MAX_NETWORK_SIDE
from muggled_swinv2.datasets import load_folder
from muggled_swinv2.model import SwinV2DPT
from muggled_swinv2.model.config import SMALL_CONFIGS
from muggled_swinv2.predict import MAX_NETWORK_SIDE as PREDICT_MAX_NETWORK_SIDE
from muggled_swinv2.synthetic.scenes import render_scene
from muggled_swinv2.training import trainer as trainer_module
from pictures import photo, write_video

TRAIN = ["train", "--config", "nano", "--quiet", "--device", "cpu", "--scenes", "2", "--val-count", "1",
         "--size", "64", "--steps", "2", "--warmup", "1"]
HUGE = "9" * 400


def parse_error(capsys, argv) -> str:
    """The one error line of an argument refused when parsed (exit 2, argparse's usage above it)."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def error_line(capsys, argv) -> str:
    """The one line of a command that ends with exit 2 after parsing."""
    assert main([str(arg) for arg in argv]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- N13: train's options and weights


@pytest.mark.parametrize("option, value, reason", [
    ("--lr", "nan", "must be a positive number, got nan"),
    ("--lr", "-1", "must be a positive number, got -1"),
    ("--lr", "inf", "must be a positive number, got inf"),
    ("--lr", "0", "must be a positive number, got 0"),
    ("--seed", "-1", "must be a whole number >= 0, got -1"),
    ("--seed", HUGE, "must be at most 9223372036854775807, got 999999999999...9999 (400 characters)"),
    ("--warmup", "-1", "must be a whole number >= 0, got -1"),
    ("--steps", HUGE, "must be at most 9223372036854775807"),
])
def test_train_options_are_checked_when_parsed(tmp_path, capsys, monkeypatch, option, value, reason):
    monkeypatch.setattr(trainer_module, "train", lambda *args, **kwargs: pytest.fail("training started"))
    line = parse_error(capsys, [*TRAIN, option, value, "--out", str(tmp_path / "m.safetensors")])
    assert f"argument {option}: {reason}" in line
    assert list(tmp_path.iterdir()) == []


def test_a_diverged_training_writes_no_weights(tmp_path, capsys):
    """--lr 1e30 passes the option check, and the first step's update makes the weights infinite."""
    out = tmp_path / "m.safetensors"
    line = error_line(capsys, [*TRAIN, "--lr", "1e30", "--out", out])
    assert line.startswith(f"error: {out}: not written: the training diverged (")
    assert "weights are NaN or infinite); try a lower --lr" in line
    assert list(tmp_path.iterdir()) == []


def test_save_weights_refuses_non_finite_weights_and_counts_them(tmp_path):
    model = SwinV2DPT(SMALL_CONFIGS["nano"])
    total = sum(tensor.numel() for tensor in model.state_dict().values() if tensor.is_floating_point())
    with torch.no_grad():
        model.decoder.head.conv3.weight.view(-1)[:3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    with pytest.raises(trainer_module.TrainingError) as raised:
        trainer_module.save_weights(model, tmp_path / "m.safetensors")
    assert f"(3 of {total:,} weights are NaN or infinite)" in str(raised.value)
    assert list(tmp_path.iterdir()) == []
    with torch.no_grad():
        model.decoder.head.conv3.weight.view(-1)[:3] = 0.5
    trainer_module.save_weights(model, tmp_path / "m.safetensors")  # finite again: written
    assert (tmp_path / "m.safetensors").is_file()


# ----------------------------------------------------------------------------- N15: sizes no number type holds


def test_the_largest_network_side_is_one_number():
    assert MAX_NETWORK_SIDE == PREDICT_MAX_NETWORK_SIDE


@pytest.mark.parametrize("command", ["image", "video", "eval"])
def test_a_400_digit_size_is_one_line(tmp_path, capsys, small_checkpoint, command):
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), photo(20, 30))
    inputs = {"image": [picture, "--out", tmp_path / "out"], "video": [write_video(tmp_path / "v.avi", fourcc="MJPG"),
              "--out", tmp_path / "d.avi"], "eval": ["--count", "1"]}[command]
    line = parse_error(capsys, [command, *map(str, inputs), "-w", str(small_checkpoint), "--size", HUGE])
    assert line.endswith(f"argument --size: the network takes sides of at most {MAX_NETWORK_SIDE} pixels, "
                         f"got 999999999999...9999 (400 characters)")
    assert not (tmp_path / "out").exists() and not (tmp_path / "d.avi").exists()


@pytest.mark.parametrize("size, reason", [
    (HUGE, f"--size (400 digits)x(400 digits): the network takes sides of at most {MAX_NETWORK_SIDE} pixels"),
    (f"{HUGE}x64", f"--size (400 digits)x64: the network takes sides of at most {MAX_NETWORK_SIDE} pixels"),
    (f"{2**21}x64", f"--size 2097152x64: the network takes sides of at most {MAX_NETWORK_SIDE} pixels"),
    (str(2**40), f"--size 1099511627776x1099511627776: the network takes sides of at most {MAX_NETWORK_SIDE} pixels"),
    ("64x", "--size '64x': expected H or HxW, e.g. 256 or 384x672"),
    ("x64", "--size 'x64': expected H or HxW, e.g. 256 or 384x672"),
    ("1e308", "--size '1e308': expected H or HxW, e.g. 256 or 384x672"),
])
def test_export_sizes_out_of_range_or_half_written_are_one_line(tmp_path, capsys, monkeypatch, small_checkpoint,
                                                                size, reason):
    pytest.importorskip("onnx")
    from muggled_swinv2.jobs import export as export_job

    monkeypatch.setattr(export_job, "load_model", lambda *args: pytest.fail("the model was loaded"))
    line = error_line(capsys, ["export", small_checkpoint, tmp_path / "m.onnx", "--size", size])
    assert line == f"error: {reason}"
    assert list(tmp_path.iterdir()) == []


def test_export_size_is_h_or_hxw():
    """('H' alone is H x H; 'Hx' is not H x H.)"""
    from muggled_swinv2.export.onnx import ExportError, parse_export_size as parse_size

    assert parse_size("64") == (64, 64) and parse_size("64x96") == (64, 96)
    with pytest.raises(ExportError):
        parse_size("64x")


def test_the_web_pages_size_field_refuses_what_no_network_takes():
    from muggled_swinv2.web.service import KEEP_ASPECT, SQUARE, UploadError, network_size

    assert network_size(KEEP_ASPECT, 0) is None and network_size(KEEP_ASPECT, None) is None
    assert network_size(KEEP_ASPECT, 96) == 96 and network_size(KEEP_ASPECT, 96.0) == 96
    assert network_size(SQUARE, 1e308) is None  # the square mode takes no size
    for size, shown in [(1e308, "1e+308"), (float("inf"), "inf"), (float("nan"), "nan"), (10**400, "10000000... (401 digits)"),
                        (MAX_NETWORK_SIDE + 1, str(MAX_NETWORK_SIDE + 1)), (96.5, "96.5"), (-32, "-32")]:
        with pytest.raises(UploadError) as raised:
            network_size(KEEP_ASPECT, size)
        assert str(raised.value) == (f"Size {shown}: the network takes a whole number of pixels up to {MAX_NETWORK_SIDE} "
                                     f"(0 = the model's native size).")


def test_the_web_service_refuses_a_size_of_1e308_in_one_line(tmp_path, small_model):
    from muggled_swinv2.web.service import KEEP_ASPECT, DepthService, Limits, ModelInfo, UploadError

    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), photo(20, 30))
    info = ModelInfo("small", tmp_path / "m.pt", "cpu", "float32")
    service = DepthService(small_model, info, Limits(), tmp_path / "work")
    with pytest.raises(UploadError, match=r"^Size 1e\+308: the network takes a whole number of pixels"):
        service.image(str(picture), "inferno", KEEP_ASPECT, 1e308)
    video = write_video(tmp_path / "v.avi", frames=3, fourcc="MJPG")
    with pytest.raises(UploadError, match=r"^Size 1e\+308: the network takes a whole number of pixels"):
        service.video(str(video), "inferno", KEEP_ASPECT, 1e308)


# ----------------------------------------------------------------------------- N14: scenes too large to render


def test_synthetic_scenes_too_large_for_memory_are_refused_before_the_model_loads(capsys, monkeypatch, small_checkpoint):
    from muggled_swinv2.jobs import models

    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 4 * 2**30)
    monkeypatch.setattr(models, "open_model", lambda *args, **kwargs: pytest.fail("the model was loaded"))
    line = error_line(capsys, ["eval", "--scene-size", "100000", "--count", "1", "-w", small_checkpoint, "--quiet"])
    assert line == ("error: --scene-size 100000: a scene of 100000x100000 pixels needs about 1741.6 GiB, 4.0 GiB "
                    "available; the largest scene side that fits is 4792")
    line = error_line(capsys, ["eval", "--scene-size", "2048", "--count", "200", "-w", small_checkpoint, "--quiet"])
    assert "200 scenes of 2048x2048 pixels need about 6.9 GiB, 4.0 GiB available; the largest scene side that fits is 1562" in line


def test_the_scene_estimate_holds_what_rendering_and_scoring_take():
    """The side named as fitting does fit, one more pixel does not, and the count and processes count."""
    budget = 4 * 2**30
    assert memory.scene_bytes(4792, 1) <= budget < memory.scene_bytes(4793, 1)
    assert memory.scene_bytes(100, 8, processes=2) == 100 * 100 * (2 * 180 + 8 * 7)
    assert memory.scene_refusal(256, 200, 2, available=budget) is None


# ----------------------------------------------------------------------------- N16 and same-named images in eval folders


def make_folder(folder, names, size_hw=(48, 64)):
    (folder / "images").mkdir(parents=True)
    (folder / "depth").mkdir()
    for index, name in enumerate(names):
        image, depth = render_scene(300 + index, size_hw)
        cv2.imwrite(str(folder / "images" / f"{name}.png"), image)
        np.save(folder / "depth" / f"{name}.npy", depth)
    return folder


def test_a_fifo_in_images_or_depth_is_skipped_not_waited_for(tmp_path):
    folder = make_folder(tmp_path / "data", ["a", "b"])
    os.mkfifo(folder / "images" / "c.png")  # nobody ever writes into these
    os.mkfifo(folder / "depth" / "b2.npy")
    os.mkfifo(folder / "images" / "b2.png")
    result = {}
    reader = threading.Thread(target=lambda: result.update(loaded=load_folder(folder)), daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), "load_folder hangs on a FIFO"
    samples, problems = result["loaded"]
    assert [sample.name for sample in samples] == ["a", "b"]
    assert problems == [f"{folder / 'depth' / 'b2.npy'}: not a regular file; skipped",
                        f"{folder / 'images' / 'b2.png'}: not a regular file; skipped",
                        f"{folder / 'images' / 'c.png'}: not a regular file; skipped"]


def test_eval_of_a_folder_with_a_fifo_finishes(tmp_path, capsys, small_checkpoint):
    folder = make_folder(tmp_path / "data", ["a"])
    os.mkfifo(folder / "images" / "b.png")
    report = tmp_path / "scores.json"
    done = []
    command = threading.Thread(daemon=True, target=lambda: done.append(main(
        ["eval", "--weights", str(small_checkpoint), "--data", str(folder), "--quiet", "--json", str(report)])))
    command.start()
    command.join(timeout=120)
    assert done == [0], "eval hangs on a FIFO"
    assert f"{folder / 'images' / 'b.png'}: not a regular file; skipped" in capsys.readouterr().err
    assert [image["name"] for image in json.loads(report.read_text())["images"]] == ["a"]


def test_same_named_images_are_scored_once(tmp_path, capsys, small_checkpoint):
    folder = make_folder(tmp_path / "data", ["a", "b"])
    shutil_image = cv2.imread(str(folder / "images" / "a.png"))
    cv2.imwrite(str(folder / "images" / "a.jpg"), shutil_image)  # sorted: a.jpg comes first
    samples, problems = load_folder(folder)
    assert [sample.name for sample in samples] == ["a", "b"]
    assert problems == [f"{folder / 'images' / 'a.png'}: a.jpg has the same name and is scored against a.npy; skipped"]
    report = tmp_path / "scores.json"
    assert main(["eval", "--weights", str(small_checkpoint), "--data", str(folder), "--quiet", "--json", str(report)]) == 0
    scores = json.loads(report.read_text())
    assert [image["name"] for image in scores["images"]] == ["a", "b"] and scores["settings"]["count"] == 2
