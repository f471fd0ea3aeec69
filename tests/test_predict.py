"""model.predict: image formats and sizes, and the exact MiDaS pipeline with square=True."""

import numpy as np
import pytest

import cv2

from muggled_swinv2.predict import network_size_hw, prepare_input, to_rgb_unit
from pictures import midas_square_pipeline, photo


def test_square_mode_is_the_midas_pipeline(small_model):
    image = photo(50, 90)
    ours = small_model.predict(image, square=True)
    expected = midas_square_pipeline(small_model, image)
    assert ours.dtype == np.float32 and ours.shape == (50, 90)
    assert np.array_equal(ours, expected)


def test_default_mode_keeps_aspect_ratio(small_model, monkeypatch):
    seen = []
    forward = small_model.forward
    monkeypatch.setattr(small_model, "forward", lambda x: seen.append(tuple(x.shape)) or forward(x))
    depth = small_model.predict(photo(480, 640), size=384)
    assert depth.shape == (480, 640)
    assert seen == [(1, 3, 288, 384)]  # 480 * 384 / 640 = 288
    small_model.predict(photo(30, 30))
    assert seen[-1] == (1, 3, 64, 64)  # default size: the native 64


@pytest.mark.parametrize(
    "image_hw, long_side, expected",
    [((480, 640), 320, (256, 320)), ((480, 640), 384, (288, 384)), ((1, 1), 256, (256, 256)), ((1, 5000), 384, (32, 384)), ((1000, 10), 100, (96, 32))],
)
def test_network_size(image_hw, long_side, expected):
    assert network_size_hw(image_hw, long_side) == expected


@pytest.mark.parametrize(
    "make_image",
    [
        lambda: photo(1, 1),  # a single pixel
        lambda: photo(7, 3),
        lambda: photo(33, 500),
        lambda: cv2.cvtColor(photo(40, 40), cv2.COLOR_BGR2GRAY),  # gray (H, W)
        lambda: cv2.cvtColor(photo(40, 40), cv2.COLOR_BGR2GRAY)[:, :, None],  # gray (H, W, 1)
        lambda: cv2.cvtColor(photo(40, 60), cv2.COLOR_BGR2BGRA),
        lambda: photo(40, 60).astype(np.uint16) * 257,  # 16-bit
        lambda: photo(40, 60).astype(np.float32) / 255,
    ],
)
def test_accepts_image_formats_and_sizes(small_model, make_image):
    image = make_image()
    depth = small_model.predict(image)
    assert depth.shape == image.shape[:2] and depth.dtype == np.float32
    assert np.isfinite(depth).all()


def test_formats_agree_on_the_same_picture(small_model):
    image = photo(40, 60)
    reference = small_model.predict(image)
    for variant in (cv2.cvtColor(image, cv2.COLOR_BGR2BGRA), image.astype(np.uint16) * 257, image.astype(np.float32) / 255):
        assert np.allclose(small_model.predict(variant), reference, atol=1e-4 * np.ptp(reference))


def test_gray_is_replicated_rgb():
    gray = np.array([[0, 255], [51, 102]], np.uint8)
    rgb = to_rgb_unit(gray)
    assert rgb.shape == (2, 2, 3) and np.allclose(rgb[..., 0], rgb[..., 2]) and rgb[0, 1, 0] == 1.0


def test_bgr_becomes_rgb():
    image = np.zeros((1, 1, 3), np.uint8)
    image[0, 0] = (255, 0, 0)  # pure blue in BGR
    assert to_rgb_unit(image)[0, 0].tolist() == [0.0, 0.0, 1.0]
    assert prepare_input(image, 32, square=True, size=None).shape == (3, 32, 32)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 5, 3), np.uint8), "shape"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((4, 4, 3), np.int32), "dtype"),
        ([[1, 2], [3, 4]], "numpy"),
    ],
)
def test_rejects_bad_images(small_model, bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        small_model.predict(bad)


def test_rejects_bad_size(small_model):
    with pytest.raises(ValueError, match="size"):
        small_model.predict(photo(), size=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite_pixels(small_model, bad):
    image = photo(20, 30).astype(np.float32) / 255
    image[5, 7, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        small_model.predict(image)


@pytest.mark.parametrize("size", ["256", 300.5, True, -1])
def test_rejects_sizes_that_are_not_positive_integers(small_model, size):
    with pytest.raises(ValueError, match="size must be a positive number of pixels"):
        small_model.predict(photo(), size=size)


def test_square_with_size_is_refused(small_model):
    with pytest.raises(ValueError, match="square=True"):  # it would silently use the native size
        small_model.predict(photo(), square=True, size=96)
