"""A frame whose depth scale cannot be fitted (its depth runs against the reference while the
picture barely changed, as a weak model or a small network size gives on a steady pan) is no
scene cut: it is called what it is, and the reference that still holds the scene is kept."""

import numpy as np

from muggled_swinv2.jobs.video import VideoSummary
from muggled_swinv2.video.depth_npz import pack_mask, recover_raw
from muggled_swinv2.video.stabilize import DepthStabilizer
from test_motion import panning_clip


def test_an_inverted_frame_on_a_steady_pan_is_unfitted_not_a_cut():
    pictures, raws, truths = panning_clip(frames=7)
    raws = list(raws)
    raws[4] = 9 - 3 * raws[4]  # the model got this frame backwards; the picture moved on as before
    stabilizer = DepthStabilizer()
    outs = [stabilizer(raw, picture) for picture, raw in zip(pictures, raws)]
    assert [out.reset for out in outs] == [True, False, False, False, False, False, False]
    assert [out.unfitted for out in outs] == [False, False, False, False, True, False, False]
    assert not outs[4].smoothed.any()  # taken as it is, mapped by median and spread
    inverted = raws[4].astype(np.float64)
    assert outs[4].scale > 0 and np.array_equal(outs[4].depth, (inverted * outs[4].scale + outs[4].shift).astype(np.float32))
    # the next frame is fitted against the reference that held the scene: the scale and shift of frame 3
    assert abs(outs[5].scale - outs[3].scale) < 0.02 and abs(outs[5].shift - outs[3].shift) < 0.05
    error = np.abs(outs[6].depth - (outs[6].scale * truths[6] + outs[6].shift))[8:-8, 8:-8]
    assert error.mean() < 0.8 * np.abs(raws[6] - truths[6])[8:-8, 8:-8].mean()  # smoothed along the pan again
    archive = {"smoothing": np.array(stabilizer.settings.smoothing), "scale": np.array([out.scale for out in outs]),
               "moving_smoothing": np.array(stabilizer.settings.moving_smoothing), "shift": np.array([out.shift for out in outs])}
    for index, out in enumerate(outs):  # as the video job writes its npz: the raw frames come back
        archive |= {f"frame_{index:06d}": out.depth, f"smoothed_{index:06d}": pack_mask(out.smoothed)}
        archive |= {f"flow_{index:06d}": out.flow_low} if out.flow_low is not None else {}
    for recovered, raw in zip(recover_raw(archive), raws):
        np.testing.assert_allclose(recovered, raw, atol=2e-4 * np.ptp(raw))


def test_the_summary_says_unfitted_frames_are_not_cuts():
    assert VideoSummary(40, 2.0, False, resets=0, unfitted=6).line() == (
        "wrote 40 frames, 20.00 frames/s, 6 frames whose depth scale could not be fitted (matched by median and "
        "spread instead)")
    assert VideoSummary(40, 2.0, False, resets=1, unfitted=1).line() == (
        "wrote 40 frames, 20.00 frames/s, 1 scene cut, 1 frame whose depth scale could not be fitted (matched by "
        "median and spread instead)")
