"""Every stereo format's layout, the anaglyph's colours, VR180's mapping and the comfort report."""

import math

import pytest
import torch

from muggled_swinv2.geometry import stereo_layouts as layouts
from muggled_swinv2.geometry.stereo import disparity_from_inverse_depth

HEIGHT, WIDTH = 6, 10


def flat(red, green, blue, height=HEIGHT, width=WIDTH):
    return torch.tensor([red, green, blue], dtype=torch.float32)[:, None, None].expand(3, height, width).clone()


@pytest.fixture
def eyes():
    left, right = torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0)), flat(0.2, 0.4, 0.6)
    return left, right


def test_full_side_by_side_top_bottom_and_cross_place_each_eye_whole(eyes):
    left, right = eyes
    (sbs,) = layouts.layout_frames(left, right, "sbs")
    assert sbs.shape == (3, HEIGHT, 2 * WIDTH)
    assert torch.equal(sbs[..., :WIDTH], left) and torch.equal(sbs[..., WIDTH:], right)
    (cross,) = layouts.layout_frames(left, right, "cross")
    assert torch.equal(cross[..., :WIDTH], right) and torch.equal(cross[..., WIDTH:], left)
    (tb,) = layouts.layout_frames(left, right, "tb")
    assert tb.shape == (3, 2 * HEIGHT, WIDTH)
    assert torch.equal(tb[:, :HEIGHT], left) and torch.equal(tb[:, HEIGHT:], right)


def test_half_formats_squeeze_each_eye_to_half_the_side():
    left, right = flat(1.0, 0.0, 0.0, width=11), flat(0.0, 0.0, 1.0, width=11)
    (half_sbs,) = layouts.layout_frames(left, right, "half-sbs")
    assert half_sbs.shape == (3, HEIGHT, 10)  # an odd width: each eye gets 11 // 2 columns
    assert torch.allclose(half_sbs[..., :5], flat(1.0, 0.0, 0.0, width=5))
    assert torch.allclose(half_sbs[..., 5:], flat(0.0, 0.0, 1.0, width=5))
    (half_tb,) = layouts.layout_frames(left, right, "half-tb")
    assert half_tb.shape == (3, HEIGHT, 11)
    assert torch.allclose(half_tb[:, :3], flat(1.0, 0.0, 0.0, height=3, width=11))
    assert torch.allclose(half_tb[:, 3:], flat(0.0, 0.0, 1.0, height=3, width=11))


def test_pair_and_wiggle_are_the_two_eyes_in_order(eyes):
    left, right = eyes
    for format in ("pair", "wiggle"):
        frames = layouts.layout_frames(left, right, format)
        assert len(frames) == 2 and frames[0] is left and frames[1] is right


def test_anaglyph_red_comes_from_the_left_eye_and_cyan_from_the_right():
    black, white = flat(0.0, 0.0, 0.0), flat(1.0, 1.0, 1.0)
    assert torch.allclose(layouts.anaglyph(white, black), flat(1.0, 0.0, 0.0), atol=1e-6)
    assert torch.allclose(layouts.anaglyph(black, white), flat(0.0, 1.0, 1.0), atol=1e-6)


def test_anaglyph_mixes_in_linear_light():
    """Mid grey (sRGB 0.5) in the left eye, black in the right: red = sRGB(1.05 * linear(0.5))."""
    linear = ((0.5 + 0.055) / 1.055) ** 2.4
    red = 1.055 * (linear * (0.437 + 0.449 + 0.164)) ** (1 / 2.4) - 0.055
    assert abs(red - 0.5114) < 1e-4  # 0.525 if the matrix were applied to the encoded values
    result = layouts.anaglyph(flat(0.5, 0.5, 0.5), flat(0.0, 0.0, 0.0))
    assert torch.allclose(result[0], torch.full((HEIGHT, WIDTH), red), atol=1e-5)
    assert torch.equal(result[1:], torch.zeros(2, HEIGHT, WIDTH))  # negative coefficients: clipped


def test_vr180_maps_each_eye_onto_a_half_sphere_with_black_beyond_the_picture():
    width, height, fov = 64, 48, 62.0
    focal = width / 2 / math.tan(math.radians(fov / 2))
    left, right = flat(1.0, 0.0, 0.0, height, width), flat(0.0, 1.0, 0.0, height, width)
    (frame,) = layouts.layout_frames(left, right, "vr180", focal_px=focal)
    size = layouts.vr180_size_px(focal)
    assert size == 2 * round(math.pi * focal / 2) and frame.shape == (3, size, 2 * size)
    equator = frame[:, size // 2]
    lit = (equator[0, :size] > 0.5).sum().item()  # columns of the left half inside the picture
    assert abs(lit - size * fov / 180) <= 2
    assert torch.equal(frame[:, 0, 0], torch.zeros(3)) and torch.equal(frame[:, size // 2, size - 1], torch.zeros(3))
    assert torch.allclose(frame[:, size // 2, size // 2], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(frame[:, size // 2, size + size // 2], torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="focal length"):
        layouts.layout_frames(left, right, "vr180")


def test_every_format_is_handled(eyes):
    left, right = eyes
    for format in layouts.FORMATS:
        assert layouts.layout_frames(left, right, format, focal_px=20.0)
    with pytest.raises(ValueError, match="format must be one of"):
        layouts.layout_frames(left, right, "stereogram")


def test_the_comfort_report_of_a_known_disparity():
    disparity = torch.zeros(4, 100)
    disparity[:, :10] = 5.0  # a near object cut by the left edge: 5% of the width in front
    disparity[:2, 90:] = -1.0  # something 1% behind the screen at the right edge
    report = layouts.comfort_report(disparity, limit_pct=2.0)
    assert report.nearest_pct == 5.0 and report.farthest_pct == -1.0
    assert report.beyond_comfort_share == 0.1  # the near object's 40 of 400 pixels
    assert report.window_violation_left == 1.0 and report.window_violation_right == 0.0
    assert report.as_dict()["comfort_limit_pct"] == 2.0
    assert "window violations on 100.0%" in report.summary()


def test_the_default_comfort_limit_is_one_degree_on_a_screen_30_degrees_wide():
    assert abs(layouts.COMFORT_LIMIT_PCT - 3.2567) < 1e-3


def test_auto_strength_stays_within_comfort_without_window_violations():
    inverse_depth = torch.linspace(0, 1, 50)[None].repeat(20, 1)
    inverse_depth[5:10, 20:30] = 2.0  # the nearest object, away from the edges
    divergence, convergence = layouts.auto_strength(inverse_depth, limit_pct=3.0)
    assert convergence == pytest.approx(0.5)  # the right edge's 1.0 is halfway from 0 to 2
    assert divergence == pytest.approx(6.0)
    report = layouts.comfort_report(disparity_from_inverse_depth(inverse_depth, divergence, convergence), 3.0)
    assert report.window_violation_left == report.window_violation_right == 0.0
    assert report.nearest_pct == pytest.approx(3.0) and report.farthest_pct == pytest.approx(-3.0)
