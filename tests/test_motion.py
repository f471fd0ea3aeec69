"""Motion-compensated stabilisation: dense flow and warping (video/motion.py), the stabiliser
following the pixels (video/stabilize.py), and flicker at corresponding points (evaluation/flicker.py)."""

import cv2
import numpy as np
import pytest

from muggled_swinv2.evaluation.flicker import CLIPS, flicker
from muggled_swinv2.video.depth_npz import pack_mask, recover_raw
from muggled_swinv2.video.motion import MotionEstimator, MotionSettings, trusted_flow, upsample_flow, warp
from muggled_swinv2.video.stabilize import DepthStabilizer, StabilizerSettings


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


def panning_clip(frames: int = 8, step: float = 2.5, noise: float = 0.02, seed: int = 5):
    """(pictures uint8, raw inverse depths with noise, true inverse depths): a camera panning
    `step` pixels a frame across a textured scene whose depth moves with the picture."""
    rng = np.random.default_rng(seed)
    pattern = texture(seed)
    depth_pattern = 1 + cv2.GaussianBlur(pattern, (0, 0), 6) / 64
    pictures, raws, truths = [], [], []
    for index in range(frames):
        left = 40 + step * index
        truth = view(depth_pattern, left, 60)
        pictures.append(view(pattern, left, 60).astype(np.uint8))
        truths.append(truth)
        raws.append((truth + noise * rng.standard_normal(truth.shape)).astype(np.float32))
    return pictures, raws, truths


def test_zero_motion_reproduces_the_still_camera_stabiliser():
    rng = np.random.default_rng(7)
    picture = view(texture(3), 60, 60)
    truth = 1 + picture / 128
    with_motion, without = DepthStabilizer(), DepthStabilizer(StabilizerSettings(motion=None))
    for index in range(8):  # sensor noise and exposure changes on a still camera
        seen = np.clip(picture * (1 + 0.1 * np.sin(index)) + rng.normal(0, 3, picture.shape), 0, 255).astype(np.uint8)
        raw = (2.0 * truth + 0.5 + 0.05 * rng.standard_normal(truth.shape)).astype(np.float32)
        out, reference = with_motion(raw, seen), without(raw, seen)
        assert out.flow_low is None and np.array_equal(out.depth, reference.depth)
        assert np.array_equal(out.smoothed, reference.smoothed) and (out.scale, out.shift) == (reference.scale, reference.shift)
    assert out.smoothed.mean() > 0.9


def test_a_pan_is_followed_smoothed_and_not_smeared():
    pictures, raws, truths = panning_clip()
    following, in_place = DepthStabilizer(), DepthStabilizer(StabilizerSettings(motion=None))
    for picture, raw, truth in zip(pictures, raws, truths):
        out, stuck = following(raw, picture), in_place(raw, picture)
    inner = np.s_[8:-8, 8:-8]
    error = np.abs(out.depth - (out.scale * truth + out.shift))[inner]
    raw_error = np.abs(raws[-1] - truths[-1])[inner]
    assert out.flow_low is not None and out.smoothed[inner].mean() > 0.8
    assert error.mean() < 0.8 * raw_error.mean()  # averaged along the motion: less noise
    stuck_error = np.abs(stuck.depth - (stuck.scale * truth + stuck.shift))[inner]
    assert error.mean() < stuck_error.mean()
    assert not out.smoothed[:, -3:].any()  # what just came into view at the right edge has no past


def test_a_cut_still_resets_on_a_moving_camera():
    pictures, raws, _ = panning_clip(frames=4)
    other_pictures, other_raws, _ = panning_clip(frames=2, seed=9)
    stabilizer = DepthStabilizer()
    outs = [stabilizer(raw, picture) for picture, raw in zip(pictures + other_pictures, raws + [9 - 3 * r for r in other_raws])]
    assert [out.reset for out in outs] == [True, False, False, False, True, False]
    assert not outs[4].smoothed.any()


def test_recover_raw_undoes_the_smoothing_along_the_motion():
    pictures, raws, _ = panning_clip(frames=6)
    stabilizer = DepthStabilizer()
    archive = {"smoothing": np.array(stabilizer.settings.smoothing), "moving_smoothing": np.array(stabilizer.settings.moving_smoothing)}
    scales, shifts = [], []
    for index, (picture, raw) in enumerate(zip(pictures, raws)):  # as the video job writes its npz
        out = stabilizer(raw, picture)
        archive[f"frame_{index:06d}"] = out.depth
        archive[f"smoothed_{index:06d}"] = pack_mask(out.smoothed)
        if out.flow_low is not None:
            archive[f"flow_{index:06d}"] = out.flow_low
        scales.append(out.scale)
        shifts.append(out.shift)
    archive["scale"], archive["shift"] = np.array(scales), np.array(shifts)
    assert sum(name.startswith("flow_") for name in archive) == 5
    for recovered, raw in zip(recover_raw(archive), raws):
        np.testing.assert_allclose(recovered, raw, atol=2e-4)
    without_flows = {name: value for name, value in archive.items() if not name.startswith("flow_")}
    assert np.abs(recover_raw(without_flows)[-1] - raws[-1]).max() > 0.01  # the flows are needed
