"""Commands that say what happened and name the right thing: a missing [train] extra, the demo-model
note only where no checkpoint was named, renamed same-name outputs, the loader's message for an
ONNX graph, a folder that is no model, a --data folder that does not exist, the install hints'
one form, and convert's output suffix."""

import os
from pathlib import Path

import cv2
import pytest
from cli_runs import listing, run
from pictures import photo

import muggled_swinv2.datasets as datasets
from muggled_swinv2.demo import DEMO_WEIGHTS
from muggled_swinv2.jobs.bench.plan import PEER_MISSING

TRAIN_HINT = "pip install 'muggled_swinv2[train]'"
DEMO_NOTE_START = "note: no checkpoint given or found"


@pytest.fixture
def without_scikit_image(monkeypatch):
    """The import check answers as it does where the [train] extra is not installed."""
    monkeypatch.setattr(datasets, "has_photo_textures", lambda: False)  # the name check_scene_textures calls


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_train_on_synthetic_scenes_without_the_train_extra_refuses_in_one_line(capsys, tmp_path, without_scikit_image):
    out = tmp_path / "nano.safetensors"
    code, _, err = run(capsys, "train", "--config", "nano", "--steps", "2", "--out", out, "--quiet")
    assert code == 2
    assert one_error(err) == (f"error: --data synthetic needs scikit-image, whose photos texture the scenes: {TRAIN_HINT}")
    assert os.listdir(tmp_path) == []  # refused before any file


def test_eval_on_synthetic_scenes_without_the_train_extra_refuses_in_one_line(capsys, tmp_path, small_checkpoint,
                                                                              without_scikit_image):
    code, _, err = run(capsys, "eval", "--data", "synthetic", "--count", "4", "--weights", small_checkpoint,
                       "--json", tmp_path / "scores.json", "--quiet")
    assert code == 2 and TRAIN_HINT in one_error(err)
    assert not (tmp_path / "scores.json").exists()


def test_the_demo_note_only_where_no_checkpoint_was_named(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./weights here; the session's cache folder is private and empty
    code, out, err = run(capsys, "info", DEMO_WEIGHTS)
    assert code == 0 and "micro" not in err and DEMO_NOTE_START not in err and "256x256" in out
    code, _, err = run(capsys, "info")
    assert code == 0 and err.startswith(DEMO_NOTE_START)
    cv2.imwrite("photo.png", photo(40, 60))
    code, _, err = run(capsys, "image", "photo.png", "--weights", DEMO_WEIGHTS, "--out", "out", "--quiet")
    assert code == 0 and DEMO_NOTE_START not in err
    assert listing("out") == ["photo.png"]


def test_same_name_inputs_say_which_output_was_renamed(capsys, tmp_path, small_checkpoint):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "p.jpg"), photo(40, 60))
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "image", tmp_path / "a" / "p.jpg", tmp_path / "b" / "p.jpg", "--weights",
                            small_checkpoint, "--out", out)
    assert code == 0 and listing(out) == ["p.png", "p_2.png"]
    assert err.strip().splitlines()[0] == (f"{tmp_path / 'b' / 'p.jpg'}: {out / 'p.png'} is the output of another "
                                           f"input of this run; writing {out / 'p_2.png'} instead")
    assert "processed 2, failed 0" in stdout + err


def test_export_of_a_folder_without_config_json_names_the_folder_not_the_output(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "export", tmp_path, "x.onnx")
    assert code == 2
    assert one_error(err) == f"error: {tmp_path}: a folder without config.json, not a Hugging Face model folder"


def test_convert_of_an_onnx_graph_says_what_image_says(capsys, tmp_path):
    graph = tmp_path / "demo.onnx"
    graph.write_bytes(b"\x08\x07\x12\x07pytorch")  # the first bytes of an ONNX ModelProto
    (tmp_path / "w").mkdir()
    code, _, convert_err = run(capsys, "convert", graph, tmp_path / "w" / "x.safetensors")
    assert code == 2
    cv2.imwrite(str(tmp_path / "p.png"), photo(40, 60))
    code, _, image_err = run(capsys, "image", tmp_path / "p.png", "--weights", graph, "--out", tmp_path / "out")
    assert code == 2
    expected = f"error: {graph}: an exported ONNX graph, not a checkpoint;"
    assert one_error(convert_err).startswith(expected) and one_error(convert_err) == one_error(image_err)
    assert os.listdir(tmp_path / "w") == []


def test_eval_of_a_missing_data_folder_says_no_such_folder(capsys, small_checkpoint):
    code, _, err = run(capsys, "eval", "--data", "nothere/", "--weights", small_checkpoint, "--quiet")
    assert code == 2 and one_error(err) == "error: nothere: no such folder"


def test_the_bench_peer_hint_has_the_form_of_every_other_install_hint():
    assert "pip install 'muggled_swinv2[test]'" in PEER_MISSING and "-e" not in PEER_MISSING


@pytest.mark.parametrize("name", ["x.pt", "x.bin", "x"])
def test_convert_refuses_an_output_suffix_of_another_format(capsys, tmp_path, small_checkpoint, name):
    (tmp_path / "w").mkdir()
    code, _, err = run(capsys, "convert", small_checkpoint, tmp_path / "w" / name)
    assert code == 2
    assert one_error(err) == (f"error: {tmp_path / 'w' / name}: convert writes a .safetensors file; name OUT "
                              f"NAME.safetensors (or --to hf for a Hugging Face folder)")
    assert os.listdir(tmp_path / "w") == []
