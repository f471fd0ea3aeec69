"""The output ledger (io/ledger.py) under attack and under load (issue 26, N1 and N3-N5), and
which input each output was made from (the d1/a, d2/a gap)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from cli_runs import REPO, run
from pictures import photo

from muggled_swinv2.io.ledger import COMPACT_AFTER, LEDGER_NAME, MAX_LEDGER_BYTES, OutputLedger
from muggled_swinv2.io.outputs import OutputError, OutputRule, check_writable_folder


@pytest.fixture
def image(capsys, small_checkpoint):
    """`muggled-swinv2 image -w SMALL ARGS...` -> (exit code, stdout, stderr): the small checkpoint
    (native 64x64) is 4 times faster than the demo model."""
    return lambda *args: run(capsys, "image", "-w", small_checkpoint, *args)


def error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line.startswith("error:")]


def pictures(folder: Path, count: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        paths.append(folder / f"p{index:02d}.png")
        cv2.imwrite(str(paths[-1]), photo(40, 56, seed=seed + index))
    return paths


def ours(path: Path) -> bool:
    return OutputLedger().is_ours(path)


# ----------------------------------------------------------------------------- N1: links are never followed


@pytest.mark.parametrize("dangling", [False, True])
def test_a_ledger_that_is_a_link_is_refused_and_its_target_untouched(tmp_path, dangling, image):
    """N1: with the ledger a link to another file, `image --overwrite` appended JSON to that file;
    a dangling link created its target."""
    pictures(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("my notes\n")
    (out / LEDGER_NAME).symlink_to(victim)
    code, _, err = image(tmp_path / "in", "--out", out, "--overwrite", "-q")
    assert code == 2 and len(error_lines(err)) == 1, err
    assert f"{out / LEDGER_NAME}: the output ledger is a symbolic link; refusing to follow it" in err
    assert (victim.read_text() == "my notes\n") if not dangling else not victim.exists()
    assert not (out / "p00.png").exists()
    # and the rule never follows it either (a writer that skips the folder check)
    path = out / "x.json"
    with pytest.raises(OutputError, match="is a symbolic link"):
        OutputRule().write_output(path, lambda file: file.write(b"{}"))
    assert (victim.read_text() == "my notes\n") if not dangling else not victim.exists()


# ----------------------------------------------------------------------------- N3: a line cut short


def test_a_damaged_last_line_does_not_swallow_the_next_record(tmp_path):
    """N3: a truncated last line glued the next record to it: that file then counted as foreign."""
    first, second = tmp_path / "cat.png", tmp_path / "dog.png"
    first.write_bytes(b"cat")
    OutputLedger().record(first)
    with open(tmp_path / LEDGER_NAME, "ab") as ledger:
        ledger.write(b'{"name": "bird.png", "si')  # a run killed mid-append
    second.write_bytes(b"dog")
    OutputLedger().record(second)
    assert ours(first) and ours(second)
    lines = (tmp_path / LEDGER_NAME).read_bytes().splitlines()
    assert lines[1] == b'{"name": "bird.png", "si' and json.loads(lines[2])["name"] == "dog.png"


def test_a_damaged_line_does_not_stop_the_image_job(tmp_path, image):
    """N3, end to end: the next run wrote cat_2.png beside the tool's own cat.png."""
    pictures(tmp_path / "in", 1)
    out = tmp_path / "out"
    assert image(tmp_path / "in" / "p00.png", "--out", out, "-q")[0] == 0
    with open(out / LEDGER_NAME, "ab") as ledger:
        ledger.write(b'{"name": "x.png", "size": 1')
    pictures(tmp_path / "more", 1, seed=5)
    (tmp_path / "more" / "p00.png").rename(tmp_path / "more" / "q.png")
    assert image(tmp_path / "more" / "q.png", "--out", out, "-q")[0] == 0
    code, _, err = image(tmp_path / "more" / "q.png", "--out", out, "--overwrite", "-q")
    assert code == 0 and err == "", err
    assert sorted(path.name for path in out.iterdir()) == [LEDGER_NAME, "p00.png", "q.png"]
    assert ours(out / "q.png") and ours(out / "p00.png")


# ----------------------------------------------------------------------------- N4: two runs at once


def test_two_overwrite_runs_into_one_folder_at_once(tmp_path, image, small_checkpoint):
    """N4: two `image --overwrite` runs into one folder at once: the second refused the files the
    first had just written (exit 1). Two real processes, over the same 12 pictures, into a folder
    of outputs of an earlier run (made in this process: a third interpreter would prove nothing more)."""
    source = tmp_path / "in"
    pictures(source, 12)
    out = tmp_path / "out"
    arguments = [str(source), "--out", str(out), "--overwrite", "-q"]
    command = [sys.executable, "-m", "muggled_swinv2", "image", *arguments, "-w", str(small_checkpoint)]
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    code, _, err = image(*arguments)
    assert code == 0, err
    for attempt in range(2):  # twice: the runs must meet on the same files at least once
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
                for _ in range(2)]
        results = [(process.wait(timeout=600), process.stderr.read()) for process in runs]
        for process in runs:
            process.stdout.close()
            process.stderr.close()
        assert [code for code, _ in results] == [0, 0], results
        assert all("not written by muggled-swinv2" not in err for _, err in results), results
    names = sorted(path.name for path in out.iterdir())
    assert names == sorted([LEDGER_NAME] + [f"p{index:02d}.png" for index in range(12)])
    for index in range(12):
        written = out / f"p{index:02d}.png"
        assert ours(written) and cv2.imread(str(written)).shape[:2] == (40, 56)


# ----------------------------------------------------------------------------- N5: a ledger that cannot be used


def test_a_fifo_ledger_is_reported_not_waited_on(tmp_path, small_checkpoint):
    """N5: a FIFO named like the ledger hung `image` for ever."""
    pictures(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / LEDGER_NAME)
    started = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-m", "muggled_swinv2", "image", str(tmp_path / "in"), "--out", str(out),
                                 "--overwrite", "-q", "-w", str(small_checkpoint)], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    except subprocess.TimeoutExpired:
        pytest.fail(f"image hung on a FIFO ledger ({time.perf_counter() - started:.0f} s)")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "the output ledger is not a regular file" in result.stderr, result.stderr


def test_a_ledger_that_is_a_folder_is_reported(tmp_path, image):
    """N5: a ledger that is a folder was ignored silently: every later run wrote _2, _3 copies."""
    pictures(tmp_path / "in", 1)
    out = tmp_path / "out"
    (out / LEDGER_NAME).mkdir(parents=True)
    code, _, err = image(tmp_path / "in", "--out", out, "-q")
    assert code == 2 and len(error_lines(err)) == 1 and "the output ledger is not a regular file" in err, err
    assert sorted(path.name for path in out.iterdir()) == [LEDGER_NAME]


def test_a_read_only_ledger_is_reported(tmp_path, image):
    """A ledger that cannot be written, in a folder that can: mode 444 for a user, and for root (whom
    modes do not stop) the ledger file bind-mounted read-only onto itself."""
    pictures(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    ledger = out / LEDGER_NAME
    ledger.write_text("")
    ledger.chmod(0o444)
    mounted = os.geteuid() == 0
    if mounted:
        made = (subprocess.run(["mount", "--bind", str(ledger), str(ledger)], capture_output=True).returncode == 0 and
                subprocess.run(["mount", "-o", "remount,bind,ro", str(ledger)], capture_output=True).returncode == 0)
        if not made:
            subprocess.run(["umount", str(ledger)], capture_output=True)
            pytest.skip("cannot mount a read-only ledger here (a user who can write anywhere)")
    try:
        code, _, err = image(tmp_path / "in", "--out", out, "-q")
    finally:
        if mounted:
            subprocess.run(["umount", str(ledger)], check=True)
    reason = "Read-only file system" if mounted else "Permission denied"
    assert code == 2 and len(error_lines(err)) == 1 and f"the output ledger cannot be used ({reason})" in err


def test_a_huge_ledger_is_refused_in_one_line(tmp_path, image):
    """N5: a 3 GB ledger gave a MemoryError traceback; none above MAX_LEDGER_BYTES is read."""
    out = tmp_path / "out"
    out.mkdir()
    with open(out / LEDGER_NAME, "wb") as ledger:
        ledger.truncate(MAX_LEDGER_BYTES + 1)  # sparse: no disk used
    with pytest.raises(OutputError, match=f"the output ledger is 256 MiB, more than this tool ever writes"):
        check_writable_folder(out, "--out")
    (out / "notes.json").write_text("mine")
    refusal = OutputRule(overwrite=True).refusal(out / "notes.json", "--json")
    assert "more than this tool ever writes" in refusal and "\n" not in refusal
    pictures(tmp_path / "in", 1)
    code, _, err = image(tmp_path / "in", "--out", out, "-q")
    assert code == 2 and len(error_lines(err)) == 1 and "more than this tool ever writes" in err


def test_a_long_ledger_is_compacted(tmp_path):
    """N5: a ledger was never compacted (1M lines: +7.7 s and +400 MB on every command). Past
    COMPACT_AFTER stale lines it is rewritten with the latest record of each file still ours."""
    kept, changed = tmp_path / "kept.png", tmp_path / "changed.png"
    for path in (kept, changed):
        path.write_bytes(b"first")
        OutputLedger().record(path)
    stale = (json.dumps({"name": "gone.png", "size": 1, "mtime_ns": 1}) + "\n") * (COMPACT_AFTER + 10)
    with open(tmp_path / LEDGER_NAME, "a") as ledger:
        ledger.write(stale)
    changed.write_bytes(b"changed by hand")  # no longer ours: its record is dropped
    new = tmp_path / "new.png"
    new.write_bytes(b"new")
    OutputLedger().record(new)
    records = [json.loads(line) for line in (tmp_path / LEDGER_NAME).read_text().splitlines()]
    assert sorted(record["name"] for record in records) == ["kept.png", "new.png"]
    assert ours(kept) and ours(new) and not ours(changed)


def test_a_ledger_compacted_by_another_process_is_followed(tmp_path):
    """A process that read the ledger before another compacted it reads the new one."""
    ledger = OutputLedger()
    first = tmp_path / "a.png"
    first.write_bytes(b"a")
    ledger.record(first)
    assert ledger.is_ours(first)
    with open(tmp_path / LEDGER_NAME, "a") as file:
        file.write((json.dumps({"name": "gone.png", "size": 1, "mtime_ns": 1}) + "\n") * (COMPACT_AFTER + 10))
    second = tmp_path / "b.png"
    second.write_bytes(b"b")
    OutputLedger().record(second)  # compacts: a new file
    assert len((tmp_path / LEDGER_NAME).read_text().splitlines()) == 2
    third = tmp_path / "c.png"
    third.write_bytes(b"c")
    OutputLedger().record(third)
    assert ledger.is_ours(first) and ledger.is_ours(second) and ledger.is_ours(third)


# ----------------------------------------------------------------------------- the gap: the same name from another input


def test_the_same_name_from_another_folder_is_not_skipped(tmp_path, image):
    """Gap: `image d1/a --out o` then `image d2/a --out o` skipped the different d2/a because an
    output of that name existed. The ledger records each output's input."""
    for folder, seed in (("d1", 1), ("d2", 2)):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "a.png"), photo(40, 56, seed=seed))
    out = tmp_path / "o"
    assert image(tmp_path / "d1" / "a.png", "--out", out, "-q")[0] == 0
    first = (out / "a.png").read_bytes()
    code, _, err = image(tmp_path / "d2" / "a.png", "--out", out, "-q")
    assert code == 0 and f"{out / 'a.png'} is the output of another image ({tmp_path / 'd1' / 'a.png'}); " \
                         f"writing {out / 'a_2.png'} instead" in err, err
    assert (out / "a.png").read_bytes() == first and (out / "a_2.png").read_bytes() != first
    assert OutputLedger().record_of(out / "a_2.png").source == str(tmp_path / "d2" / "a.png")
    # a second run of the same input still skips (the job goes on where it stopped)
    code, _, err = image(tmp_path / "d1" / "a.png", "--out", out)
    assert code == 0 and "skipped 1" in err and "a_2" not in err
