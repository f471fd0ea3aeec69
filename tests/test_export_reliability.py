"""`export` and `info` on ONNX files as careful as `image`: the opset written is the opset asked
(or refused in one line), broken .onnx files are one-line errors, the target folder and the
memory are checked before the export's work, and an .onnx given as --weights is named for what
it is."""

import os
import subprocess

import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
from test_export_onnx import run  # noqa: E402  (main(...) with its output; no traceback)


@pytest.fixture
def exported(small_export):
    """The small model exported at opset 19 (not the default, so that a default cannot pass for it):
    conftest's small_export, shared with other files (only read here)."""
    return small_export


def file_opset(path) -> int:
    model = onnx.load(str(path), load_external_data=False)
    return max(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def test_the_opset_asked_is_the_opset_written_and_reported(capsys, exported):
    assert file_opset(exported) == 19
    meta = {entry.key: entry.value for entry in onnx.load(str(exported), load_external_data=False).metadata_props}
    assert meta["opset"] == "19"
    code, out, _ = run(capsys, "info", exported)
    assert code == 0 and "(ONNX opset 19)" in out


def test_opset_17_is_refused_in_one_line_before_any_work(capsys, tmp_path, small_checkpoint):
    """torch.onnx writes opset 18 when asked for 17 (after a 20-line traceback), which the file's
    metadata and `info` then called 17."""
    out = tmp_path / "model.onnx"
    code, stdout, err = run(capsys, "export", small_checkpoint, out, "--opset", "17")
    assert code == 2 and err.count("\n") == 1 and "--opset 17: choose from 18 to 23" in err, err
    assert stdout == "" and list(tmp_path.iterdir()) == []


def test_an_opset_the_exporter_does_not_write_is_not_recorded(tmp_path, small_model, monkeypatch):
    """Whatever the exporter does, the file is never kept claiming an opset it does not hold."""
    from muggled_swinv2.export import onnx as exporter

    monkeypatch.setattr(exporter, "graph_opset", lambda proto: 18)  # as torch.onnx did when asked for 17
    with pytest.raises(exporter.ExportError, match="--opset 20: the exporter wrote opset 18 instead"):
        exporter.export_onnx(small_model, tmp_path / "m.onnx", opset=20)
    assert list(tmp_path.iterdir()) == []


def test_info_reports_the_graphs_opset_not_the_metadata_claim(capsys, tmp_path, exported):
    """A file from the earlier exporter: metadata saying 17 on an opset-18 graph."""
    model = onnx.load(str(exported))
    for entry in model.metadata_props:
        if entry.key == "opset":
            entry.value = "17"
    claimed = tmp_path / "claimed.onnx"
    onnx.save(model, str(claimed))
    code, out, _ = run(capsys, "info", claimed)
    assert code == 0 and "(ONNX opset 19)" in out and "17" not in out


@pytest.mark.parametrize("content", [
    b"",  # 0 bytes: protobuf decodes it as an empty model
    b"\x08\x07",  # a model's first field (ir_version 7) and nothing else
    b"plain text notes\n",
    "truncated",
], ids=["empty", "header-only", "text", "truncated"])
def test_info_on_broken_onnx_files_is_one_line(capsys, tmp_path, exported, content):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(exported.read_bytes()[:5000] if content == "truncated" else content)
    code, out, err = run(capsys, "info", broken)
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1 and str(broken) in err, err
    assert "not an ONNX model" in err or "not a readable ONNX file" in err


@pytest.fixture
def read_only_folder(tmp_path):
    """(folder, the OS's reason) for a folder this process cannot write in: mode 555, or for root,
    whom modes do not stop, a read-only tmpfs mounted there (root may mount)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        yield folder, "Permission denied"
        folder.chmod(0o755)
        return
    folder.chmod(0o755)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot make a read-only folder here (a user who can write anywhere, and cannot mount)")
    try:
        yield folder, "Read-only file system"
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_export_into_a_read_only_folder_fails_before_the_work(capsys, small_checkpoint, monkeypatch, read_only_folder):
    from muggled_swinv2.export import onnx as exporter

    folder, reason = read_only_folder
    traced = []
    monkeypatch.setattr(exporter, "export_into", lambda *args: traced.append(args) or 0.0)
    code, _, err = run(capsys, "export", small_checkpoint, folder / "m.onnx")
    assert code == 2 and err.count("\n") == 1 and f"m.onnx: cannot write ({reason})" in err, err
    assert traced == [] and list(folder.iterdir()) == []


def test_export_into_a_folder_it_cannot_write_in_fails_before_the_work(capsys, tmp_path, small_checkpoint,
                                                                       monkeypatch):
    """Also as root (whom permissions do not stop): the temp file that reserves the target is made first."""
    from muggled_swinv2.export import onnx as exporter

    traced = []
    monkeypatch.setattr(exporter, "export_into", lambda *args: traced.append(args) or 0.0)

    def refuse(path, suffix=".partial"):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(exporter, "reserve_temp", refuse)
    code, _, err = run(capsys, "export", small_checkpoint, tmp_path / "m.onnx")
    assert code == 2 and err.count("\n") == 1 and "m.onnx: cannot write (Permission denied)" in err, err
    assert traced == [] and list(tmp_path.iterdir()) == []


def test_export_size_gets_the_memory_check_of_image_size(capsys, tmp_path, small_checkpoint, monkeypatch):
    from muggled_swinv2 import memory
    from muggled_swinv2.export import onnx as exporter

    traced = []
    monkeypatch.setattr(exporter, "export_into", lambda *args: traced.append(args) or 0.0)
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 512 * 2**20)  # 512 MiB free
    code, _, err = run(capsys, "export", small_checkpoint, tmp_path / "m.onnx", "--size", "4096x4096")
    assert code == 2 and err.count("\n") == 1 and traced == [] and list(tmp_path.iterdir()) == []
    assert "--size 4096x4096:" in err and "GiB available" in err and "the largest --size that fits is" in err, err

    # --no-memory-check lets it try (the export's work, replaced here by nothing, is reached).
    code, _, err = run(capsys, "export", small_checkpoint, tmp_path / "m.onnx", "--size", "4096x4096",
                       "--no-memory-check")
    assert len(traced) == 1 and code == 0, err


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_an_onnx_file_as_weights_says_what_it_goes_with(capsys, tmp_path, exported, engine):
    """The engine exports the graphs it needs (one per network size, from the weights); a fixed-size
    .onnx cannot be that, so it is named for what it is, not called a corrupt checkpoint."""
    picture = tmp_path / "p.png"
    import cv2
    from pictures import photo

    cv2.imwrite(str(picture), photo(40, 60))
    code, _, err = run(capsys, "image", picture, "--weights", exported, "--engine", engine, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{exported}: an exported ONNX graph, not a checkpoint" in err and "corrupt" not in err
    assert f"muggled-swinv2 info {exported}" in err and "the checkpoint it came from" in err
    written = [path.name for path in (tmp_path / "out").rglob("*")] if (tmp_path / "out").exists() else []
    assert written == []  # no file of any kind (the command may make the --out folder before it loads the model)
