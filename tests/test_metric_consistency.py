"""The metric options agree across image, video and stereo: stereo reads every float depth map
image writes (the metric map's NaN pixels included), one source of depth and one camera per
command, a depth range alone writes metric depth, the known-points header rule, each command's
help true for that command."""

import numpy as np
import pytest

import cv2
from cli_runs import listing
from muggled_swinv2.cli import main
from muggled_swinv2.geometry import CalibrationError
from muggled_swinv2.io.known_depth import read_known_points


def run(capsys, *arguments) -> tuple[int, str]:
    """(exit code, stderr) of one in-process command; argparse's refusals included."""
    try:
        code = main([str(argument) for argument in arguments])
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


def metric_map_with_nan(picture, d, checkpoint, out):
    """`image --raw metric` with a far known point at d's 20th percentile: the fit passes infinity
    below it, so the written map has NaN pixels ("no depth")."""
    near_y, near_x = np.unravel_index(np.argmax(d), d.shape)
    far_y, far_x = np.argwhere(d == np.sort(d, axis=None)[d.size // 5])[0]
    assert main(["image", str(picture), "-w", str(checkpoint), "--out", str(out), "--raw", "metric", "--quiet",
                 "--known", f"{near_x},{near_y}=1.0", "--known", f"{far_x},{far_y}=600"]) == 0
    return out / "room_metric.npy"


def test_stereo_takes_the_metric_map_image_writes_nan_drawn_as_infinitely_far(tmp_path, capsys, small_checkpoint,
                                                                                picture_and_prediction):
    picture, d = picture_and_prediction
    metric = np.load(metric_map_with_nan(picture, d, small_checkpoint, tmp_path / "m"))
    assert np.isnan(metric).sum() > 0.1 * metric.size and np.nanmin(metric) > 0
    code, err = run(capsys, "stereo", picture, "--depth", tmp_path / "m" / "room_metric.npy", "--depth-kind", "metric",
                    "--focal-px", 100, "--baseline", 0.5, "--out", tmp_path / "nan", "-q")
    assert code == 0, err
    # the same picture with +inf (the sky) where the map has NaN: the same stereo picture
    np.save(tmp_path / "inf.npy", np.where(np.isnan(metric), np.inf, metric).astype(np.float32))
    assert run(capsys, "stereo", picture, "--depth", tmp_path / "inf.npy", "--depth-kind", "metric",
               "--focal-px", 100, "--baseline", 0.5, "--out", tmp_path / "inf", "-q")[0] == 0
    with_nan, with_inf = (cv2.imread(str(tmp_path / folder / "room_sbs.png")) for folder in ("nan", "inf"))
    assert np.array_equal(with_nan, with_inf)
    left, right = with_nan[:, :80], with_nan[:, 80:]
    assert not np.array_equal(left, right)  # the known pixels moved: the map was used


def test_stereo_refuses_zero_or_negative_metric_depth_beside_nan(tmp_path, capsys, picture_and_prediction):
    picture, d = picture_and_prediction
    for value in (0.0, -1.0):
        depth = np.full(d.shape, 2.0, np.float32)
        depth[0, :5], depth[1, 1] = np.nan, value
        np.save(tmp_path / "bad.npy", depth)
        code, err = run(capsys, "stereo", picture, "--depth", tmp_path / "bad.npy", "--depth-kind", "metric",
                        "--out", tmp_path / "out")
        assert code == 2 and "it has zero or negative values" in err and len(err.strip().splitlines()) == 1, err
    np.save(tmp_path / "none.npy", np.full(d.shape, np.nan, np.float32))
    code, err = run(capsys, "stereo", picture, "--depth", tmp_path / "none.npy", "--depth-kind", "metric",
                    "--out", tmp_path / "out")
    assert code == 2 and "no pixel has a depth" in err
    assert not (tmp_path / "out").exists()


def test_stereo_takes_every_float_map_image_writes(tmp_path, capsys, small_checkpoint, picture_and_prediction):
    picture, _ = picture_and_prediction
    assert main(["image", str(picture), "-w", str(small_checkpoint), "--out", str(tmp_path / "raw"),
                 "--raw", "npy,pfm,tiff", "--quiet"]) == 0
    pictures = []
    for name in ("room.npy", "room.pfm", "room.tiff"):
        out = tmp_path / name.replace(".", "_")
        code, err = run(capsys, "stereo", picture, "--depth", tmp_path / "raw" / name, "--out", out, "-q")
        assert code == 0, err
        pictures.append(cv2.imread(str(out / "room_sbs.png")))
    assert np.array_equal(pictures[0], pictures[1]) and np.array_equal(pictures[0], pictures[2])


def test_a_depth_file_that_is_no_depth_map_is_refused_in_one_clean_line(tmp_path, capsys, picture_and_prediction):
    picture, _ = picture_and_prediction
    (tmp_path / "photo.npy").write_bytes(picture.read_bytes())  # a picture under a .npy name
    cv2.imwrite(str(tmp_path / "eight_bit.tiff"), np.zeros((48, 80), np.uint8))
    cases = [(picture, f"--depth {picture}: not a depth map file; --depth takes a float depth map: .npy, .pfm, .tif"),
             (tmp_path / "photo.npy", f"--depth {tmp_path / 'photo.npy'}: cannot be read (not a NumPy .npy file)"),
             (tmp_path / "eight_bit.tiff", "expected an (H, W) map of float numbers, got uint8")]
    for depth, message in cases:
        code, err = run(capsys, "stereo", picture, "--depth", depth, "--out", tmp_path / "out")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert "pickle" not in err
    assert not (tmp_path / "out").exists()


def test_a_depth_range_alone_writes_metric_depth(tmp_path, capsys, small_checkpoint, picture_and_prediction):
    picture, _ = picture_and_prediction
    code, err = run(capsys, "image", picture, "-w", small_checkpoint, "--out", tmp_path / "out", "--depth-range", "1,5",
                    "--quiet")
    assert code == 0, err
    assert listing(tmp_path / "out") == ["room.png", "room_camera.json", "room_metric.npy"]
    metric = np.load(tmp_path / "out" / "room_metric.npy")
    assert np.percentile(metric, [1, 99]) == pytest.approx([1, 5], rel=0.05)  # d's 99th percentile at 1 m, 1st at 5


@pytest.mark.parametrize("command, arguments, message", [
    ("image", ["--sparse-depth", "SPARSE", "--depth-range", "1,5"], "--sparse-depth and --depth-range: give one source"),
    ("image", ["--known", "1,1=2", "--known", "5,5=3", "--depth-range", "1,5"],
     "--known/--known-file and --depth-range: give one source"),
    ("image", ["--known", "1,1=2", "--known", "5,5=3", "--sparse-depth", "SPARSE"],
     "--known/--known-file and --sparse-depth: give one source"),
    ("image", ["--depth-range", "1,5", "--fov", "70", "--focal-px", "300"], "--fov and --focal-px both give the camera"),
    ("image", ["--raw", "metric", "--fov", "70", "--focal-px", "300"], "--fov and --focal-px both give the camera"),
    ("image", ["--fov", "70"], "--fov: the camera of the metric outputs and ply/mesh"),
    ("video", ["--depth-range", "1,5", "--fov", "70", "--focal-px", "300"], "--fov and --focal-px both give the camera"),
    ("video", ["--sparse-depth", "SPARSE", "--depth-range", "1,5"], "--sparse-depth and --depth-range: give one source"),
    ("stereo", ["--sparse-depth", "SPARSE", "--depth-range", "1,5"], "--sparse-depth and --depth-range: give one source"),
])
def test_two_sources_of_depth_or_of_the_camera_are_refused(tmp_path, capsys, small_checkpoint, picture_and_prediction,
                                                           command, arguments, message):
    picture, d = picture_and_prediction
    np.save(tmp_path / "sparse.npy", np.full(d.shape, 2.0, np.float32))
    arguments = [tmp_path / "sparse.npy" if argument == "SPARSE" else argument for argument in arguments]
    source = tmp_path / "clip.mp4" if command == "video" else picture
    code, err = run(capsys, command, source, *arguments, "-w", small_checkpoint, "--out", tmp_path / "out.mp4")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out.mp4").exists()


def test_only_a_first_line_of_names_is_a_header(tmp_path):
    file = tmp_path / "known.csv"
    file.write_text("x,y,depth\n160,220,1.4\n60;150;3\n")
    assert read_known_points(file).tolist() == [[160, 220, 1.4], [60, 150, 3]]
    for text, line in [("160 220 1.4\n60,150,3\n", 1), ("x,y,z\nx,y,z\n1,2,3\n", 2), ("# c\n\nnan,inf,x\n1,2,3\n", 3),
                       ("x1,y1,z1\n1,2,3\n", 1)]:
        file.write_text(text)
        with pytest.raises(CalibrationError, match=f"line {line}: expected x,y,z"):
            read_known_points(file)


def test_each_command_s_help_is_true_for_it(capsys):
    helps = {}
    for command in ("image", "video", "stereo"):
        try:
            main([command, "--help"])
        except SystemExit:
            pass
        helps[command] = " ".join(capsys.readouterr().out.split())
    assert "gray writes a 1-channel PNG" in helps["image"] and "1-channel" not in helps["video"]
    assert "ply/mesh" not in helps["video"] and "ply/mesh" not in helps["stereo"] and "ply/mesh" in helps["image"]
    assert "n-th frame" in helps["video"] and "n-th" not in helps["stereo"] and "n-th" not in helps["image"]
    assert "use this depth map instead of the model: a float .npy, .pfm or .tif/.tiff" in helps["stereo"]
