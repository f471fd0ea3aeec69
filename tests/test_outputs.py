"""The one output rule (io/outputs.py) and every writer that follows it: an output never replaces
an input, and replaces an existing file only with --overwrite and only if this tool wrote it.
Issue 21, defects 1-5: export, train --out, eval --json and bench --json broke it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runs import REPO, run
from pictures import write_video

from muggled_swinv2.io.ledger import OutputLedger
from muggled_swinv2.io.outputs import OutputRule


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# ----------------------------------------------------------------------------- the rule itself


def test_an_input_is_never_an_output_by_any_name(tmp_path):
    source = tmp_path / "in.pt"
    source.write_bytes(b"weights")
    (tmp_path / "link.pt").symlink_to(source)
    os.link(source, tmp_path / "hard.pt")
    rule = OutputRule(overwrite=True, inputs={source: "the input"})
    for path in (source, tmp_path / "link.pt", tmp_path / "hard.pt", tmp_path / "." / "in.pt"):
        assert "would overwrite the input" in rule.refusal(path, "OUT"), path
    folder = tmp_path / "model"
    folder.mkdir()
    inside = OutputRule(overwrite=True, inputs={folder: "the input"})
    assert "would overwrite the input" in inside.refusal(folder / "new.safetensors")  # inside an input folder
    holding = OutputRule(overwrite=True, inputs={source: "the input"})
    assert "would overwrite the input" in holding.refusal(tmp_path)  # a folder holding an input


def test_existing_files_need_overwrite_and_must_be_ours(tmp_path):
    ours, theirs, new = tmp_path / "ours.json", tmp_path / "theirs.json", tmp_path / "new.json"
    ours.write_text("{}")
    theirs.write_text("notes")
    OutputRule().record(ours)
    assert OutputRule().refusal(new, "--json") is None
    assert OutputRule().refusal(ours, "--json") == f"--json {ours}: exists; pass --overwrite to replace it"
    assert OutputRule(overwrite=True).refusal(ours, "--json") is None
    assert "was not written by muggled-swinv2; refusing to replace it" in OutputRule(overwrite=True).refusal(theirs, "--json")
    ours.write_text('{"changed": "by hand"}')  # changed since we wrote it: no longer ours
    assert "was not written by muggled-swinv2" in OutputRule(overwrite=True).refusal(ours, "--json")


# ----------------------------------------------------------------------------- defects 1-2: export


def test_export_never_replaces_its_input_checkpoint(capsys, tmp_path, small_checkpoint):
    """Defect 1: `export victim.pt victim.pt --overwrite` replaced the checkpoint with an ONNX file."""
    victim = tmp_path / "victim.pt"
    shutil.copy(small_checkpoint, victim)
    before = victim.read_bytes()
    for target in (victim, tmp_path / "alias.pt"):
        if target != victim:
            target.symlink_to(victim)
        code, _, err = run(capsys, "export", victim, target, "--overwrite")
        assert code == 2 and "would overwrite the checkpoint" in one_error_line(err), err
    assert victim.read_bytes() == before


def test_export_never_replaces_a_file_it_did_not_write(capsys, tmp_path, small_checkpoint):
    """Defect 2: `export W foreign.onnx --overwrite` replaced a file the tool never wrote."""
    foreign = tmp_path / "foreign.onnx"
    foreign.write_text("notes\n")
    code, _, err = run(capsys, "export", small_checkpoint, foreign, "--overwrite")
    assert code == 2 and "--overwrite" not in one_error_line(err).split(";")[0]
    assert "foreign.onnx: exists and was not written by muggled-swinv2" in one_error_line(err)
    assert foreign.read_text() == "notes\n"


@pytest.fixture
def exported(small_export) -> Path:
    """A folder holding model.onnx, written by `export` at 64x64 (so recorded in the folder's ledger):
    conftest's small_export. The tests copy the folder (times kept: the copy is still ours)."""
    assert small_export.name == "model.onnx" and small_export.parent.name.startswith("small-export")
    return small_export.parent


def test_export_replaces_its_own_file_with_overwrite(capsys, tmp_path, small_checkpoint, exported):
    out = tmp_path / "model.onnx"
    shutil.copytree(exported, tmp_path, dirs_exist_ok=True)
    assert ours(out)
    code, _, err = run(capsys, "export", small_checkpoint, out, "--size", "64x64")
    assert code == 2 and "exists; pass --overwrite" in err
    assert input_hw(out) == (64, 64) and ours(out)
    assert run(capsys, "export", small_checkpoint, out, "--size", "64x96", "--overwrite")[0] == 0
    assert input_hw(out) == (64, 96) and ours(out)  # the new export, still known as ours


def input_hw(onnx_file: Path) -> tuple[int, int]:
    import onnx

    dims = onnx.load(str(onnx_file), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return dims[2].dim_value, dims[3].dim_value


def ours(path: Path) -> bool:
    return OutputLedger().is_ours(path)


# ----------------------------------------------------------------------------- defects 3-4: train --out


TRAIN = ["--quiet", "--scenes", "2", "--val-count", "1", "--size", "64", "--steps", "1", "--device", "cpu"]


def test_train_never_replaces_its_init_weights(capsys, tmp_path, small_checkpoint):
    """Defect 3: `train --init X --out X` overwrote the input weights, no --overwrite needed."""
    weights = tmp_path / "X.pt"
    shutil.copy(small_checkpoint, weights)
    before = weights.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, _, err = run(capsys, "train", "--init", weights, "--out", weights, *TRAIN, *extra)
        assert code == 2 and "would overwrite the --init checkpoint" in one_error_line(err), err
    assert weights.read_bytes() == before
    assert not Path(str(weights) + ".state.pt").exists()


def test_train_never_replaces_a_file_it_did_not_write(capsys, tmp_path):
    """Defect 4: `train --out F` onto an existing file the tool did not write replaced it."""
    foreign = tmp_path / "F.safetensors"
    foreign.write_text("my notes")
    code, _, err = run(capsys, "train", "--config", "nano", "--out", foreign, *TRAIN)
    assert code == 2 and "exists; pass --overwrite to replace it" in one_error_line(err)
    code, _, err = run(capsys, "train", "--config", "nano", "--out", foreign, *TRAIN, "--overwrite")
    assert code == 2 and "was not written by muggled-swinv2" in one_error_line(err)
    assert foreign.read_text() == "my notes"
    state = tmp_path / "G.safetensors.state.pt"  # the training state beside OUT: the same rule
    state.write_text("not ours")
    code, _, err = run(capsys, "train", "--config", "nano", "--out", tmp_path / "G.safetensors", *TRAIN, "--overwrite")
    assert code == 2 and "G.safetensors.state.pt: exists and was not written" in one_error_line(err)
    assert state.read_text() == "not ours"


def test_train_replaces_its_own_outputs_only_with_overwrite(capsys, tmp_path):
    import torch

    from muggled_swinv2 import load_model

    out = tmp_path / "m.safetensors"
    state = Path(str(out) + ".state.pt")
    assert run(capsys, "train", "--config", "nano", "--out", out, *TRAIN)[0] == 0
    code, _, err = run(capsys, "train", "--config", "nano", "--out", out, *TRAIN)
    assert code == 2 and "exists; pass --overwrite" in one_error_line(err)
    out.write_bytes(out.read_bytes())  # the same bytes, rewritten by someone: no longer ours
    code, _, err = run(capsys, "train", "--config", "nano", "--out", out, *TRAIN, "--overwrite")
    assert code == 2 and "was not written by muggled-swinv2" in one_error_line(err)
    out.unlink()  # the state beside it is still ours: replaced with --overwrite
    assert run(capsys, "train", "--config", "nano", "--out", out, *TRAIN[:-4], "--steps", "3", "--device", "cpu",
               "--overwrite")[0] == 0
    assert torch.load(state, weights_only=False)["step"] == 3 and ours(out) and ours(state)  # the new run's files
    assert load_model(out).config.native_size == 64
    assert run(capsys, "train", "--config", "nano", "--out", out, *TRAIN[:-4], "--steps", "4", "--device", "cpu",
               "--resume")[0] == 0  # --resume goes on writing the run's own files
    assert torch.load(state, weights_only=False)["step"] == 4 and ours(out) and ours(state)


# ----------------------------------------------------------------------------- defect 5: eval --json, bench --json


EVAL = ["--count", "1", "--scene-size", "64", "--quiet"]


def test_eval_json_never_replaces_a_file_it_did_not_write(capsys, tmp_path, small_checkpoint):
    """Defect 5: `eval --json notes.json` replaced an existing file silently."""
    notes = tmp_path / "notes.json"
    notes.write_text("my notes")
    code, _, err = run(capsys, "eval", "-w", small_checkpoint, "--json", notes, *EVAL)
    assert code == 2 and "exists; pass --overwrite" in one_error_line(err)
    code, _, err = run(capsys, "eval", "-w", small_checkpoint, "--json", notes, *EVAL, "--overwrite")
    assert code == 2 and "was not written by muggled-swinv2" in one_error_line(err)
    assert notes.read_text() == "my notes"
    code, _, err = run(capsys, "eval", "-w", small_checkpoint, "--json", small_checkpoint, *EVAL, "--overwrite")
    assert code == 2 and "would overwrite the --weights checkpoint" in one_error_line(err)

    scores = tmp_path / "scores.json"
    assert run(capsys, "eval", "-w", small_checkpoint, "--json", scores, *EVAL)[0] == 0
    assert json.loads(scores.read_text())["settings"]["count"] == 1 and ours(scores)
    assert run(capsys, "eval", "-w", small_checkpoint, "--json", scores, "--count", "2", "--scene-size", "64", "--quiet",
               "--overwrite")[0] == 0
    assert json.loads(scores.read_text())["settings"]["count"] == 2 and ours(scores)  # replaced, and still ours
    edited = scores.read_text().replace('"count": 2', '"count": 7')
    scores.write_text(edited)  # changed by hand: no longer ours
    code, _, err = run(capsys, "eval", "-w", small_checkpoint, "--json", scores, *EVAL, "--overwrite")
    assert code == 2 and "was not written by muggled-swinv2" in one_error_line(err)
    assert scores.read_text() == edited


def test_bench_json_never_replaces_a_file_it_did_not_write(capsys, tmp_path):
    """Defect 5: `bench --json notes.json` replaced an existing file silently."""
    notes = tmp_path / "notes.json"
    notes.write_text("my notes")
    bench = ["bench", "--models", "tiny", "--sizes", "32", "--batch-sizes", "1", "--repeats", "1", "--no-peer",
             "--no-memory", "--json", notes]
    code, _, err = run(capsys, *bench)
    assert code == 2 and "exists; pass --overwrite" in one_error_line(err)
    code, _, err = run(capsys, *bench, "--overwrite")
    assert code == 2 and "was not written by muggled-swinv2" in one_error_line(err)
    assert notes.read_text() == "my notes"


# ----------------------------------------------------------------------------- the other writers


def test_video_and_webcam_refuse_an_input_reached_through_a_link(capsys, tmp_path, small_checkpoint):
    clip = write_video(tmp_path / "clip.mp4", frames=3, size_wh=(64, 64), fps=12.0)
    (tmp_path / "alias.mp4").symlink_to(clip)
    before = clip.read_bytes()
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "alias.mp4", "--overwrite")
    assert code == 2 and "would overwrite the input video" in one_error_line(err)
    webcam = subprocess.run([sys.executable, str(REPO / "scripts" / "webcam_demo.py"), "--headless", "--source", str(clip),
                             "--weights", str(small_checkpoint), "--save", str(tmp_path / "alias.mp4"), "--overwrite"],
                            capture_output=True, text=True, timeout=300)
    assert webcam.returncode == 2 and "would overwrite the source video" in webcam.stderr
    assert clip.read_bytes() == before


def test_convert_output_through_a_link_to_its_input_is_refused(capsys, tmp_path, small_checkpoint):
    (tmp_path / "alias.pt").symlink_to(small_checkpoint)
    before = small_checkpoint.read_bytes()
    code, _, err = run(capsys, "convert", small_checkpoint, tmp_path / "alias.pt", "--overwrite")
    assert code == 2 and "would overwrite the input" in one_error_line(err)
    assert small_checkpoint.read_bytes() == before


# ----------------------------------------------------------------------------- issue 26, N2: checked again at the rename


def appeared_line(out: Path, kept: Path, option: str = "") -> str:
    named = f"{option} {out}" if option else str(out)
    return (f"error: {named}: a file not written by muggled-swinv2 appeared there during the run; kept it, "
            f"and saved this run's output as {kept}")


def test_video_keeps_a_file_put_at_out_during_the_run(capsys, tmp_path, small_checkpoint, monkeypatch):
    """N2: `video` checked OUT only at the start: a file put there during the run was replaced."""
    from pictures import read_video

    from muggled_swinv2.io.av_video import AvVideoWriter
    from muggled_swinv2.io.video import AtomicVideoWriter

    clip = write_video(tmp_path / "clip.mp4", frames=3, size_wh=(64, 64), fps=12.0)
    out = tmp_path / "depth.mp4"

    def someone_writes_out(real_write):  # whichever writer the job uses: PyAV's, or OpenCV's without it
        def write(self, frame, *args):
            if not out.exists():
                out.write_bytes(b"someone else's file")
            real_write(self, frame, *args)
        return write

    for writer in (AvVideoWriter, AtomicVideoWriter):
        monkeypatch.setattr(writer, "write", someone_writes_out(writer.write))
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", out, "-q")
    assert code == 2 and one_error_line(err) == appeared_line(out, tmp_path / "depth_2.mp4"), err
    assert out.read_bytes() == b"someone else's file" and not ours(out)
    frames, _ = read_video(tmp_path / "depth_2.mp4")
    assert len(frames) == 3 and ours(tmp_path / "depth_2.mp4")
    assert sorted(path.name for path in tmp_path.iterdir() if ".partial" in path.name) == []


def test_train_keeps_a_file_put_at_out_during_the_run(capsys, tmp_path, monkeypatch):
    """N2: `train --out` checked OUT only at the start."""
    import muggled_swinv2.training.trainer as trainer
    from muggled_swinv2 import load_model

    out = tmp_path / "m.safetensors"
    real_evaluate = trainer.evaluate_samples

    def someone_writes_out(*args, **kwargs):  # while the run validates, before it saves
        out.write_bytes(b"someone else's file")
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate_samples", someone_writes_out)
    code, _, err = run(capsys, "train", "--config", "nano", "--out", out, *TRAIN)
    assert code == 2 and one_error_line(err) == appeared_line(out, tmp_path / "m_2.safetensors"), err
    assert out.read_bytes() == b"someone else's file"
    assert load_model(tmp_path / "m_2.safetensors").config.native_size == 64 and ours(tmp_path / "m_2.safetensors")


def test_export_keeps_a_file_put_at_out_during_the_run(capsys, tmp_path, small_checkpoint, monkeypatch, exported):
    """N2: `export` checked OUT only at the start (also when OUT was ours and --overwrite was given)."""
    import muggled_swinv2.export.onnx as exporter

    out = tmp_path / "model.onnx"
    shutil.copytree(exported, tmp_path, dirs_exist_ok=True)
    assert ours(out)
    real_export_into = exporter.export_into

    def someone_writes_out(*args, **kwargs):  # while the run traces
        out.write_bytes(b"someone else's file")
        return real_export_into(*args, **kwargs)

    monkeypatch.setattr(exporter, "export_into", someone_writes_out)
    code, _, err = run(capsys, "export", small_checkpoint, out, "--size", "64x96", "--overwrite")
    assert code == 2 and one_error_line(err) == appeared_line(out, tmp_path / "model_2.onnx", "OUT"), err
    assert out.read_bytes() == b"someone else's file"
    assert input_hw(tmp_path / "model_2.onnx") == (64, 96) and ours(tmp_path / "model_2.onnx")


def test_publish_never_replaces_a_file_that_appears_at_the_move(tmp_path, monkeypatch):
    """The move itself: a file that appears between the check and the rename is kept (link(2)
    fails where a name exists; rename(2) would replace it)."""
    import muggled_swinv2.io.outputs as outputs

    target = tmp_path / "out.json"
    real_publish = outputs.publish

    def racing_publish(temp, path, replace=True):
        if path == target and not target.exists():
            target.write_text("theirs")  # just after the check
        return real_publish(temp, path, replace)

    monkeypatch.setattr(outputs, "publish", racing_publish)
    with pytest.raises(outputs.OutputError, match="appeared there during the run"):
        OutputRule().write_output(target, lambda file: file.write(b"ours"), "--json")
    assert target.read_text() == "theirs" and (tmp_path / "out_2.json").read_text() == "ours"
    assert sorted(path.name for path in tmp_path.iterdir()) == [".muggled_swinv2-outputs.jsonl", "out.json", "out_2.json"]


# ----------------------------------------------------------------------------- issue 26, N6: every file of a HF folder


@pytest.mark.parametrize("edited", ["config.json", "preprocessor_config.json"])
def test_convert_hf_overwrite_keeps_an_edited_json_file(capsys, tmp_path, small_checkpoint, edited):
    """N6: `convert --to hf --overwrite` replaced config.json and preprocessor_config.json that the
    user had edited: only model.safetensors's mark was checked."""
    from muggled_swinv2.formats.convert import is_our_model_folder

    folder = tmp_path / "hf"
    assert run(capsys, "convert", small_checkpoint, folder, "--to", "hf")[0] == 0
    assert is_our_model_folder(folder)
    assert run(capsys, "convert", small_checkpoint, folder, "--to", "hf", "--overwrite")[0] == 0  # all as written: ours
    values = json.loads((folder / edited).read_text())
    values["my_setting"] = 1
    text = json.dumps(values, indent=2) + "\n"
    (folder / edited).write_text(text)
    code, _, err = run(capsys, "convert", small_checkpoint, folder, "--to", "hf", "--overwrite")
    assert code == 2 and f"{folder.resolve() / edited}: changed since muggled-swinv2 wrote it" in one_error_line(err), err
    assert (folder / edited).read_text() == text


# ----------------------------------------------------------------------------- issue 26 gap: empty arguments


@pytest.mark.parametrize("arguments", [["image", ""], ["image", "x.png", "--out", ""], ["image", "x.png", "--out="],
                                       ["image", "x.png", "-o", ""], ["eval", "--count", "1", "--json", ""]])
def test_an_empty_argument_is_refused_in_one_line(capsys, tmp_path, monkeypatch, arguments):
    """Gap: `image ""` processed the whole current folder, `--out ""` wrote into it, `--json ""` wrote nothing."""
    import cv2

    from pictures import photo

    monkeypatch.chdir(tmp_path)
    cv2.imwrite("x.png", photo(32, 32))
    code, out, err = run(capsys, *arguments)
    assert code == 2 and out == "" and "names no file, folder or value; give one" in one_error_line(err), err
    assert os.listdir(tmp_path) == ["x.png"]  # nothing written
