"""scripts/demo.sh finds the checkpoints the command line reads."""

import os
import shutil
import subprocess
import sys
from pathlib import Path


from cli_runs import REPO, listing


def test_demo_uses_any_checkpoint_the_command_line_reads(tmp_path, small_checkpoint):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", repo / "scripts")
    shutil.copytree(REPO / "muggled_swinv2" / "web" / "examples", repo / "muggled_swinv2" / "web" / "examples")
    (repo / "weights").mkdir()
    shutil.copy(small_checkpoint, repo / "weights" / "mine.pth")  # a .pth: no download needed
    venv = tmp_path / "venv"  # already set up: just our console script
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").touch()
    (venv / "bin" / "muggled-swinv2").symlink_to(Path(sys.executable).parent / "muggled-swinv2")
    result = subprocess.run(["bash", str(repo / "scripts" / "demo.sh")], env={**os.environ, "MUGGLED_VENV": str(venv)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "download" not in result.stderr and "mine.pth" in result.stdout
    stems = sorted(path.stem for path in (REPO / "muggled_swinv2" / "web" / "examples").iterdir() if path.suffix in (".jpg", ".png"))
    assert listing(repo / "outputs" / "examples") == sorted(
        f"{stem}{suffix}" for stem in stems for suffix in (".npy", ".png"))
