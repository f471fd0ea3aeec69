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


def test_help_imports_no_torch_and_version():
    code = ("import sys; from muggled_swinv2.cli import build_parser\n"
            "try:\n    build_parser().parse_args(['image', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'muggled_swinv2.model' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False False"
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == "muggled-swinv2 0.1.0"


def test_cli_choices_match_the_modules_that_implement_them():
    from muggled_swinv2 import cli
    from muggled_swinv2.devices import DTYPES
    from muggled_swinv2.formats.convert import TARGETS
    from muggled_swinv2.jobs.images import RAW_FORMATS
    from muggled_swinv2.jobs.models import ENGINES

    assert cli.RAW_FORMATS == RAW_FORMATS and cli.CONVERT_TARGETS == TARGETS
    assert set(cli.DTYPE_NAMES) == set(DTYPES)
    assert cli.ENGINES == ENGINES


INTERRUPT_IMPORT = """
import runpy, sys

class CtrlCOnImport:  # Ctrl-C arriving while `module` is being imported
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlCOnImport())
sys.argv = ["muggled-swinv2", *{args!r}]
runpy.run_module("muggled_swinv2", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_while_importing_is_one_line(small_checkpoint):
    for module, args in [("torch", ["info", str(small_checkpoint)]),
                         ("muggled_swinv2.io.colormaps", ["info", str(small_checkpoint)]),
                         ("torch", ["bench", "--help"])]:
        result = subprocess.run([sys.executable, "-c", INTERRUPT_IMPORT.format(module=module, args=args)],
                                capture_output=True, text=True)
        assert result.returncode == 130, (module, result.stderr)
        assert result.stderr == "interrupted\n", (module, result.stderr)


def test_info_shows_stored_precision_and_file_size(tmp_path, small_checkpoint):
    half = tmp_path / "half.safetensors"
    assert run_cli("convert", small_checkpoint, half, "--dtype", "float16").returncode == 0
    result = run_cli("info", half)
    assert result.returncode == 0, result.stderr
    assert "stored precision: float16 (" in result.stdout and "float32 (" in result.stdout
    assert f"file size: {half.stat().st_size / 2**20:.1f} MiB" in result.stdout
    assert "stored precision: float32\n" in run_cli("info", small_checkpoint).stdout
