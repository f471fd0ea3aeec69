"""Temporal stabilisation: known per-frame scale/shift recovered, scene cuts reset, raw recoverable."""

import cv2
import numpy as np
import pytest

from muggled_swinv2.video.stabilize import DepthStabilizer, StabilizerSettings, fit_scale_shift, unstabilize


def scene(seed: int, height=90, width=120) -> np.ndarray:
    """A fixed inverse depth map: a slanted floor, a box and some texture."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.2, 1.0, height, dtype=np.float32)[:, None]
    depth = np.repeat(rows, width, axis=1) + 0.2 * rng.random((height, width), dtype=np.float32)
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    depth[top:top + height // 3, left:left + width // 3] += 1.5
    return depth


def known_maps(count: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [(float(rng.uniform(0.1, 10.0)), float(rng.uniform(-5.0, 5.0))) for _ in range(count)]


def test_known_scale_and_shift_per_frame_is_undone():
    depth = scene(0)
    maps = known_maps(12)
    stabilizer = DepthStabilizer()
    first_scale, first_shift = maps[0]
    for index, (scale, shift) in enumerate(maps):
        out = stabilizer((scale * depth + shift).astype(np.float32))
        assert out.reset == (index == 0)
        # every frame comes out as the first one did (the first keeps its own scale and shift)
        np.testing.assert_allclose(out.depth, first_scale * depth + first_shift, rtol=0, atol=2e-5 * first_scale)
        assert out.scale == pytest.approx(first_scale / scale, rel=1e-5)
        assert out.shift == pytest.approx(first_shift - out.scale * shift, abs=1e-4 * first_scale)


def test_moving_object_does_not_drag_the_fit():
    depth = scene(0)
    stabilizer = DepthStabilizer()
    stabilizer(depth)
    for index, (scale, shift) in enumerate(known_maps(8, seed=2)):
        frame = depth.copy()
        frame[10:40, 5 + 10 * index:35 + 10 * index] = 3.0  # a near object crossing the view
        out = stabilizer((scale * frame + shift).astype(np.float32))
        assert not out.reset
        np.testing.assert_allclose(out.depth, frame, atol=1e-4)


def test_noise_and_flicker_are_reduced_not_amplified():
    rng = np.random.default_rng(3)
    depth = scene(0)
    stabilizer = DepthStabilizer()
    raw, stable = [], []
    for scale, shift in known_maps(20, seed=4):
        frame = (scale * (depth + 0.01 * rng.standard_normal(depth.shape)) + shift).astype(np.float32)
        raw.append(frame / np.ptp(frame))
        out = stabilizer(frame).depth
        stable.append(out / np.ptp(out))

    def flicker(frames):
        return np.mean([np.abs(b - a).mean() for a, b in zip(frames, frames[1:])])

    assert flicker(stable) < flicker(raw) / 20


def test_scene_cut_resets_and_the_new_scene_is_steady():
    stabilizer = DepthStabilizer()
    first, second = scene(0), np.ascontiguousarray(scene(5)[::-1])  # another layout: near at the top
    for scale, shift in known_maps(4, seed=6):
        stabilizer((scale * first + shift).astype(np.float32))
    reference_out = stabilizer(first)  # on the common scale
    maps = known_maps(5, seed=7)
    outs = [stabilizer((scale * second + shift).astype(np.float32)) for scale, shift in maps]
    assert [out.reset for out in outs] == [True, False, False, False, False]
    # the cut frame is matched to the old scene's median and spread, the next frames to the cut frame
    for values in (reference_out.depth, outs[0].depth):
        assert np.isfinite(values).all()
    assert np.median(outs[0].depth) == pytest.approx(np.median(reference_out.depth), rel=0.02)
    for out in outs[1:]:
        np.testing.assert_allclose(out.depth, outs[0].depth, atol=2e-5 * np.ptp(outs[0].depth))
    stabilizer.reset()
    assert stabilizer(second).reset


def test_a_frame_changed_everywhere_but_with_the_same_layout_is_not_a_cut():
    # What a weak model does on a lighting change: the same layout, every value moved by more than
    # the static threshold. The old rule (too few static pixels = a cut) reset here.
    rng = np.random.default_rng(9)
    first = scene(0)
    distorted = first ** 1.6 + 0.3 * rng.random(first.shape, dtype=np.float32)
    stabilizer = DepthStabilizer(StabilizerSettings(static_threshold=0.05))
    stabilizer(first)
    out = stabilizer(distorted)
    unit = lambda values: (values - np.median(values)) / np.abs(values - np.median(values)).mean()
    assert (np.abs(unit(distorted) - unit(first)) >= 0.05).mean() > 0.7  # fewer than min_static static
    assert not out.reset and out.scale > 0
    assert stabilizer(np.ascontiguousarray(first[::-1])).reset  # upside down: another layout, a cut


def test_the_picture_tells_a_lighting_change_from_a_cut():
    # A weak model can answer a lighting change with another layout (depth correlation 0.55 seen):
    # with the video frame given, only a changed picture makes it a cut.
    rng = np.random.default_rng(10)
    picture = (rng.random((90, 120, 3)) * 255).astype(np.uint8)
    picture = cv2.GaussianBlur(picture, (0, 0), 4)
    brighter = np.clip(picture.astype(np.float32) * 1.5 + 20, 0, 255).astype(np.uint8)
    other_picture = np.ascontiguousarray(picture[::-1, ::-1])
    first = scene(0)
    changed = 0.5 * first + 2.0 * rng.random(first.shape, dtype=np.float32)  # correlation 0.42 with first
    stabilizer = DepthStabilizer()
    stabilizer(first, picture)
    out = stabilizer(changed, brighter)
    assert not out.reset and out.scale > 0  # same picture, brighter: not a cut
    stabilizer = DepthStabilizer()
    stabilizer(first, picture)
    assert stabilizer(changed, other_picture).reset  # another picture and layout: a cut
    stabilizer = DepthStabilizer()
    stabilizer(first)
    assert stabilizer(changed).reset  # no pictures given: the depth alone decides


def test_size_change_resets_and_flat_frames_keep_the_last_map():
    stabilizer = DepthStabilizer()
    stabilizer(scene(0))
    out = stabilizer(2 * scene(0) + 1)
    flat = stabilizer(np.full((90, 120), 4.0, np.float32))
    assert not flat.reset and (flat.scale, flat.shift) == (out.scale, out.shift)
    after = stabilizer(3 * scene(0))  # the reference was not spoilt by the flat frame
    assert not after.reset and np.allclose(after.depth, scene(0), atol=1e-4)
    assert stabilizer(scene(0, height=45, width=60)).reset


def test_unstabilize_round_trip_and_large_frames_fit_on_a_sample():
    rng = np.random.default_rng(8)
    depth = rng.random((700, 900), dtype=np.float32) + np.linspace(0, 2, 900, dtype=np.float32)
    stabilizer = DepthStabilizer(StabilizerSettings(fit_pixels=4096))
    stabilizer(depth)
    raw = (0.25 * depth + 7).astype(np.float32)
    out = stabilizer(raw)
    np.testing.assert_allclose(out.depth, depth, atol=1e-5)
    np.testing.assert_allclose(unstabilize(out.depth, out.scale, out.shift), raw, atol=1e-5)


def test_fit_scale_shift_is_least_squares():
    rng = np.random.default_rng(9)
    x = rng.random(200)
    y = 3 * x - 2 + 0.01 * rng.standard_normal(200)
    scale, shift = fit_scale_shift(x, y)
    expected = np.polyfit(x, y, 1)
    assert (scale, shift) == pytest.approx(tuple(expected), rel=1e-9)
    assert np.isnan(fit_scale_shift(np.ones(5), y[:5])[0])


def test_smoothing_of_unchanged_pixels_is_undone_by_recover_raw():
    from muggled_swinv2.video.depth_npz import pack_mask, recover_raw

    rng = np.random.default_rng(10)
    depth = scene(0)
    stabilizer = DepthStabilizer(StabilizerSettings(smoothing=0.7))
    archive, raws = {}, []
    for index, (scale, shift) in enumerate(known_maps(10, seed=11)):
        frame = depth + 0.01 * rng.standard_normal(depth.shape)
        frame[20:50, 10 * index:10 * index + 30] = 3.0  # a moving object: changed pixels are not smoothed
        raw = (scale * frame + shift).astype(np.float32)
        out = stabilizer(raw)
        if index:
            newly_covered = out.smoothed[20:50, 10 * index + 20:10 * index + 30]
            assert out.smoothed.mean() > 0.8 and not newly_covered.any()
            first_scale, first_shift = known_maps(10, seed=11)[0]
            expected = first_scale * 3.0 + first_shift  # the object on the first frame's scale, without lag
            np.testing.assert_allclose(out.depth[20:50, 10 * index + 20:10 * index + 30], expected, rtol=3e-3)
        raws.append(raw)
        archive[f"frame_{index:06d}"] = out.depth
        archive[f"smoothed_{index:06d}"] = pack_mask(out.smoothed)
        archive.setdefault("scale", []).append(out.scale)
        archive.setdefault("shift", []).append(out.shift)
    archive["smoothing"] = np.array(0.7)
    for recovered, raw in zip(recover_raw(archive), raws):
        np.testing.assert_allclose(recovered, raw, atol=2e-5 * np.ptp(raw))


def test_still_pixels_are_a_running_mean_then_an_exponential_average():
    rng = np.random.default_rng(12)
    depth = scene(0)
    frames = [(depth + 0.01 * rng.standard_normal(depth.shape)).astype(np.float32) for _ in range(30)]
    stabilizer = DepthStabilizer(StabilizerSettings(smoothing=0.9))
    for index, frame in enumerate(frames):
        out = stabilizer(frame)
        aligned = out.scale * frame.astype(np.float64) + out.shift
        assert out.smoothed.all() == (index > 0)
        if index == 0:
            expected = aligned
        elif index < 10:  # a plain mean of the frames so far: the first frame gets no extra weight
            expected = expected + (aligned - expected) / (index + 1)
        else:  # then an exponential average over about 1 / (1 - smoothing) frames
            expected = 0.9 * expected + 0.1 * aligned
        np.testing.assert_allclose(out.depth, expected, atol=1e-5)
    # the noise of the output is that of a mean of about 10 frames, not of one frame
    assert np.std(out.depth - depth) < 0.5 * np.std(frames[-1] - depth)


def picture_of(depth: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """A textured BGR picture whose brightness follows the depth map (what a camera would see)."""
    texture = np.random.default_rng(5).random(depth.shape) * 20
    grey = np.clip(gain * (40 + 30 * depth + texture), 0, 255).astype(np.uint8)
    return cv2.merge([grey, grey, grey])


def test_with_pictures_light_changes_are_smoothed_and_motion_is_not():
    rng = np.random.default_rng(13)
    depth = scene(0)
    stabilizer = DepthStabilizer()
    stabilizer(depth, picture_of(depth))
    spread = np.mean(np.abs(depth - np.median(depth)))
    for index in range(1, 6):
        # the model answers a change of light with depth changes of 1.2 deviations in a patch, up
        # and down (from the smoothed output: 1.2 to 1.8, more than change_threshold, less than
        # picture_change_threshold); the picture only got brighter (exposure, which does not count)
        answered = depth.copy()
        answered[60:80, 70:110] += 1.2 * spread * (-1) ** index
        frame = answered.copy()
        frame[10:40, 10 * index:10 * index + 30] += 0.5 * spread  # a moving object, nearer by 0.5 deviation
        shown = depth.copy()  # the picture: the true scene, with the object
        shown[10:40, 10 * index:10 * index + 30] += 2.0  # ... and visible in the picture
        out = stabilizer(frame + 0.001 * rng.standard_normal(depth.shape).astype(np.float32),
                         picture_of(shown, gain=1.0 + 0.05 * index))
        assert not out.reset
        assert out.smoothed[60:80, 70:110].all()  # the light's answer is smoothed
        front = out.smoothed[14:36, 10 * index + 22:10 * index + 26]  # the object's leading edge, 4 px in (blur)
        assert not front.any()
        np.testing.assert_allclose(out.depth[12:38, 10 * index + 22:10 * index + 26],
                                   frame[12:38, 10 * index + 22:10 * index + 26], atol=2e-2)
    # without the picture the same depth change counts as motion: not smoothed
    alone = DepthStabilizer()
    alone(depth)
    answered = depth.copy()
    answered[60:80, 70:110] += 1.5 * spread
    assert not alone(answered).smoothed[60:80, 70:110].any()


def test_a_new_picture_is_not_smoothed_with_the_old_scene_even_when_the_depth_looks_alike():
    """A cut that a weak model's depth does not show (the same layout): no reset, but nothing of
    the old scene is averaged into the new one, though some pixels' brightness matches by chance."""
    rng = np.random.default_rng(14)
    depth = scene(0)
    old_picture = (rng.random((90, 120, 3)) * 255).astype(np.uint8)
    new_picture = (rng.random((90, 120, 3)) * 255).astype(np.uint8)
    old_picture, new_picture = (cv2.GaussianBlur(p, (0, 0), 6) for p in (old_picture, new_picture))
    stabilizer = DepthStabilizer()
    for _ in range(5):
        stabilizer(depth + 0.01 * rng.standard_normal(depth.shape).astype(np.float32), old_picture)
    raw = depth + 0.01 * rng.standard_normal(depth.shape).astype(np.float32)
    out = stabilizer(raw, new_picture)
    assert not out.smoothed.any()
    np.testing.assert_allclose(out.depth, out.scale * raw + out.shift, atol=1e-5)
    after = stabilizer(raw + 0.01 * rng.standard_normal(depth.shape).astype(np.float32), new_picture)
    assert after.smoothed.mean() > 0.9  # the new scene itself is smoothed from the next frame on
