#!/usr/bin/env python3
"""Writes a one-photo evaluation folder from real data that ships inside scikit-image: the left
view of the Middlebury 2014 'Motorcycle' stereo pair with its ground-truth disparity (Scharstein et
al., GCPR 2014), in the layout `muggled-swinv2 eval --data` reads:

    python benchmarks/make_real_eval.py outputs/motorcycle
    muggled-swinv2 eval --data outputs/motorcycle

Nothing is downloaded and nothing is committed: the data stays in scikit-image's wheel.
Unknown disparities (inf/NaN in the file) become 0, which the evaluation skips.
"""

import sys
from pathlib import Path

import cv2
import numpy as np


def main(folder: str) -> None:
    from skimage import data

    left, _right, disparity = data.stereo_motorcycle()
    root = Path(folder)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "disparity").mkdir(exist_ok=True)
    cv2.imwrite(str(root / "images" / "motorcycle.png"), cv2.cvtColor(left, cv2.COLOR_RGB2BGR))
    np.save(root / "disparity" / "motorcycle.npy", np.where(np.isfinite(disparity), disparity, 0).astype(np.float32))
    print(f"{root}: images/motorcycle.png and disparity/motorcycle.npy")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "outputs/motorcycle")
