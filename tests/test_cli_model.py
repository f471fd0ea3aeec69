"""Which model the commands use (weights discovery, devices, precision), `info`, and the console script."""

import subprocess
import sys
from pathlib import Path

import numpy as np

import cv2
from cli_runs import run


def test_weights_found_in_weights_folder(tmp_path, capsys, monkeypatch, small_checkpoint, pictures):
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("MUGGLED_SWINV2_WEIGHTS", str(folder))
    code, _, err = run(capsys, "image", pictures / "street.jpg", "--out", tmp_path / "out0")
    assert code == 0 and "embedded demo model" in err and "muggled-swinv2 download tiny" in err  # none there
    (folder / "one.pt").symlink_to(small_checkpoint)
    code, _, err = run(capsys, "image", pictures / "street.jpg", "--out", tmp_path / "out")
    assert code == 0 and "demo model" not in err, err
    (folder / "two.pt").symlink_to(small_checkpoint)
    code, _, err = run(capsys, "image", pictures / "street.jpg", "--out", tmp_path / "out2")
    assert code == 2 and "several checkpoints" in err and "one.pt, two.pt" in err


def test_weights_variable_naming_a_file(tmp_path, capsys, monkeypatch, small_checkpoint):
    monkeypatch.setenv("MUGGLED_SWINV2_WEIGHTS", str(small_checkpoint))
    code, _, err = run(capsys, "info")
    assert code == 2 and "MUGGLED_SWINV2_WEIGHTS" in err and "is a file" in err and "no checkpoint in" not in err


def test_bad_checkpoint_is_one_line(tmp_path, capsys, pictures):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, "image", pictures, "-w", bad, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "bad.pt" in err


def test_unavailable_device_and_dtype(tmp_path, capsys, small_checkpoint, pictures):
    if not __import__("torch").cuda.is_available():
        code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--device", "cuda")
        assert code == 2 and "no CUDA GPU" in err
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--device", "cpu", "--dtype", "float16")
    assert code == 2 and "float16 needs a CUDA GPU" in err


def test_bfloat16_on_cpu(tmp_path, capsys, small_checkpoint, model, pictures):
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out,
                       "--dtype", "bfloat16", "--raw", "npy")
    assert code == 0, err
    depth = np.load(out / "street.npy")
    expected = model.predict(cv2.imread(str(pictures / "street.jpg")))
    assert np.isfinite(depth).all() and np.abs(depth - expected).max() < 0.1 * np.ptp(expected)


def test_bfloat16_recommended_only_where_the_cpu_has_it(tmp_path, capsys, monkeypatch, small_checkpoint, pictures):
    import muggled_swinv2.devices as devices

    for native in (False, True):
        monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: native)
        code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--device", "cpu", "--dtype", "float16")
        assert code == 2 and ("or bfloat16" in err) == native
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: False)
    code, _, err = run(capsys, "image", pictures / "gray.png", "-w", small_checkpoint, "--out", tmp_path / "o",
                       "--dtype", "bfloat16", "-q")
    assert code == 0 and err.startswith("warning: this CPU") and "no bfloat16 instructions" in err


def test_info(capsys, small_checkpoint):
    code, out, _ = run(capsys, "info", small_checkpoint)
    assert code == 0 and "native size: 64x64" in out and "parameters" in out


def test_console_script_installed(tmp_path, small_checkpoint):
    script = Path(sys.executable).parent / "muggled-swinv2"
    result = subprocess.run([str(script), "info", str(small_checkpoint)], capture_output=True, text=True)
    assert result.returncode == 0 and "custom" in result.stdout
