"""`--engine onnx`: the image and video jobs with ONNX Runtime as the engine write what the torch
engine writes (to 1e-4 of the output range), export once per network size into the cache folder,
and refuse what they cannot do in one line.

An export of the small model takes most of a test's time, so the module's first `--engine onnx`
run (`first_onnx_run`: both network sizes, 32x64 and 64x64, exported into a fresh cache) is done
once; test_image_job_writes_what_the_torch_engine_writes checks what it printed and wrote, and the
tests that need an export only to run on (not to watch it being made) start from a copy of that
cache (`warm_cache`)."""

import contextlib
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import cv2
from muggled_swinv2.cli import main
from pictures import photo, write_video
from missing import without_packages

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

TOLERANCE = 1e-4  # of the output range


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MUGGLED_SWINV2_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Two pictures whose network sizes differ at --size 64: 32x64 and 64x64 (only read)."""
    folder = tmp_path_factory.mktemp("pictures")
    cv2.imwrite(str(folder / "wide.png"), photo(60, 90, seed=1))
    cv2.imwrite(str(folder / "square.png"), photo(45, 45, seed=2))
    return folder


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@dataclass
class OnnxRun:
    """The image job run once with --engine onnx into an empty cache folder."""

    code: int
    err: str
    out: Path  # the job's outputs
    cache: Path  # the cache folder it filled


COMMON = ["--size", 64, "--raw", "npy", "--batch-size", 2]  # the image options of first_onnx_run


@pytest.fixture(scope="module")
def first_onnx_run(tmp_path_factory, small_checkpoint, pictures):
    folder = tmp_path_factory.mktemp("first-onnx-run")
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(err):
        patch.setenv("MUGGLED_SWINV2_CACHE", str(folder / "cache"))
        code = main([str(arg) for arg in ["image", pictures, "-w", small_checkpoint, *COMMON, "--out", folder / "onnx",
                                          "--engine", "onnx"]])
    return OnnxRun(code, err.getvalue(), folder / "onnx", folder / "cache")


@pytest.fixture
def warm_cache(cache, first_onnx_run):
    """`cache`, holding first_onnx_run's exports of the small checkpoint at 32x64 and 64x64."""
    assert first_onnx_run.code == 0, first_onnx_run.err
    shutil.copytree(first_onnx_run.cache, cache)
    return cache


def relative(result: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(result - expected).max() / np.ptp(expected))


def test_quiet_export_prints_nothing(tmp_path, small_checkpoint, cache, pictures):
    """-q: not the export line, nor the exporter's own log lines and warnings (a fresh process, so
    that they are printed as a user would see them)."""
    command = [sys.executable, "-m", "muggled_swinv2", "image", str(pictures / "square.png"), "-w",
               str(small_checkpoint), "--size", "64", "-q", "--out", str(tmp_path / "out"), "--engine", "onnx"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "" and done.stdout == ""
    assert len(list((cache / "onnx").iterdir())) == 1


def test_image_job_writes_what_the_torch_engine_writes(tmp_path, capsys, small_checkpoint, cache, pictures,
                                                       first_onnx_run):
    common = [pictures, "-w", small_checkpoint, *COMMON]
    code, _, err = run(capsys, "image", *common, "--out", tmp_path / "torch")
    assert code == 0, err
    # The onnx run (first_onnx_run) exported each network size once, into its empty cache folder.
    code, err = first_onnx_run.code, first_onnx_run.err
    assert code == 0 and "Traceback" not in err, err
    assert err.count("exporting the network at") == 2 and "32x64" in err and "64x64" in err
    assert "processed 2, failed 0" in err
    for stem in ("wide", "square"):
        expected, result = np.load(tmp_path / "torch" / f"{stem}.npy"), np.load(first_onnx_run.out / f"{stem}.npy")
        assert result.shape == expected.shape and relative(result, expected) <= TOLERANCE
    exports = sorted(path.name for path in (first_onnx_run.cache / "onnx").iterdir())
    assert len(exports) == 2 and all(name.endswith(("-32x64.onnx", "-64x64.onnx")) for name in exports)

    # The second run takes the cached exports (a copy of that cache): no export, the same outputs.
    shutil.copytree(first_onnx_run.cache, cache)
    code, _, err = run(capsys, "image", *common, "--out", tmp_path / "again", "--engine", "onnx")
    assert code == 0 and "exporting" not in err, err
    for stem in ("wide", "square"):
        assert np.array_equal(np.load(tmp_path / "again" / f"{stem}.npy"), np.load(first_onnx_run.out / f"{stem}.npy"))


def test_video_job_writes_what_the_torch_engine_writes(tmp_path, capsys, small_checkpoint, warm_cache):
    """The frames' network size, 32x64, is exported in warm_cache: the frames run on that graph."""
    clip = write_video(tmp_path / "clip.mp4", frames=5, size_wh=(96, 64), fps=12.0)
    common = [clip, "-w", small_checkpoint, "--raw", "npz", "--no-stabilize", "--batch-size", 3]  # batches of 3 and 2
    code, _, err = run(capsys, "video", *common, "--out", tmp_path / "torch.mp4")
    assert code == 0, err
    code, _, err = run(capsys, "video", *common, "--out", tmp_path / "onnx.mp4", "--engine", "onnx")
    assert code == 0 and "wrote 5 frames" in err, err
    expected, result = np.load(tmp_path / "torch.npz"), np.load(tmp_path / "onnx.npz")
    assert sorted(result.files) == sorted(expected.files) and len(result.files) == 5
    for name in expected.files:
        assert relative(result[name], expected[name]) <= TOLERANCE


def test_a_damaged_cached_export_is_made_again(tmp_path, capsys, small_checkpoint, warm_cache, pictures):
    cache = warm_cache
    common = [pictures / "square.png", "-w", small_checkpoint, "--size", 64, "--raw", "npy", "--engine", "onnx"]
    code, _, err = run(capsys, "image", *common, "--out", tmp_path / "first")
    assert code == 0 and "exporting" not in err, err  # the cached export
    (export,) = (cache / "onnx").glob("*-64x64.onnx")
    export.write_bytes(b"not an onnx file")
    code, _, err = run(capsys, "image", *common, "--out", tmp_path / "second")
    assert code == 0 and "exporting the network at 64x64" in err, err
    assert np.array_equal(np.load(tmp_path / "second" / "square.npy"), np.load(tmp_path / "first" / "square.npy"))


@pytest.mark.parametrize("options, message", [
    (["--device", "cuda"], "--engine onnx runs on the CPU"),
    (["--dtype", "bfloat16"], "--engine onnx runs in float32"),
    (["--ray"], "--engine onnx does not run on Ray"),
])
def test_what_the_onnx_engine_cannot_do_is_one_line(tmp_path, capsys, small_checkpoint, cache, pictures, options, message):
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--out", tmp_path / "out", "--engine", "onnx",
                       *options)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not cache.exists()


def test_missing_onnx_runtime_names_the_extra(tmp_path, capsys, monkeypatch, small_checkpoint, cache, pictures):
    without_packages(monkeypatch, "onnx", "onnxruntime", "onnxscript")
    clip = write_video(tmp_path / "clip.mp4", frames=2)
    for args in (["image", pictures, "--out", tmp_path / "out"], ["video", clip, "--out", tmp_path / "depth.mp4"]):
        code, _, err = run(capsys, *args, "-w", small_checkpoint, "--engine", "onnx")
        assert code == 2 and err.count("\n") == 1 and "pip install 'muggled_swinv2[onnx]'" in err
    assert not (tmp_path / "depth.mp4").exists()


def test_cache_folder_that_cannot_be_written(tmp_path, capsys, monkeypatch, small_checkpoint, pictures):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("MUGGLED_SWINV2_CACHE", str(blocker))
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--out", tmp_path / "out", "--engine", "onnx")
    assert code == 2 and err.count("\n") == 1 and "--engine onnx cache folder" in err


def test_failed_export_fails_its_images_alone(tmp_path, capsys, monkeypatch, small_checkpoint, warm_cache, pictures):
    """The wide picture runs on its cached export (32x64), the square one's export fails."""
    from muggled_swinv2.export import onnx_runtime

    next((warm_cache / "onnx").glob("*-64x64.onnx")).unlink()

    real_export = onnx_runtime.export_onnx

    def export_all_but_square(model, path, size_hw, **options):
        if size_hw == (64, 64):
            raise onnx_runtime.ExportError(f"{path}: the model could not be exported (out of memory)")
        return real_export(model, path, size_hw=size_hw, **options)

    monkeypatch.setattr(onnx_runtime, "export_onnx", export_all_but_square)
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--size", 64, "--out", tmp_path / "out",
                       "--engine", "onnx")
    assert code == 1 and "processed 1, failed 1" in err
    failure = next(line for line in err.splitlines() if "square.png" in line)
    assert "depth estimation failed (ONNX export at 64x64 failed:" in failure and "out of memory" in failure
    assert (tmp_path / "out" / "wide.png").exists() and not (tmp_path / "out" / "square.png").exists()


def test_cache_entries_follow_the_weights_not_the_file(tmp_path, capsys, small_checkpoint, warm_cache, pictures):
    """One graph per weights and network size: the same weights as .pt and as .safetensors share
    it, --square runs pictures of any shape on one graph, and another checkpoint of the same
    configuration and size gets its own (a shared one would silently give the first model's depth).
    The cache starts with the .pt's export at 64x64 alone (from first_onnx_run)."""
    import torch
    from midas_layout import SMALL_CONFIG, make_midas_state_dict

    cache = warm_cache
    next((cache / "onnx").glob("*-32x64.onnx")).unlink()

    as_safetensors = tmp_path / "same.safetensors"
    assert run(capsys, "convert", small_checkpoint, as_safetensors)[0] == 0
    other = tmp_path / "other.pt"
    torch.save(make_midas_state_dict(SMALL_CONFIG, seed=12), other)
    common = [pictures, "--square", "--raw", "npy"]

    code, _, err = run(capsys, "image", *common, "-w", small_checkpoint, "--out", tmp_path / "pt", "--engine", "onnx")
    assert code == 0 and "exporting" not in err, err  # two shapes of picture, one graph: the cached 64x64
    assert len(list((cache / "onnx").iterdir())) == 1
    code, _, err = run(capsys, "image", *common, "-w", as_safetensors, "--out", tmp_path / "st", "--engine", "onnx")
    assert code == 0 and "exporting" not in err, err
    assert len(list((cache / "onnx").iterdir())) == 1

    code, _, err = run(capsys, "image", *common, "-w", other, "--out", tmp_path / "other", "--engine", "onnx")
    assert code == 0 and "exporting the network at 64x64" in err, err
    assert len(list((cache / "onnx").iterdir())) == 2
    assert run(capsys, "image", *common, "-w", other, "--out", tmp_path / "other-torch")[0] == 0
    for stem in ("wide", "square"):
        first = np.load(tmp_path / "pt" / f"{stem}.npy")
        assert np.array_equal(np.load(tmp_path / "st" / f"{stem}.npy"), first)
        result, expected = np.load(tmp_path / "other" / f"{stem}.npy"), np.load(tmp_path / "other-torch" / f"{stem}.npy")
        assert relative(result, expected) <= TOLERANCE and relative(first, expected) > 100 * TOLERANCE
