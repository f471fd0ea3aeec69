"""ONNX export: the graph computes our function (checked here in ONNX Runtime, independently of the
exporter's own check), refuses what it cannot do in one line, and `info` reads its metadata."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from muggled_swinv2 import load_model
from muggled_swinv2.cli import main
from missing import without_packages

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument  # noqa: E402


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def ours(checkpoint, image: np.ndarray) -> np.ndarray:
    model = load_model(checkpoint)
    with torch.inference_mode():
        return model(torch.from_numpy(image)).numpy()


def onnx_runtime(path, image: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["inverse_depth"], {"image": image})[0]


def relative(a, b) -> float:
    return float(np.abs(a - b).max() / (b.max() - b.min()))


@pytest.fixture
def square_batch2(small_export):
    """Exported at the native square with a fixed batch of 2, through the command line (conftest's
    small_export, at opset 19, shared with other files: only read here)."""
    return small_export


@pytest.fixture(scope="module")
def non_square_dynamic(tmp_path_factory, small_checkpoint):
    """Exported at a non-square size (stage grids padded and masked, windows per axis), dynamic batch."""
    from muggled_swinv2.export.onnx import export_onnx

    path = tmp_path_factory.mktemp("onnx") / "small-64x160.onnx"
    report = export_onnx(load_model(small_checkpoint), path, size_hw=(64, 160), batch="dynamic")
    assert report.max_diff <= 1e-4 and report.batch == "dynamic"
    return path


def test_square_batch_2_matches_pytorch(square_batch2, small_checkpoint):
    image = np.random.default_rng(5).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    image[1] = -image[1]  # two different images: the batch must not mix them
    result = onnx_runtime(square_batch2, image)
    assert result.shape == (2, 64, 64)
    assert relative(result, ours(small_checkpoint, image)) <= 1e-4
    with pytest.raises(InvalidArgument, match=r"(?s)invalid dimensions for input: image.*index: 0 Got: 1 Expected: 2"):
        onnx_runtime(square_batch2, image[:1])  # a fixed batch is fixed


def test_non_square_dynamic_batch_matches_pytorch(non_square_dynamic, small_checkpoint):
    for batch in (1, 3):
        image = np.random.default_rng(batch).uniform(-1, 1, (batch, 3, 64, 160)).astype(np.float32)
        result = onnx_runtime(non_square_dynamic, image)
        assert result.shape == (batch, 64, 160)
        assert relative(result, ours(small_checkpoint, image)) <= 1e-4


def test_graph_is_plain_onnx_with_metadata(non_square_dynamic):
    import onnx

    model = onnx.load(str(non_square_dynamic))
    onnx.checker.check_model(model)
    ops = {node.op_type for node in model.graph.node}
    assert "Softmax" in ops and "Conv" in ops and not any(node.domain not in ("", "ai.onnx") for node in model.graph.node)
    assert [value.name for value in model.graph.input] == ["image"]
    assert [value.name for value in model.graph.output] == ["inverse_depth"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    meta = {entry.key: entry.value for entry in model.metadata_props}
    assert meta["format"] == "muggled_swinv2-onnx" and meta["format_version"] == "1"
    assert meta["input_size"] == "64x160" and meta["batch"] == "dynamic"
    assert "(x - 0.5) / 0.5" in meta["normalisation"]
    assert json.loads(meta["config"])["embed_dims"] == [16, 32, 64, 128]


def test_info_reads_an_onnx_file(capsys, square_batch2):
    code, out, err = run(capsys, "info", square_batch2)
    assert code == 0, err
    assert "muggled_swinv2-onnx v1" in out and "64x64" in out and "16, 32, 64, 128" in out
    assert "image (2, 3, 64, 64)" in out and "inverse_depth (2, 64, 64)" in out and "(x - 0.5) / 0.5" in out


def test_info_on_a_broken_onnx_file(capsys, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07not a model at all" * 3)
    code, out, err = run(capsys, "info", broken)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and str(broken) in err


@pytest.mark.parametrize("args, message", [
    (["--size", "100x64"], "--size 100x64: height and width must be positive multiples of 32"),
    (["--size", "64x70"], "--size 64x70: height and width must be positive multiples of 32"),
    (["--size", "big"], "--size 'big': expected H or HxW"),
    (["--batch", "0"], "--batch 0: expected a positive integer or 'dynamic'"),
    (["--opset", "9"], "--opset 9: choose from 18 to 23"),
])
def test_refusals_are_one_line_and_write_nothing(capsys, tmp_path, small_checkpoint, args, message):
    out = tmp_path / "model.onnx"
    code, _, err = run(capsys, "export", small_checkpoint, out, *args)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(capsys, tmp_path, small_checkpoint):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"keep me")
    code, _, err = run(capsys, "export", small_checkpoint, out)
    assert code == 2 and "exists; pass --overwrite" in err and out.read_bytes() == b"keep me"


def test_failed_check_leaves_no_file(tmp_path, small_checkpoint, monkeypatch):
    """A graph that ONNX Runtime computes differently is not kept."""
    from muggled_swinv2.export import onnx as exporter

    monkeypatch.setattr(exporter, "relative_difference", lambda result, expected: 0.5)
    with pytest.raises(exporter.ExportError, match="differs from PyTorch by 5.0e-01 of the output range"):
        exporter.export_onnx(load_model(small_checkpoint), tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_missing_extra_names_the_fix(capsys, tmp_path, small_checkpoint, monkeypatch):
    without_packages(monkeypatch, "onnx", "onnxruntime", "onnxscript")
    for args in (["export", small_checkpoint, tmp_path / "m.onnx"], ["info", tmp_path / "m.onnx"]):
        code, _, err = run(capsys, *args)
        assert code == 2 and err.count("\n") == 1
        assert "pip install 'muggled_swinv2[onnx]'" in err
    assert list(tmp_path.iterdir()) == []


def test_package_and_core_commands_import_no_onnx():
    code = ("import sys, muggled_swinv2, muggled_swinv2.cli, muggled_swinv2.export.geometry; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'onnxscript') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
