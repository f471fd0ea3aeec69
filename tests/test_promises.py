"""What README.md promises and no other test checked: formats recognised from the content, EXIF
rotation, `demo.sh` with no weights, and a test command that does not pass on skipped tests."""

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cv2
from muggled_swinv2 import load_model
from muggled_swinv2.cli import main
from muggled_swinv2.formats.convert import convert
from pictures import photo

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- formats


def test_formats_are_recognised_from_the_content_not_the_name(tmp_path, small_checkpoint, small_model):
    ours = tmp_path / "ours.safetensors"
    convert(small_checkpoint, ours)
    safetensors_named_pt = tmp_path / "model.pt"
    shutil.copy(ours, safetensors_named_pt)
    midas_named_safetensors = tmp_path / "midas.safetensors"
    shutil.copy(small_checkpoint, midas_named_safetensors)
    image = photo(40, 56, seed=9)
    expected = small_model.predict(image)
    for path, format_name in ((safetensors_named_pt, "muggled-safetensors"), (midas_named_safetensors, "midas-pt")):
        model = load_model(path)
        assert model.checkpoint_format == format_name, path.name
        assert np.array_equal(model.predict(image), expected), path.name


# ----------------------------------------------------------------------------- EXIF


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 Exif segment holding only the Orientation tag (0x0112), big-endian TIFF."""
    entry = struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)  # tag, SHORT, count 1, value (padded)
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_image_applies_exif_rotation(tmp_path, capsys, small_checkpoint, small_model):
    stored = photo(48, 80, seed=4)  # as stored in the file: 48 rows, 80 columns
    ok, encoded = cv2.imencode(".jpg", stored, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path = tmp_path / "portrait.jpg"
    path.write_bytes(with_exif_orientation(encoded.tobytes(), 6))  # 6: shown turned 90 degrees clockwise
    pixels = cv2.imdecode(np.frombuffer(encoded.tobytes(), np.uint8), cv2.IMREAD_COLOR)  # the decoded, unturned pixels
    shown = cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)  # as a viewer shows it: 80 rows, 48 columns
    code = main(["image", str(path), "-w", str(small_checkpoint), "--out", str(tmp_path / "out"), "--raw", "npy", "-q"])
    assert code == 0, capsys.readouterr().err
    depth = np.load(tmp_path / "out" / "portrait.npy")
    assert depth.shape == (80, 48)
    assert np.array_equal(depth, small_model.predict(shown))
    assert cv2.imread(str(tmp_path / "out" / "portrait.png")).shape == (80, 48, 3)


# ----------------------------------------------------------------------------- demo.sh


def test_demo_script_without_weights_runs_the_demo_model_and_downloads_nothing(tmp_path):
    """README: `demo.sh` downloads no weights; with none found it runs the embedded demo model."""
    readme = (REPO / "README.md").read_text()
    assert "`demo.sh` downloads no weights" in readme
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", repo / "scripts")
    shutil.copytree(REPO / "muggled_swinv2" / "web" / "examples", repo / "muggled_swinv2" / "web" / "examples")
    venv = tmp_path / "venv"  # already set up: just our console script
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").touch()
    (venv / "bin" / "muggled-swinv2").symlink_to(Path(sys.executable).parent / "muggled-swinv2")
    environment = {key: value for key, value in os.environ.items() if key != "MUGGLED_SWINV2_WEIGHTS"}
    environment.update(
        MUGGLED_VENV=str(venv), HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"),
        # any attempt to reach the network fails at once
        http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
    )
    result = subprocess.run(["bash", str(repo / "scripts" / "demo.sh")], env=environment, cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "embedded demo model" in result.stderr
    assert "demo_micro_256.safetensors" in result.stdout  # what `info` described
    assert not (repo / "weights").exists() and not (tmp_path / "cache").exists()
    stems = sorted(path.stem for path in (REPO / "muggled_swinv2" / "web" / "examples").iterdir() if path.suffix in (".jpg", ".png"))
    written = sorted(path.name for path in (repo / "outputs" / "examples").iterdir() if not path.name.startswith("."))
    assert written == sorted(f"{stem}{suffix}" for stem in stems for suffix in (".npy", ".png"))


# ----------------------------------------------------------------------------- the test command


def run_pytest(folder: Path, allow: bool) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    environment.pop("MUGGLED_SWINV2_ALLOW_MISSING", None)
    if allow:
        environment["MUGGLED_SWINV2_ALLOW_MISSING"] = "1"
    command = [sys.executable, "-m", "pytest", "-p", "strict_skips", "-p", "no:cacheprovider", "-q",
               "--rootdir", str(folder), "-c", str(folder / "pytest.ini"), str(folder)]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("skip", [
    'pytest.importorskip("no_such_package_for_this_test")',  # a missing extra
    'pytest.skip("Debian\'s chromium and chromium-driver are not installed (.ci/run installs them)")',
])
def test_a_run_with_tests_skipped_for_something_missing_fails(tmp_path, skip):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_sample.py").write_text(f"import pytest\n\n\ndef test_one():\n    {skip}\n\n\ndef test_two():\n    pass\n")
    failed = run_pytest(tmp_path, allow=False)
    assert failed.returncode == 1, failed.stdout
    assert "skipped for something missing" in failed.stdout and "the run FAILS" in failed.stdout
    assert ("no_such_package_for_this_test" in failed.stdout) or ("chromium" in failed.stdout)
    allowed = run_pytest(tmp_path, allow=True)
    assert allowed.returncode == 0, allowed.stdout
    assert "allowed by MUGGLED_SWINV2_ALLOW_MISSING=1" in allowed.stdout


def test_a_module_skipped_at_collection_for_a_missing_package_fails_the_run(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_sample.py").write_text('import pytest\n\npytest.importorskip("no_such_package_either")\n\n\n'
                                             'def test_one():\n    pass\n')
    (tmp_path / "test_other.py").write_text("def test_two():\n    pass\n")
    failed = run_pytest(tmp_path, allow=False)
    assert failed.returncode == 1 and "no_such_package_either" in failed.stdout, failed.stdout


def test_other_skips_do_not_fail_the_run(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_sample.py").write_text('import pytest\n\n\ndef test_one():\n    pytest.skip("this machine has a GPU")\n')
    passed = run_pytest(tmp_path, allow=False)
    assert passed.returncode == 0 and "skipped for something missing" not in passed.stdout, passed.stdout
