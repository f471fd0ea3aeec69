"""An existing output made with other settings is not silently kept: the ledger records the settings
each image output was made with, and a run with others refuses that image in one line (pass
--overwrite to redo it) instead of counting it as skipped."""

import json

import cv2
import pytest
from cli_runs import listing, run
from pictures import photo

from muggled_swinv2.io.ledger import LEDGER_NAME


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), photo(40, 60))
    return path


def image(capsys, picture, checkpoint, out, *options):
    return run(capsys, "image", picture, "-w", checkpoint, "--out", out, *options)


def contents(folder) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in listing(folder)}


@pytest.mark.parametrize("first, second, named", [
    ((), ("--colormap", "gray"), "--colormap"),
    ((), ("--side-by-side",), "--side-by-side"),
    (("--raw", "metric", "--known", "10,10=2", "--known", "50,30=4"),
     ("--raw", "metric", "--known", "10,10=2", "--known", "50,30=5"), "--known"),
])
def test_other_settings_refuse_instead_of_skipping(capsys, tmp_path, small_checkpoint, picture, first, second, named):
    out = tmp_path / "out"
    assert image(capsys, picture, small_checkpoint, out, *first)[0] == 0
    made = contents(out)
    code, stdout, err = image(capsys, picture, small_checkpoint, out, *first)  # the same settings: skipped
    assert code == 0 and "skipped 1" in stdout + err and contents(out) == made
    code, stdout, err = image(capsys, picture, small_checkpoint, out, *second)
    assert code == 1 and "skipped" not in stdout + err
    assert (f"{picture}: {out / 'photo.png'} was made with other settings ({named}); pass --overwrite to redo it"
            in err.splitlines())
    assert contents(out) == made
    code, _, err = image(capsys, picture, small_checkpoint, out, *second, "--overwrite")
    assert code == 0 and contents(out).keys() == made.keys() and contents(out) != made
    assert image(capsys, picture, small_checkpoint, out, *second)[0] == 0  # now made with these: skipped again


def test_an_output_recorded_without_settings_is_skipped_as_before(capsys, tmp_path, small_checkpoint, picture):
    """A ledger of an earlier version holds no settings: its outputs count as made with any."""
    out = tmp_path / "out"
    assert image(capsys, picture, small_checkpoint, out)[0] == 0
    ledger = out / LEDGER_NAME
    records = [json.loads(line) for line in ledger.read_text().splitlines()]
    ledger.write_text("".join(json.dumps({k: v for k, v in record.items() if k != "settings"}) + "\n" for record in records))
    code, stdout, err = image(capsys, picture, small_checkpoint, out, "--colormap", "gray")
    assert code == 0 and "skipped 1" in stdout + err and listing(out) == ["photo.png"]
