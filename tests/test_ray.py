"""`image --ray`: the image job as a Ray Data pipeline, on one local Ray instance (2 CPUs) shared by
the module; the command line reuses the test process's connection."""

import builtins
import subprocess
import sys

import numpy as np
import pytest

import cv2
from muggled_swinv2.cli import main
from muggled_swinv2.io.images import read_pfm
from pictures import photo

OPTIONS = ("--raw", "npy,pfm,png16,tiff", "--side-by-side", "--batch-size", "3")


def run(capsys, *args):
    code = main(["image", *map(str, args)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A dozen pictures of several sizes (gray and 16-bit among them) and one corrupt file."""
    folder = tmp_path_factory.mktemp("pictures")
    for index in range(12):
        image = photo(40 + 4 * index, 64 + 2 * index, seed=index)
        if index == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if index == 5:
            image = image.astype(np.uint16) * 257
        cv2.imwrite(str(folder / f"p{index:02d}.png"), image)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    return folder


@pytest.fixture(scope="module")
def local_outputs(tmp_path_factory, folder, small_checkpoint):
    out = tmp_path_factory.mktemp("local")
    assert main(["image", str(folder), "-w", str(small_checkpoint), "--out", str(out), "-q", *OPTIONS]) == 1
    return out


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def read_output(path):
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".pfm":
        return read_pfm(path)
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.float64)


def assert_same_outputs(ours, local):
    names = sorted(path.name for path in local.iterdir() if not path.name.startswith("."))  # not the ledger
    assert sorted(path.name for path in ours.iterdir() if not path.name.startswith(".")) == names and len(names) == 12 * 5
    for name in names:
        expected, got = read_output(local / name), read_output(ours / name)
        assert got.shape == expected.shape, name
        if name.endswith((".npy", ".pfm", ".tiff")):
            limit = 1e-5 * (expected.max() - expected.min())
        elif name.endswith("_16bit.png"):
            limit = 1.0  # float rounding may move a value across a level
        else:  # ... and in the colour map, across a level of the map's index: one step of the map
            limit = INFERNO_STEP
        assert np.abs(got - expected).max() <= limit, name


# The largest difference of one channel between neighbouring entries of the inferno colour map (5).
INFERNO_STEP = np.abs(np.diff(cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_INFERNO)[0]
                              .astype(int), axis=0)).max()


def test_same_outputs_skip_and_restart(tmp_path, capsys, ray_instance, folder, local_outputs, small_checkpoint):
    out = tmp_path / "out"
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", out, "--ray", *OPTIONS)
    assert code == 1
    assert "corrupt.png: not an image OpenCV can decode" in err and "processed 12, failed 1" in err
    assert_same_outputs(out, local_outputs)

    # A second run sends no work: everything is skipped (the corrupt file fails again).
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", out, "--ray", "-q", *OPTIONS)
    assert code == 1 and err.count("\n") == 1 and "corrupt.png" in err

    # A run stopped part way: some outputs missing (a whole image, or one file of an image), and
    # the temp files a killed writer leaves. Running the same command again finishes the job.
    for name in ("p00.png", "p00.npy", "p00.pfm", "p00_16bit.png", "p00.tiff", "p07.npy", "p11.png"):
        (out / name).unlink()
    (out / ".p07.abc123.partial").write_bytes(b"\x93NUMPY half")
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", out, "--ray", *OPTIONS)
    assert code == 1 and "processed 3, skipped 9" in err and "failed 1" in err
    (out / ".p07.abc123.partial").unlink()
    assert_same_outputs(out, local_outputs)


def test_all_done_needs_no_cluster(tmp_path, capsys, local_outputs, folder, small_checkpoint):
    (folder.parent / "only").mkdir(exist_ok=True)
    only = folder.parent / "only" / "p01.png"
    only.write_bytes((folder / "p01.png").read_bytes())
    code, err = run(capsys, only, "-w", small_checkpoint, "--out", local_outputs, "--ray", "ray://127.0.0.1:1", *OPTIONS)
    assert code == 0 and "processed 0, skipped 1" in err


def test_unreachable_address_is_one_line(tmp_path, capsys, folder, small_checkpoint):
    pytest.importorskip("ray.data")
    for address in ("127.0.0.1:1", "ray://127.0.0.1:1"):
        code, err = run(capsys, folder, "-w", small_checkpoint, "--out", tmp_path / "out", "--ray", address)
        assert code == 2 and err.count("\n") == 1
        assert f"error: --ray {address}: cannot reach a Ray cluster there" in err


def test_ray_not_installed_is_one_line(tmp_path, capsys, monkeypatch, folder, small_checkpoint):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", tmp_path / "out", "--ray")
    assert code == 2 and err.count("\n") == 1 and "pip install 'muggled_swinv2[ray]'" in err


def test_ray_options_need_ray_and_addresses_are_not_inputs(tmp_path, capsys, folder, small_checkpoint):
    code, err = run(capsys, folder, "-w", small_checkpoint, "--out", tmp_path / "out", "--actors", "2")
    assert code == 2 and "--actors only apply with --ray" in err
    code, err = run(capsys, folder / "p00.png", "--ray", folder / "p01.png", "-w", small_checkpoint, "--out", tmp_path / "o")
    assert code == 2 and "not a cluster address" in err


def test_core_commands_never_import_ray(small_checkpoint):
    code = ("import sys, muggled_swinv2, muggled_swinv2.cli, muggled_swinv2.distributed; "
            "sys.exit('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
