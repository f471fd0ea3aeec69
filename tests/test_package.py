"""The installed package: light imports and the `info` command."""

import subprocess
import sys


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "muggled_swinv2", *map(str, args)], capture_output=True, text=True)


def test_import_pulls_no_heavy_reference_libraries():
    code = "import sys, muggled_swinv2; print(sorted(m for m in ('timm', 'transformers', 'torchvision') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_info_describes_checkpoint(small_checkpoint):
    result = run_cli("info", small_checkpoint)
    assert result.returncode == 0, result.stderr
    assert "custom" in result.stdout and "16, 32, 64, 128" in result.stdout and "64x64" in result.stdout
    assert "midas-pt" in result.stdout


def test_info_on_missing_file_is_one_line(tmp_path):
    result = run_cli("info", tmp_path / "missing.pt")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr
    assert "Traceback" not in result.stderr
