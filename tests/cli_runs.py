"""What the command-line test files share: running a command in-process, and reading what it wrote.
The pictures, clips and model they run on are fixtures in conftest.py."""

from pathlib import Path

import numpy as np

import cv2
from muggled_swinv2.cli import main
from muggled_swinv2.io.ledger import LEDGER_NAME

REPO = Path(__file__).resolve().parent.parent


def listing(folder) -> list[str]:
    """The files in a folder, less the ledger of the outputs we wrote there."""
    return sorted(path.name for path in Path(folder).iterdir() if path.name != LEDGER_NAME)


def min_max(depth: np.ndarray) -> np.ndarray:
    """Depth scaled to [0, 1] between its own min and max, in float64."""
    depth = depth.astype(np.float64)
    return (depth - depth.min()) / (depth.max() - depth.min())


def assert_inferno_of(picture: np.ndarray, unit: np.ndarray) -> None:
    """`picture` is OpenCV's inferno map of `unit` (1 = near = bright), to one of its 256 steps:
    each pixel's nearest entry of the map's table must be within one step of unit * 255."""
    table = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_INFERNO)[:, 0].astype(int)
    assert picture.shape == (*unit.shape, 3)
    distances = np.abs(picture.reshape(-1, 1, 3).astype(int) - table[None]).sum(axis=2)
    steps = distances.argmin(axis=1).reshape(unit.shape)
    assert np.abs(steps - unit * 255).max() <= 1


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err
