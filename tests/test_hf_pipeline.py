"""`convert --to hf` writes a folder that transformers' own depth-estimation pipeline runs."""

import json

import numpy as np
import pytest
import torch

import cv2
from muggled_swinv2 import load_model
from muggled_swinv2.formats.convert import convert
from muggled_swinv2.predict import resize_depth
from pictures import photo


def test_pipeline_runs_the_exported_folder_like_we_do(tmp_path, small_checkpoint):
    transformers = pytest.importorskip("transformers")
    from PIL import Image

    folder = tmp_path / "dpt-swinv2-small-64"
    convert(small_checkpoint, folder, to="hf")
    settings = json.loads((folder / "preprocessor_config.json").read_text())
    assert settings["image_processor_type"] == "DPTImageProcessor" and settings["size"] == {"height": 64, "width": 64}
    assert settings["resample"] == 3 and settings["image_mean"] == settings["image_std"] == [0.5, 0.5, 0.5]
    assert settings["keep_aspect_ratio"] is False

    bgr = photo(90, 120, seed=7)
    picture = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    estimator = transformers.pipeline("depth-estimation", model=str(folder), device="cpu")
    result = estimator(picture)
    theirs = np.asarray(result["predicted_depth"], dtype=np.float32).squeeze()
    assert theirs.shape == (90, 120) and result["depth"].size == (120, 90)

    # Ours on the same preprocessed pixels (the pipeline's own image processor), resized back our way.
    pixels = estimator.image_processor(picture, return_tensors="pt")["pixel_values"]
    assert tuple(pixels.shape) == (1, 3, 64, 64)
    with torch.no_grad():
        ours = resize_depth(load_model(small_checkpoint)(pixels), (90, 120))[0].numpy()
    assert np.abs(ours - theirs).max() <= 1e-4 * (ours.max() - ours.min())
    # ... and the same picture through our own square (MiDaS) pipeline: close, though cv2's cubic
    # resize on float pixels is not PIL's on 8-bit ones.
    square = load_model(small_checkpoint).predict(bgr, square=True)
    assert np.corrcoef(square.ravel(), theirs.ravel())[0, 1] > 0.95
