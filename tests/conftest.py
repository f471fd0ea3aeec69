import numpy as np
import pytest
import torch

import cv2

from browser import chromium
from midas_layout import SMALL_CONFIG, make_midas_state_dict
from pictures import photo, write_video

from muggled_swinv2 import load_model
from muggled_swinv2.cli import main
from strict_skips import (  # noqa: F401  (hooks: a run with tests skipped for a missing package fails)
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)


@pytest.fixture(scope="session", autouse=True)
def private_cache_folder(tmp_path_factory):
    """The suite never reads or fills the user's cache folder (downloads, ONNX exports)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        patch.delenv("MUGGLED_SWINV2_CACHE", raising=False)
        yield


@pytest.fixture
def winograd_at_any_width(monkeypatch):
    """Winograd for every 3x3 convolution that accelerate_for_inference sees from here on, whatever its
    width (the product keeps it for 256 outputs or more, where it pays): the small test models'
    decoders then take it too. The arithmetic is the same at any width."""
    from muggled_swinv2.accelerate import winograd

    monkeypatch.setattr(winograd, "MIN_OUT_CHANNELS", 1)


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """A random-weight checkpoint file in the MiDaS layout (small config, native 64x64)."""
    path = tmp_path_factory.mktemp("weights") / "dpt_swin2_small_64.pt"
    torch.save(make_midas_state_dict(SMALL_CONFIG, seed=11), path)
    return path


@pytest.fixture(scope="session")
def small_model(small_checkpoint):
    return load_model(small_checkpoint)


@pytest.fixture(scope="session")
def small_export(tmp_path_factory, small_checkpoint):
    """The small checkpoint exported by the `export` command as FOLDER/model.onnx (recorded in
    FOLDER's ledger): the native 64x64, a fixed batch of 2 and opset 19 (not the defaults, so that a
    default cannot pass for them). One export for the tests of several files that read such a file:
    copy it before changing anything."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from muggled_swinv2.cli import main

    path = tmp_path_factory.mktemp("small-export") / "model.onnx"
    assert main(["export", str(small_checkpoint), str(path), "--batch", "2", "--opset", "19"]) == 0
    return path


@pytest.fixture(scope="module")
def model(small_checkpoint):
    """The small random-weight model, loaded as the commands load it."""
    return load_model(small_checkpoint)


@pytest.fixture
def pictures(tmp_path):
    folder = tmp_path / "pictures"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "street.jpg"), photo(60, 90, seed=1))
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(photo(40, 40, seed=2), cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "deep.png"), photo(50, 70, seed=3).astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "alpha.png"), cv2.cvtColor(photo(30, 50, seed=4), cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "sub" / "street.png"), photo(45, 45, seed=5))
    return folder


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.mp4", frames=7, size_wh=(96, 64), fps=12.0)


@pytest.fixture
def panning_clip(tmp_path):
    """7 frames of 96x64 seen through a window moving 3 pixels right a frame: a moving camera."""
    scene = photo(64, 96 + 3 * 7, seed=4)
    writer = cv2.VideoWriter(str(tmp_path / "pan.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (96, 64))
    for index in range(7):
        writer.write(np.ascontiguousarray(scene[:, 3 * index:3 * index + 96]))
    writer.release()
    return tmp_path / "pan.mp4"


@pytest.fixture(scope="module")
def picture_and_prediction(tmp_path_factory, small_checkpoint):
    """A 48x80 picture file and the inverse depth (H, W) float32 the small model predicts for it,
    as `image --raw npy` writes it: what the metric tests make their known depths from."""
    folder = tmp_path_factory.mktemp("metric-picture")
    picture = folder / "room.png"
    cv2.imwrite(str(picture), photo(48, 80))
    assert main(["image", str(picture), "-w", str(small_checkpoint), "--raw", "npy", "--out", str(folder / "plain"),
                 "--quiet"]) == 0
    return picture, np.load(folder / "plain" / "room.npy")


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium's Selenium driver (tests/browser.py): closed, with every process it
    started, when the test ends; the test is skipped where Chromium or Selenium is not installed."""
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver
