"""Motion-compensated stabilisation: dense flow and warping (video/motion.py), the stabiliser
following the pixels (video/stabilize.py), and flicker at corresponding points (evaluation/flicker.py)."""

import cv2
import numpy as np
import pytest

from muggled_swinv2.evaluation.flicker import CLIPS, flicker
from muggled_swinv2.video.motion import MotionEstimator, MotionSettings, trusted_flow, upsample_flow, warp


def texture(seed: int = 0, size_hw=(300, 380)) -> np.ndarray:
    """A smooth random grey pattern, float32 0-255 (enough structure for optical flow)."""
    rng = np.random.default_rng(seed)
    pattern = cv2.GaussianBlur(rng.random(size_hw).astype(np.float32), (0, 0), 3)
    return (pattern - pattern.min()) / np.ptp(pattern) * 255


def view(pattern: np.ndarray, left: float, top: float, size_hw=(96, 128)) -> np.ndarray:
    """The pattern seen through a window whose top-left corner is at (left, top) (sub-pixel)."""
    moved = np.float32([[1, 0, -left], [0, 1, -top]])
    return cv2.warpAffine(pattern, moved, (size_hw[1], size_hw[0]), flags=cv2.INTER_LINEAR)


def test_a_pan_with_known_motion_is_warped_to_within_a_pixel():
    pattern = texture()
    depth_pattern = 1 + pattern / 64  # a depth map that moves with the picture
    dx, dy = 3.4, -1.7  # the window moves right and up: a pixel of frame 1 was (dx, dy) away in frame 0
    estimator = MotionEstimator()
    assert estimator(view(pattern, 60, 60).astype(np.uint8), (96, 128)) is None
    motion = estimator(view(pattern, 60 + dx, 60 + dy).astype(np.uint8), (96, 128))
    flow = upsample_flow(motion.flow_low, (96, 128))
    trusted = motion.trusted
    assert trusted.mean() > 0.8
    error = np.hypot(flow[..., 0] - dx, flow[..., 1] - dy)
    assert error[trusted].max() < 1.0 and np.median(error[trusted]) < 0.25
    warped = warp(view(depth_pattern, 60, 60), flow)
    target = view(depth_pattern, 60 + dx, 60 + dy)
    one_pixel = np.abs(np.gradient(target)).sum(axis=0)  # how much the depth changes over a pixel
    assert (np.abs(warped - target) <= one_pixel + 1e-3)[trusted].mean() > 0.99
    # the right and top edges came into view: no past there
    assert not trusted[:, -3:].any() and not trusted[:1].any()


def test_what_a_moving_object_uncovers_or_hides_is_not_trusted():
    """Exact flows: the camera pans 2 pixels, a square 10 pixels: the strip it uncovered lands, in
    the previous frame, on the square, whose forward vector does not bring it back."""
    height, width = 60, 80
    backward = np.zeros((height, width, 2), np.float32)
    forward = np.zeros((height, width, 2), np.float32)
    backward[..., 0], forward[..., 0] = 2, -2  # the background: a pixel now at x was at x + 2
    backward[20:40, 30:50, 0] = -10  # the square now covers columns 30-49; it was at 20-39 before
    forward[20:40, 20:40, 0] = 10  # where it stood before
    trusted = trusted_flow(backward, forward, MotionSettings())
    assert not trusted[20:40, 18:30].any()  # uncovered: background now (x was at x + 2), the square before
    assert not trusted[:, -3:].any()  # new at the right edge
    assert trusted[:15, :70].all() and trusted[45:, :70].all() and trusted[24:36, 34:46].all()


def test_a_still_camera_gives_zero_motion_everywhere():
    rng = np.random.default_rng(3)
    pattern = view(texture(), 60, 60)
    estimator = MotionEstimator()
    estimator(pattern.astype(np.uint8), (96, 128))
    for gain in (1.0, 1.2, 0.9):  # sensor noise and exposure changes are no motion
        noisy = np.clip(pattern * gain + rng.normal(0, 3, pattern.shape), 0, 255).astype(np.uint8)
        motion = estimator(noisy, (96, 128))
        assert motion.still and motion.trusted.mean() > 0.95


@pytest.mark.parametrize("name", list(CLIPS))
def test_flicker_at_corresponding_points_sees_the_true_motion(name):
    clip = CLIPS[name](frames=3, size_hw=(48, 64))
    assert len(clip.motions) == 2 and all(0.8 < motion.seen.mean() <= 1 for motion in clip.motions)
    truth = [1 / np.where(np.isfinite(depth), depth, np.inf) for depth in clip.depths]
    range_ = np.ptp(truth[0])
    assert flicker(truth, clip.depths, clip.motions) < 5e-4  # the true inverse depth does not flicker
    assert flicker([7 * frame - 3 for frame in truth], clip.depths, clip.motions) < 5e-4
    if name != "still camera":  # a prediction stuck to the first frame does: its points moved
        assert flicker([truth[0]] * 3, clip.depths, clip.motions) > 1.5e-3
    rng = np.random.default_rng(0)
    noisy = [frame + 0.01 * range_ * rng.standard_normal(frame.shape) for frame in truth]
    assert 0.005 < flicker(noisy, clip.depths, clip.motions) < 0.03
