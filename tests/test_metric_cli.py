"""`image` with what the user knows, end to end on real files: known points, a CSV, a folder of
sparse maps (metres and millimetres, another resolution), a depth range, the camera from --fov and
from EXIF bytes built here; the outputs' numbers against the prediction written beside them; and
every bad input: one line, exit code 2, nothing written."""

import json
import math

import numpy as np
import pytest

import cv2
from muggled_swinv2.cli import main
from muggled_swinv2.cli import metric as cli_metric
from test_metric import exif_tiff, jpeg_with_exif

SCALE, SHIFT = 0.4, 0.1  # the calibration the tests' known depths are made from: 1/z = SCALE * d + SHIFT
HEIGHT, WIDTH = 48, 80


def true_depth(inverse_depth):
    return 1.0 / (SCALE * inverse_depth.astype(np.float64) + SHIFT)


def written(folder) -> list[str]:
    """The files in an output folder, less the ledger of what this tool wrote."""
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


def run(arguments, checkpoint) -> int:
    return main(["image", *map(str, arguments), "-w", str(checkpoint)])


def test_known_points_give_the_exact_calibration(tmp_path, capsys, small_checkpoint, picture_and_prediction):
    picture, d = picture_and_prediction
    z = true_depth(d)
    known = [f"{x},{y}={float(z[y, x])!r}" for x, y in [(2, 3), (70, 10), (40, 44), (10, 30)]]
    out = tmp_path / "out"
    code = run([picture, "--out", out, "--raw", "metric,metric-png16", "--fov", "90",
                *[item for point in known for item in ("--known", point)]], small_checkpoint)
    assert code == 0
    camera = json.loads((out / "room_camera.json").read_text())
    assert camera["scale"] == pytest.approx(SCALE, rel=1e-9) and camera["shift"] == pytest.approx(SHIFT, rel=1e-9)
    assert (camera["fx"], camera["fy"], camera["cx"], camera["cy"]) == pytest.approx((40, 40, 40, 24))
    assert (camera["width"], camera["height"], camera["focal_source"]) == (WIDTH, HEIGHT, "--fov 90 degrees")
    assert [(point["x"], point["y"]) for point in camera["known_points"]] == [(2, 3), (70, 10), (40, 44), (10, 30)]
    assert max(point["relative_error"] for point in camera["known_points"]) < 1e-9
    assert camera["leave_one_out_error"] < 1e-9 and camera["no_depth_pixels"] == 0
    metric = np.load(out / "room_metric.npy")
    assert metric.dtype == np.float32 and metric.shape == (HEIGHT, WIDTH)
    np.testing.assert_allclose(metric, true_depth(d), rtol=1e-6)
    millimetres = cv2.imread(str(out / "room_metric_mm.png"), cv2.IMREAD_UNCHANGED)
    assert millimetres.dtype == np.uint16
    np.testing.assert_array_equal(millimetres, np.round(metric.astype(np.float64) * 1000).astype(np.uint16))
    assert written(out) == [
        "room.png", "room_camera.json", "room_metric.npy", "room_metric_mm.png"]
    assert "room.png: metric: affine fit to 4 known points" in capsys.readouterr().err


def test_a_known_points_file_alone_writes_metric_npy_and_the_camera(tmp_path, small_checkpoint, picture_and_prediction):
    picture, d = picture_and_prediction
    z = true_depth(d)
    csv = tmp_path / "points.csv"
    csv.write_text("x,y,z\n" + "".join(f"{x},{y},{float(z[y, x])!r}\n" for x, y in [(5, 5), (60, 40)]))
    out = tmp_path / "out"
    assert run([picture, "--out", out, "--known-file", csv, "--quiet"], small_checkpoint) == 0
    assert written(out) == ["room.png", "room_camera.json", "room_metric.npy"]
    camera = json.loads((out / "room_camera.json").read_text())
    assert camera["scale"] == pytest.approx(SCALE, rel=1e-6) and camera["points"] == 2
    assert "assumed a 60-degree" in camera["focal_source"]


def test_a_folder_of_sparse_maps_in_metres_and_millimetres(tmp_path, small_checkpoint, picture_and_prediction):
    picture, d = picture_and_prediction
    pictures, maps = tmp_path / "pictures", tmp_path / "maps"
    pictures.mkdir(), maps.mkdir()
    for name in ("a.png", "b.png"):
        (pictures / name).write_bytes(picture.read_bytes())
    z = true_depth(d)
    sparse = np.full(z.shape, np.nan, np.float32)
    sparse[::4, ::4] = z[::4, ::4]
    sparse[8, 8] = 100.0  # a flying pixel
    np.save(maps / "a.npy", sparse)
    millimetres = np.zeros(z.shape, np.uint16)
    millimetres[::2, ::2] = np.round(z[::2, ::2] * 1000)
    cv2.imwrite(str(maps / "b.png"), np.repeat(np.repeat(millimetres, 2, 0), 2, 1))  # twice the resolution
    out = tmp_path / "out"
    assert run([pictures, "--out", out, "--sparse-depth", maps, "--raw", "metric", "--quiet"], small_checkpoint) == 0
    a = json.loads((out / "a_camera.json").read_text())
    assert (a["scale"], a["shift"]) == pytest.approx((SCALE, SHIFT), rel=1e-5)
    assert (a["source"], a["points"], a["outliers"]) == ("sparse depth", 12 * 20, 1)
    b = json.loads((out / "b_camera.json").read_text())
    assert (b["points"], b["outliers"]) == (24 * 40, 0)
    relative = np.abs(np.load(out / "b_metric.npy") / z - 1)
    assert np.median(relative) < 2e-3 and relative.max() < 0.02  # millimetres rounded


def test_depth_range_and_the_exif_focal_length(tmp_path, small_checkpoint):
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(jpeg_with_exif(exif_tiff("<", focal_35mm=28), WIDTH, HEIGHT))
    out = tmp_path / "out"
    assert run([picture, "--out", out, "--depth-range", "0.5,8", "--raw", "npy,metric", "--quiet"],
               small_checkpoint) == 0
    camera = json.loads((out / "photo_camera.json").read_text())
    assert camera["fx"] == pytest.approx(28 * math.hypot(WIDTH, HEIGHT) / math.hypot(36, 24), rel=1e-9)
    assert camera["focal_source"] == "EXIF 35 mm equivalent focal length 28 mm"
    low, high = np.percentile(np.load(out / "photo.npy").astype(np.float64), [1, 99])  # the JPEG's own prediction
    assert 1 / (camera["scale"] * high + camera["shift"]) == pytest.approx(0.5, rel=1e-6)
    assert 1 / (camera["scale"] * low + camera["shift"]) == pytest.approx(8, rel=1e-6)
    assert "assumed the prediction's 99th percentile at 0.5 m" in camera["notes"][0]


def test_one_point_with_the_scale_fit_and_a_turned_photo(tmp_path, capsys, small_checkpoint):
    picture = tmp_path / "turned.jpg"  # stored 80 wide and 48 high, shown 48 wide and 80 high
    picture.write_bytes(jpeg_with_exif(exif_tiff("<", orientation=6), WIDTH, HEIGHT))
    out = tmp_path / "out"
    assert run([picture, "--out", out, "--known", "40,70=3", "--fit", "scale", "--raw", "npy"], small_checkpoint) == 0
    d = np.load(out / "turned.npy")
    assert d.shape == (80, 48)
    camera = json.loads((out / "turned_camera.json").read_text())
    assert camera["shift"] == 0 and camera["scale"] == pytest.approx(1 / (3 * float(d[70, 40])), rel=1e-6)
    assert "assumed shift 0" in camera["notes"][0] and "assumed shift 0" in capsys.readouterr().err
    code = run([picture, "--out", tmp_path / "other", "--known", "70,40=3", "--fit", "scale"], small_checkpoint)
    assert code == 2 and "known point 1 (70,40=3): outside the 48x80 picture" in capsys.readouterr().err


def test_without_metric_options_nothing_changes(tmp_path, small_checkpoint, picture_and_prediction):
    picture, _ = picture_and_prediction
    out = tmp_path / "out"
    assert run([picture, "--out", out, "--raw", "npy,ply", "--fov", "70", "--depth-range", "1,5", "--quiet"],
               small_checkpoint) == 0
    assert written(out) == ["room.npy", "room.ply", "room.png"]


@pytest.mark.parametrize("arguments, message", [
    (["--known", "80,10=2", "--known", "1,1=3"], "room.png: known point 1 (80,10=2): outside the 80x48 picture"),
    (["--known", "1,1=0", "--known", "5,5=2"], "known point 1 (1,1=0): the distance must be a positive finite"),
    (["--known", "1,1=-2", "--known", "5,5=2"], "known point 1 (1,1=-2): the distance must be a positive"),
    (["--known", "1,1=nan", "--known", "5,5=2"], "known point 1 (1,1=nan): the distance must be a positive"),
    (["--known", "1,1=inf", "--known", "5,5=2"], "known point 1 (1,1=inf): the distance must be a positive"),
    (["--known", "1,1=2"], "1 known point: an affine fit needs 2 or more"),
    (["--known", "1,1=2", "--known", "50,40=2"], "all known points are at one depth (2 m)"),
    (["--sparse-depth", "zeros.npy"], "sparse depth zeros.npy: no valid pixel"),
    (["--sparse-depth", "broken.npy"], "sparse depth broken.npy: cannot be read"),
    (["--sparse-depth", "maps"], "--sparse-depth maps: no sparse depth map named room"),
    (["--raw", "metric"], "--raw metric needs what you know"),
    (["--known", "1,1=2", "--known", "5,5=3", "--sparse-depth", "zeros.npy"], "give one source of known depth"),
    (["--known-file", "bad.csv"], "known points bad.csv line 2: expected x,y,z"),
    (["--known", "1,2"], "expected X,Y=Z"),
    (["--fov", "180", "--known", "1,1=2", "--known", "5,5=3"], "expected degrees between 0 and 180"),
    (["--fov", "0", "--known", "1,1=2", "--known", "5,5=3"], "expected degrees between 0 and 180"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, small_checkpoint,
                                                          picture_and_prediction, arguments, message):
    picture, _ = picture_and_prediction
    monkeypatch.chdir(tmp_path)
    np.save("zeros.npy", np.zeros((4, 4)))
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    (tmp_path / "maps").mkdir()
    (tmp_path / "bad.csv").write_text("1,1,2\n3,4\n")
    out = tmp_path / "out"
    try:
        code = run([picture, "--out", out, *arguments], small_checkpoint)
    except SystemExit as exit:  # argparse's refusals
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and message in err
    lines = [line for line in err.splitlines() if not line.startswith(("usage:", " "))]
    assert len(lines) == 1, err
    assert not out.exists() or not written(out)


def test_the_command_line_repeats_its_owners_choices():
    from muggled_swinv2.export.geometry import DEFAULT_DEPTH_RANGE, DEFAULT_FOV_DEG
    from muggled_swinv2.geometry.calibrate import FITS
    from muggled_swinv2.jobs.images import METRIC_KINDS

    assert cli_metric.FITS == FITS and cli_metric.METRIC_KINDS == METRIC_KINDS
    assert cli_metric.DEFAULT_FOV_DEG == DEFAULT_FOV_DEG and cli_metric.DEFAULT_DEPTH_RANGE == DEFAULT_DEPTH_RANGE



def test_the_fit_summary_respects_quiet_and_warnings_do_not(tmp_path, capsys, small_checkpoint, picture_and_prediction):
    picture, d = picture_and_prediction
    z = true_depth(d)
    known = [item for x, y in [(2, 3), (8, 5), (5, 9)] for item in ("--known", f"{x},{y}={float(z[y, x])!r}")]
    assert run([picture, "--out", tmp_path / "loud", *known], small_checkpoint) == 0
    loud = capsys.readouterr().err
    assert "room.png: metric: affine fit to 3 known points" in loud
    assert "room.png: metric: warning: " in loud and "small part of the picture" in loud
    assert run([picture, "--out", tmp_path / "quiet", *known, "--quiet"], small_checkpoint) == 0
    quiet = capsys.readouterr().err.splitlines()
    assert len(quiet) == 1 and "room.png: metric: warning: " in quiet[0] and "small part" in quiet[0]
