"""`video` with what the user knows, end to end on real files: known points and a depth range fitted
on the first frame and held through the stabilised clip, a folder of sparse maps fitted frame by
frame; the npz's metric frames against the stabilised frames written beside them; the camera file;
scene cuts (ClipCalibration on its own); the npz layout both ways; every bad input: one line, exit
code 2, nothing written."""

import json

import numpy as np
import pytest

from muggled_swinv2.cli import main
from muggled_swinv2.geometry import apply_calibration
from muggled_swinv2.jobs.metric import ClipCalibration, MetricOptions
from muggled_swinv2.video.depth_npz import DepthNpzWriter, FrameMetric, read_metric, recover_raw
from pictures import write_video

SCALE, SHIFT = 0.4, 0.1  # 1/z = SCALE * frame + SHIFT: the metric depth the tests' knowledge is made from
FRAMES, WIDTH, HEIGHT = 6, 96, 64


def metric_of(frame, scale=SCALE, shift=SHIFT):
    return 1.0 / (scale * frame.astype(np.float64) + shift)


def written(folder) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


def run(capsys, arguments, checkpoint):
    code = main(["video", *map(str, arguments), "-w", str(checkpoint)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


@pytest.fixture(scope="module")
def clip(tmp_path_factory, small_checkpoint):
    """A clip and its stabilised frames as `video --raw npz` writes them (no metric options)."""
    folder = tmp_path_factory.mktemp("metric-video")
    source = write_video(folder / "clip.mp4", frames=FRAMES, size_wh=(WIDTH, HEIGHT))
    assert main(["video", str(source), "--out", str(folder / "plain.mp4"), "--raw", "npz", "-w", str(small_checkpoint),
                 "--quiet"]) == 0
    with np.load(folder / "plain.npz") as archive:
        frames = [archive[f"frame_{index:06d}"] for index in range(FRAMES)]
        assert read_metric(archive)[0] == []  # no metric options: no metric frames
    return source, frames


def test_known_points_fit_the_first_frame_and_hold_for_the_clip(tmp_path, capsys, small_checkpoint, clip):
    source, frames = clip
    z = metric_of(frames[0])
    known = [item for x, y in [(3, 4), (90, 10), (50, 60), (20, 40)] for item in ("--known", f"{x},{y}={float(z[y, x])!r}")]
    out = tmp_path / "depth.mp4"
    code, err = run(capsys, [source, "--out", out, "--fov", "90", *known], small_checkpoint)  # npz implied
    assert code == 0, err
    assert written(tmp_path) == ["depth.mp4", "depth.npz", "depth_camera.json"]
    with np.load(tmp_path / "depth.npz") as archive:
        metric, scales, shifts = read_metric(archive)
        outputs = [archive[f"frame_{index:06d}"] for index in range(FRAMES)]
    assert len(metric) == FRAMES
    np.testing.assert_allclose(scales, SCALE, rtol=1e-7)
    np.testing.assert_allclose(shifts, SHIFT, rtol=1e-7)
    for index in range(FRAMES):  # the stabilised frames with the first frame's fit
        np.testing.assert_array_equal(outputs[index], frames[index])
        assert metric[index].dtype == np.float32 and metric[index].shape == (HEIGHT, WIDTH)
        np.testing.assert_allclose(metric[index], metric_of(frames[index]), rtol=1e-5)
    camera = json.loads((tmp_path / "depth_camera.json").read_text())
    assert (camera["fx"], camera["cx"], camera["cy"], camera["width"], camera["height"]) == pytest.approx((48, 48, 32, 96, 64))
    assert camera["scale"] == pytest.approx(SCALE, rel=1e-7) and camera["frames"] == FRAMES
    assert [fit["frame"] for fit in camera["fits"]] == [0] and camera["scene_cuts_crossed"] == 0
    assert max(point["relative_error"] for point in camera["known_points"]) < 1e-9
    assert "metric: affine fit to 4 known points" in err and "on frame 1, for all frames" in err


def test_a_folder_of_sparse_maps_is_fitted_frame_by_frame(tmp_path, capsys, small_checkpoint, clip):
    source, frames = clip
    maps = tmp_path / "maps"
    maps.mkdir()
    fits = [(SCALE * (1 + 0.1 * index), SHIFT * (1 - 0.05 * index)) for index in range(FRAMES - 2)]
    for index, (scale, shift) in enumerate(fits):  # 4 maps for 6 frames: the last 2 keep the last fit
        sparse = np.full((HEIGHT, WIDTH), np.nan, np.float32)
        sparse[::4, ::4] = metric_of(frames[index], scale, shift)[::4, ::4]
        np.save(maps / f"{index:06d}.npy", sparse)
    out = tmp_path / "depth.mp4"
    code, err = run(capsys, [source, "--out", out, "--sparse-depth", maps, "--raw", "npz"], small_checkpoint)
    assert code == 0, err
    with np.load(tmp_path / "depth.npz") as archive:
        metric, scales, shifts = read_metric(archive)
    expected = fits + [fits[-1]] * 2
    np.testing.assert_allclose(scales, [scale for scale, _ in expected], rtol=1e-5)
    np.testing.assert_allclose(shifts, [shift for _, shift in expected], rtol=1e-5)
    for index in range(FRAMES):
        np.testing.assert_allclose(metric[index], metric_of(frames[index], *expected[index]), rtol=1e-4)
    camera = json.loads((tmp_path / "depth_camera.json").read_text())
    assert [fit["frame"] for fit in camera["fits"]] == [0, 1, 2, 3] and camera["frames_without_map"] == 2
    assert "assumed a 60-degree" in camera["focal_source"] and "2 frames after the last sparse map" in err


def test_depth_range_without_stabilisation_fits_each_frame(tmp_path, capsys, small_checkpoint, clip):
    source, _ = clip
    out = tmp_path / "depth.mp4"
    code, err = run(capsys, [source, "--out", out, "--depth-range", "0.5,4", "--no-stabilize", "--quiet"],
                    small_checkpoint)
    assert code == 0, err
    with np.load(tmp_path / "depth.npz") as archive:
        metric, _, _ = read_metric(archive)
        raw = [archive[f"frame_{index:06d}"] for index in range(FRAMES)]
    for depth, frame in zip(metric, raw):  # each frame's own 1st/99th percentiles at 4 m and 0.5 m
        low, high = np.percentile(frame.astype(np.float64), [1, 99])
        near = depth.reshape(-1)[np.argmin(np.abs(frame - high))]
        assert np.nanmin(depth) <= 0.5 * 1.01 and np.nanmax(depth) >= 4 * 0.99
        assert float(np.nanpercentile(depth, 50)) > 0.5
    camera = json.loads((tmp_path / "depth_camera.json").read_text())
    assert [fit["frame"] for fit in camera["fits"]] == list(range(FRAMES))


def test_scene_cuts_refit_a_depth_range_and_carry_a_first_frame_fit():
    rng = np.random.default_rng(1)
    frames = [rng.uniform(0.5, 2.0, (8, 10)) for _ in range(4)]
    resets = [True, False, True, False]  # the stabiliser restarted on frame 3 (a scene cut)
    ranged = ClipCalibration(MetricOptions(depth_range=(1.0, 5.0)), (8, 10), stabilized=True)
    z = metric_of(frames[0])
    known = ((1, 1, float(z[1, 1])), (8, 6, float(z[6, 8])))
    pointed = ClipCalibration(MetricOptions(known_points=known), (8, 10), stabilized=True)
    for index, (frame, reset) in enumerate(zip(frames, resets)):
        ranged(index, frame, reset)
        depth, fit = pointed(index, frame, reset)
        np.testing.assert_array_equal(depth, apply_calibration(frame, pointed.fits[0][1]))
    assert [index for index, _ in ranged.fits] == [0, 2] and ranged.cuts_carried == 0
    assert [index for index, _ in pointed.fits] == [0] and pointed.cuts_carried == 1
    assert "1 scene cut crossed with the first frame's fit" in pointed.summary(4)
    assert pointed.record(4)["scene_cuts_crossed"] == 1


def test_the_npz_layout_both_ways(tmp_path):
    path = tmp_path / "depth.npz"
    writer = DepthNpzWriter(path, settings=None)
    frames = [np.full((3, 4), value, np.float32) for value in (1.0, 2.0)]
    for frame, (scale, shift) in zip(frames, [(0.5, 0.1), (0.25, 0.2)]):
        depth = metric_of(frame, scale, shift).astype(np.float32)
        depth[0, 0] = np.nan
        writer.write(frame, None, FrameMetric(depth, scale, shift))
    writer.finish()
    with np.load(path) as archive:
        metric, scales, shifts = read_metric(archive)
        assert [f.tolist() for f in recover_raw(archive)] == [f.tolist() for f in frames]
    np.testing.assert_array_equal(scales, [0.5, 0.25]) and np.testing.assert_array_equal(shifts, [0.1, 0.2])
    assert np.isnan(metric[1][0, 0]) and metric[1][1, 1] == np.float32(1 / (0.25 * 2 + 0.2))


@pytest.mark.parametrize("arguments, message", [
    (["--known", "96,10=2", "--known", "1,1=3"], "clip.mp4: known point 1 (96,10=2): outside the 96x64 picture"),
    (["--known", "1,1=0", "--known", "5,5=2"], "known point 1 (1,1=0): the distance must be a positive finite"),
    (["--known", "1,1=2"], "1 known point: an affine fit needs 2 or more"),
    (["--known", "1,1=2", "--known", "5,5=3", "--no-stabilize"], "--known with --no-stabilize"),
    (["--sparse-depth", "one.npy", "--no-stabilize"], "--sparse-depth FILE with --no-stabilize"),
    (["--sparse-depth", "empty"], "--sparse-depth empty: no sparse depth maps in this folder"),
    (["--sparse-depth", "broken"], "sparse depth broken/000000.npy: cannot be read"),
    (["--sparse-depth", "zeros.npy"], "sparse depth zeros.npy: no valid pixel"),
    (["--fov", "70"], "--fov: the camera of the metric depth"),
    (["--fov", "180", "--depth-range", "1,4"], "expected degrees between 0 and 180"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, small_checkpoint, clip,
                                                          arguments, message):
    source, _ = clip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "000000.npy").write_bytes(b"not a map")
    np.save(tmp_path / "one.npy", np.ones((HEIGHT, WIDTH), np.float32))
    np.save(tmp_path / "zeros.npy", np.zeros((HEIGHT, WIDTH), np.float32))
    before = written(tmp_path)
    try:
        code, err = run(capsys, [source, "--out", "depth.mp4", *arguments], small_checkpoint)
    except SystemExit as exit:  # argparse's refusals: the usage, then one line
        code, err = exit.code, capsys.readouterr().err
    assert code == 2 and message in err, err
    assert len([line for line in err.splitlines() if not line.startswith(("usage:", " "))]) == 1, err
    assert written(tmp_path) == before
