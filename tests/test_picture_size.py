"""A picture's size from its header, before anything is decoded (io/images.picture_size): the web
page refuses a picture beyond its pixel limit this way (test_web_limits.py drives that through a
server). Pure header parsing: no Gradio needed.
"""

import struct

import numpy as np
import pytest

import cv2
from muggled_swinv2.io.images import ImageReadError, picture_size

ENCODINGS = [(".png", 3, []), (".jpg", 3, []), (".tiff", 3, []), (".webp", 3, []), (".webp", 3, [cv2.IMWRITE_WEBP_QUALITY, 101]),
             (".bmp", 3, []), (".gif", 3, []), (".jp2", 3, []), (".avif", 3, []), (".ppm", 3, []), (".pgm", 1, []),
             (".pbm", 1, []), (".pam", 3, []), (".pfm", 3, []), (".hdr", 3, []), (".ras", 3, [])]  # webp 101: lossless


@pytest.mark.parametrize("suffix, channels, parameters", ENCODINGS)
def test_picture_size_from_the_header_of_every_format_opencv_decodes(tmp_path, suffix, channels, parameters):
    image = np.random.default_rng(0).integers(0, 256, (37, 53, channels), dtype=np.uint8)
    if suffix in (".pfm", ".hdr"):
        image = image.astype(np.float32) / 255
    ok, encoded = cv2.imencode(suffix, image, parameters)
    assert ok
    named_otherwise = tmp_path / f"picture{'.png' if suffix != '.png' else '.jpg'}"  # the content decides
    named_otherwise.write_bytes(encoded.tobytes())
    assert cv2.imread(str(named_otherwise), cv2.IMREAD_UNCHANGED).shape[:2] == (37, 53)
    assert picture_size(named_otherwise) == (53, 37)


def test_picture_size_of_a_top_down_bmp(tmp_path):
    ok, encoded = cv2.imencode(".bmp", np.zeros((37, 53, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    data[22:26] = struct.pack("<i", -37)  # rows stored from the top
    (tmp_path / "top_down.bmp").write_bytes(bytes(data))
    assert cv2.imread(str(tmp_path / "top_down.bmp")).shape[:2] == (37, 53)
    assert picture_size(tmp_path / "top_down.bmp") == (53, 37)


def test_picture_size_refuses_unknown_and_cut_short_headers(tmp_path):
    ok, encoded = cv2.imencode(".png", np.zeros((8, 8), np.uint8))
    (tmp_path / "cut.png").write_bytes(encoded.tobytes()[:20])
    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "empty.png").write_bytes(b"")
    for name, reason in [("cut.png", "a damaged or cut-short PNG header"), ("notes.png", "not an image OpenCV can decode"),
                         ("empty.png", "empty file")]:
        with pytest.raises(ImageReadError, match=f"^{tmp_path / name}: {reason}$"):
            picture_size(tmp_path / name)
