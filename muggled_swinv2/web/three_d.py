"""The page's 3D result: a coloured mesh PLY of one picture's depth (export/geometry.py), shown in a
gr.Model3D and offered for download. Decimated to about 256 vertices on the long side so that the
browser stays fast; the camera rule is the CLI's defaults (60 degrees, depth range 1-10)."""

from pathlib import Path

import numpy as np

from ..export.geometry import save_mesh

PREVIEW_LONG_SIDE = 256


def available() -> bool:
    return True


def write_ply(image: np.ndarray, depth: np.ndarray, folder: Path, stem: str) -> Path | None:
    """The mesh of one result as a PLY file in `folder`."""
    step = max(1, max(depth.shape[:2]) // PREVIEW_LONG_SIDE)
    return save_mesh(Path(folder) / f"{stem}_mesh.ply", image, depth, step=step)
