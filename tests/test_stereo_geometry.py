"""The stereo warp against an independent render: a textured room ray-cast from two cameras
(tests/rendered_room.py, 640x480, 62 degree horizontal field of view, 0.12 m apart)."""

import math

import numpy as np
import pytest
import torch

import rendered_room as room
from muggled_swinv2.geometry import stereo
from muggled_swinv2.geometry import stereo_layouts as layouts

WIDTH, HEIGHT, FOV, BASELINE = 640, 480, 62.0, 0.12
FOCAL = room.focal_px(WIDTH, FOV)


@pytest.fixture(scope="module")
def views():
    """{camera x: (colour (H, W, 3) uint8, depth (H, W) metres)} at 0 (left), 0.06, 0.12 (right)."""
    return {x: room.render(WIDTH, HEIGHT, FOV, camera_x=x) for x in (0.0, BASELINE / 2, BASELINE)}


def as_chw(image_hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image_hwc).permute(2, 0, 1).float()


def as_uint8(image_chw: torch.Tensor) -> np.ndarray:
    return image_chw.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def metric_disparity(depth_hw: np.ndarray) -> torch.Tensor:
    return stereo.disparity_from_metric_depth(torch.from_numpy(depth_hw).float(), FOCAL, BASELINE)


def test_the_left_eye_is_the_input_and_the_right_eye_matches_the_moved_camera(views):
    (left, left_depth), (right, right_depth) = views[0.0], views[BASELINE]
    rendered_left, rendered_right = stereo.render_stereo(as_chw(left), metric_disparity(left_depth), eye="left")
    (sbs,) = layouts.layout_frames(rendered_left / 255, rendered_right / 255, "sbs")
    assert np.array_equal(as_uint8(sbs[..., :WIDTH] * 255), left)
    assert torch.equal(sbs[..., WIDTH:], rendered_right / 255)
    both_see = room.covisible(left_depth, right_depth, FOCAL, BASELINE)
    assert 0.9 < both_see.mean() < 0.99  # the scene has disocclusions and a frame edge coming into view
    assert room.psnr(as_uint8(rendered_right), right, both_see) >= 35.0  # measured 38.0 dB (the ideal, sampling with the right eye's own depth: 38.35)


def test_no_pixel_is_left_empty(views):
    left, left_depth = views[0.0]
    splat = stereo.splat_disparity(metric_disparity(left_depth), shift=-1.0)
    holes = torch.isnan(splat.disparity_hw)
    assert 0.01 < holes.float().mean() < 0.1
    filled = stereo.fill_disocclusions(splat)
    assert torch.isfinite(filled).all()
    assert torch.equal(filled[~holes], splat.disparity_hw[~holes])


def test_moving_pixels_to_the_nearest_pixel_alone_does_not_reach_35_db(views):
    """The threshold above can fail: the same warp with whole-pixel moves tears the textures."""
    (left, left_depth), (right, right_depth) = views[0.0], views[BASELINE]
    target = stereo.fill_disocclusions(stereo.splat_disparity(metric_disparity(left_depth), shift=-1.0))
    whole_pixels = stereo.sample_view(as_chw(left), target.round(), shift=-1.0)
    assert room.psnr(as_uint8(whole_pixels), right, room.covisible(left_depth, right_depth, FOCAL, BASELINE)) < 35.0  # measured 34.6


def test_holes_are_filled_with_the_background_not_the_occluder(views):
    """Hole pixels (disocclusions beside near objects, not the frame's edge) against the moved
    camera's render: filling with the occluder's disparity samples the background beside it; the
    naive fill (the smaller, background disparity) samples the occluder and smears it."""
    (left, left_depth), (right, right_depth) = views[0.0], views[BASELINE]
    splat = stereo.splat_disparity(metric_disparity(left_depth), shift=-1.0)
    holes = torch.isnan(splat.disparity_hw).numpy() & ~room.covisible(left_depth, right_depth, FOCAL, BASELINE)
    holes[:, -40:] = False  # the strip that comes into view at the right edge has no occluder
    assert holes.sum() > 2000

    ours = as_uint8(stereo.sample_view(as_chw(left), stereo.fill_disocclusions(splat), shift=-1.0))
    naive_disparity = stereo.fill_from_neighbours(splat.disparity_hw, torch.minimum)  # the background's
    naive = as_uint8(stereo.sample_view(as_chw(left), naive_disparity, shift=-1.0))
    error = lambda image: np.abs(image.astype(float) - right)[holes].mean()  # noqa: E731
    assert error(ours) < 0.6 * error(naive), (error(ours), error(naive))


def test_the_right_eye_as_input_renders_the_left(views):
    (left, left_depth), (right, right_depth) = views[0.0], views[BASELINE]
    rendered_left, rendered_right = stereo.render_stereo(as_chw(right), metric_disparity(right_depth), eye="right")
    assert np.array_equal(as_uint8(rendered_right), right)
    both_see = room.covisible(right_depth, left_depth, FOCAL, -BASELINE)
    assert room.psnr(as_uint8(rendered_left), left, both_see) >= 35.0


def test_a_centre_picture_gives_both_eyes_half_a_baseline_away(views):
    (centre, centre_depth) = views[BASELINE / 2]
    rendered_left, rendered_right = stereo.render_stereo(as_chw(centre), metric_disparity(centre_depth), eye="center")
    for (truth, truth_depth), rendered, offset in ((views[0.0], rendered_left, -BASELINE / 2),
                                                   (views[BASELINE], rendered_right, BASELINE / 2)):
        both_see = room.covisible(centre_depth, truth_depth, FOCAL, offset)
        assert room.psnr(as_uint8(rendered), truth, both_see) >= 35.0


def test_metric_disparity_is_focal_times_baseline_over_depth():
    depth = torch.tensor([[1.0, 2.0, math.inf]])
    assert torch.allclose(stereo.disparity_from_metric_depth(depth, 500.0, 0.1), torch.tensor([[50.0, 25.0, 0.0]]))
    converged = stereo.disparity_from_metric_depth(depth, 500.0, 0.1, convergence_distance_m=2.0)
    assert torch.allclose(converged, torch.tensor([[25.0, 0.0, -25.0]]))


def test_relative_disparity_spans_the_divergence_with_the_screen_at_the_convergence():
    inverse_depth = torch.tensor([[2.0, 4.0, 6.0, 10.0]])  # width 4: divergence 50 % is 2 pixels
    assert torch.allclose(stereo.disparity_from_inverse_depth(inverse_depth, 50.0, 0.0),
                          torch.tensor([[-2.0, -1.5, -1.0, 0.0]]))  # nearest on the screen
    assert torch.allclose(stereo.disparity_from_inverse_depth(inverse_depth, 50.0, 1.0),
                          torch.tensor([[0.0, 0.5, 1.0, 2.0]]))  # farthest on the screen
    assert torch.allclose(stereo.disparity_from_inverse_depth(inverse_depth, 50.0, 0.5),
                          torch.tensor([[-1.0, -0.5, 0.0, 1.0]]))
    assert torch.equal(stereo.disparity_from_inverse_depth(torch.ones(2, 3), 10.0, 1.0), torch.zeros(2, 3))


def test_a_constant_sub_pixel_disparity_shifts_the_texture_exactly():
    image = torch.arange(10.0).repeat(3, 2, 1)  # a ramp: linear interpolation is exact on it
    shifted = stereo.render_view(image, torch.full((2, 10), 0.25), shift=-1.0)
    assert torch.allclose(shifted[..., :9], image[..., :9] + 0.25)
    assert torch.allclose(shifted[..., 9], torch.tensor(9.0))  # the column that comes into view: the edge


def test_the_nearer_surface_wins_and_opens_a_hole_filled_with_its_own_disparity():
    disparity = torch.zeros(1, 12)
    disparity[0, 4:7] = 3.0  # an object 3 pixels wide, 3 pixels nearer: it lands on columns 1-3
    splat = stereo.splat_disparity(disparity, shift=-1.0)
    assert torch.equal(splat.disparity_hw[0, :4], torch.tensor([0.0, 3.0, 3.0, 3.0]))  # over the background
    assert torch.isnan(splat.disparity_hw[0, 4:7]).all()  # the background it hid
    assert torch.equal(splat.disparity_hw[0, 7:], torch.zeros(5))
    assert torch.equal(splat.occluder_hw[0, 4:7], torch.full((3,), 3.0))
    assert torch.equal(stereo.fill_disocclusions(splat)[0, 4:7], torch.full((3,), 3.0))


def test_a_thin_object_moved_past_its_own_width_still_fills_its_hole_with_the_background():
    """Its hole's neighbours in the new view are both background (0), yet the hole must be sampled
    beside the object (the occluder's disparity 3), not on it."""
    disparity = torch.zeros(1, 12)
    disparity[0, 4:6] = 3.0  # 2 pixels wide: lands on 1-2, the background's column 3 shows beside it
    splat = stereo.splat_disparity(disparity, shift=-1.0)
    assert torch.equal(splat.disparity_hw[0, :4], torch.tensor([0.0, 3.0, 3.0, 0.0]))
    assert torch.isnan(splat.disparity_hw[0, 4:6]).all()
    image = torch.zeros(1, 1, 12)
    image[0, 0, 4:6] = 1.0  # a white object on black
    assert torch.equal(stereo.render_view(image, disparity, shift=-1.0)[0, 0], torch.tensor(
        [0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))


def test_edge_dilation_grows_near_surfaces():
    disparity = torch.zeros(5, 5)
    disparity[2, 2] = 4.0
    grown = stereo.dilate_near_edges(disparity, 1)
    assert torch.equal(grown[1:4, 1:4], torch.full((3, 3), 4.0)) and grown.sum() == 36.0
    assert stereo.dilate_near_edges(disparity, 0) is disparity
