"""`image --ray` with its output going to a file or a pipe (not a terminal), without --quiet: Ray
Data would log its execution plan and, every 10 s, its progress as blocks of INFO lines; the
command's stderr holds its own lines only (and what Ray reports as errors)."""

import subprocess
import sys

import cv2
import pytest

from pictures import photo


def test_ray_logs_no_info_lines_where_stderr_is_not_a_terminal(tmp_path, small_checkpoint):
    pytest.importorskip("ray.data")
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for index in range(3):
        cv2.imwrite(str(pictures / f"p{index}.png"), photo(40, 64, seed=index))
    command = [sys.executable, "-m", "muggled_swinv2", "image", str(pictures), "--out", str(tmp_path / "out"),
               "-w", str(small_checkpoint), "--ray"]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "processed 3, failed 0" in done.stderr
    chatter = [line for line in done.stderr.splitlines() if "\tINFO " in line or "\tWARNING " in line]
    assert chatter == [], chatter  # e.g. "INFO streaming_executor.py:215 -- Starting execution of Dataset ..."
    assert sorted(path.name for path in (tmp_path / "out").glob("*.png")) == ["p0.png", "p1.png", "p2.png"]
