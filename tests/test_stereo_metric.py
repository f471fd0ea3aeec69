"""`stereo` with metric geometry from what the user knows: the camera from EXIF when neither --fov
nor --focal-px is given, and the model's (or a file's) relative depth calibrated by --known,
--known-file, --sparse-depth or --depth-range (cli/metric.py, jobs/metric.py), so that the
disparity is exactly f * B / z of the calibrated depth."""

import json
import math

import cv2
import numpy as np
import pytest

from cli_runs import run
from pictures import photo, write_video
from test_metric import exif_tiff, jpeg_with_exif

WIDTH, HEIGHT = 80, 60
DIAGONAL_35MM = math.hypot(36, 24)


def comfort(folder, name):
    return json.loads((folder / name).read_text())


def metric_scene(folder):
    """A JPEG with EXIF focal 28 mm (35 mm equivalent), its true depth in metres (2 m, a box at
    1 m) as a metric file and as exact inverse depth (1 / z)."""
    picture = folder / "scene.jpg"
    picture.write_bytes(jpeg_with_exif(exif_tiff("<", focal_35mm=28), WIDTH, HEIGHT))
    depth = np.full((HEIGHT, WIDTH), 2.0, np.float32)
    depth[20:40, 30:50] = 1.0
    np.save(folder / "metric.npy", depth)
    np.save(folder / "inverse.npy", 1 / depth)
    return picture, depth


def test_the_camera_comes_from_exif_when_no_fov_or_focal_is_given(tmp_path, capsys):
    picture, depth = metric_scene(tmp_path)
    out = tmp_path / "out"
    code, _, err = run(capsys, "stereo", picture, "--depth", tmp_path / "metric.npy", "--depth-kind", "metric",
                       "--baseline", 0.1, "--out", out, "-q")
    assert code == 0, err
    report = comfort(out, "scene_sbs_comfort.json")
    focal = 28 * math.hypot(WIDTH, HEIGHT) / DIAGONAL_35MM
    assert report["settings"]["focal_px"] == pytest.approx(focal)
    assert "EXIF 35 mm" in report["settings"]["focal_source"]
    assert report["nearest_pct"] == pytest.approx(100 * focal * 0.1 / 1.0 / WIDTH, rel=1e-5)
    assert report["farthest_pct"] == pytest.approx(100 * focal * 0.1 / 2.0 / WIDTH, rel=1e-5)
    code, _, _ = run(capsys, "stereo", picture, "--depth", tmp_path / "metric.npy", "--depth-kind", "metric",
                     "--fov", 90, "--out", tmp_path / "fov", "-q")
    fov_report = comfort(tmp_path / "fov", "scene_sbs_comfort.json")  # --fov wins over EXIF
    assert fov_report["settings"]["focal_px"] == pytest.approx(WIDTH / 2)


def test_known_points_make_relative_depth_metric_exactly(tmp_path, capsys):
    picture, _ = metric_scene(tmp_path)
    code, _, err = run(capsys, "stereo", picture, "--depth", tmp_path / "metric.npy", "--depth-kind", "metric",
                       "--out", tmp_path / "truth", "-q")
    assert code == 0, err
    code, _, err = run(capsys, "stereo", picture, "--depth", tmp_path / "inverse.npy", "--known", "5,5=2",
                       "--known", "40,30=1", "--known", "70,50=2", "--out", tmp_path / "known")
    assert code == 0, err
    assert "metric:" in err  # the fit's summary line
    truth = cv2.imread(str(tmp_path / "truth" / "scene_sbs.png"))
    known = cv2.imread(str(tmp_path / "known" / "scene_sbs.png"))
    assert np.abs(truth.astype(int) - known).max() <= 1  # the same f * B / z, up to the fit's rounding
    report = comfort(tmp_path / "known", "scene_sbs_comfort.json")
    assert report["settings"]["depth_kind"] == "metric" and "calibration" in report["settings"]


def test_a_depth_range_places_relative_depth_in_metres(tmp_path, capsys, small_checkpoint):
    picture, _ = metric_scene(tmp_path)
    code, _, err = run(capsys, "stereo", picture, "--depth", tmp_path / "inverse.npy", "--depth-range", "1.5,6",
                       "--baseline", 0.2, "--focal-px", 100, "--out", tmp_path / "file", "-q")
    assert code == 0, err
    report = comfort(tmp_path / "file", "scene_sbs_comfort.json")
    assert report["settings"]["focal_px"] == 100
    # two depths: the 99th percentile (the box) at 1.5 m, the 1st (the wall) at 6 m; disparity f B / z
    assert report["nearest_pct"] == pytest.approx(100 * 100 * 0.2 / 1.5 / WIDTH, rel=1e-5)
    assert report["farthest_pct"] == pytest.approx(100 * 100 * 0.2 / 6 / WIDTH, rel=1e-5)
    code, _, err = run(capsys, "stereo", picture, "-w", small_checkpoint, "--depth-range", "1.5,6", "--baseline", 0.2,
                       "--focal-px", 100, "--out", tmp_path / "model", "-q")  # the model's depth
    assert code == 0, err
    report = comfort(tmp_path / "model", "scene_sbs_comfort.json")
    assert report["settings"]["calibration"]["source"] == "depth range"
    # its 99th percentile at 1.5 m: the nearest 1% a little nearer still
    assert 100 * 100 * 0.2 / 1.5 / WIDTH <= report["nearest_pct"] <= 100 * 100 * 0.2 / 0.5 / WIDTH


@pytest.mark.parametrize("arguments, message", [
    (["--depth", "{metric}", "--depth-kind", "metric", "--depth-range", "1,5"], "is metric already"),
    (["--depth", "{inverse}", "--known", "500,5=2", "--known", "5,5=1"], "outside"),
    (["--depth", "{inverse}", "--depth-range", "1,5", "--divergence", "2"], "--divergence applies only to relative depth"),
    (["--depth", "{inverse}", "--depth-range", "5,1"], "--depth-range"),
    (["--depth", "{metric}", "--depth-kind", "metric", "--fov", "60", "--focal-px", "50"], "give one"),
])
def test_bad_calibration_is_refused_in_one_line_with_nothing_written(tmp_path, capsys, arguments, message):
    picture, _ = metric_scene(tmp_path)
    files = {"metric": tmp_path / "metric.npy", "inverse": tmp_path / "inverse.npy"}
    arguments = [argument.format(**files) for argument in arguments]
    try:
        code, _, err = run(capsys, "stereo", picture, *arguments, "--out", tmp_path / "out")
    except SystemExit as stop:  # argparse's own refusals
        code, err = stop.code, capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 or message in err.splitlines()[-1], err
    assert code == 2 and not (tmp_path / "out").exists()


def test_a_video_refuses_calibration(tmp_path, capsys):
    clip = write_video(tmp_path / "clip.avi", frames=3, fps=10)
    code, _, err = run(capsys, "stereo", clip, "--depth-range", "1,5", "--out", tmp_path / "out.mp4")
    assert code == 2 and "calibrate pictures" in err and not (tmp_path / "out.mp4").exists()
