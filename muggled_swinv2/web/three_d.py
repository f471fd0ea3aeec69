"""HOOK for the 3D outputs of issue 9 (point cloud / mesh PLY from muggled_swinv2/export/geometry.py).

Until that module exists, `available()` is False and the page shows no 3D view and offers no PLY.
To wire it: make `write_ply` call the geometry module on (picture, depth) and return the PLY's
path; app.py then shows it in a gr.Model3D and adds it to the downloads. Nothing else changes.
"""

from pathlib import Path

import numpy as np


def available() -> bool:
    try:
        from ..export import geometry  # noqa: F401  (issue 9)
    except ImportError:
        return False
    return False  # flip to True once write_ply below is wired to the geometry module


def write_ply(image: np.ndarray, depth: np.ndarray, folder: Path, stem: str) -> Path | None:
    """The point cloud (or mesh) of one result as a PLY file in `folder`; None while not wired."""
    return None
