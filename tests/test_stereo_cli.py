"""`muggled-swinv2 stereo` end to end: the rendered room with its true depth, the demo model's
anaglyph, every format's files, the comfort JSON, and bad input refused before anything is written."""

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

import rendered_room as room
from cli_runs import run
from muggled_swinv2.cli.stereo import DEPTH_KINDS, EYES, STEREO_FORMATS
from muggled_swinv2.geometry.stereo import EYES as GEOMETRY_EYES
from muggled_swinv2.geometry.stereo_layouts import FORMATS
from muggled_swinv2.jobs.stereo import DEPTH_KINDS as JOB_DEPTH_KINDS
from pictures import photo


def test_the_command_line_choices_match_their_owners():
    assert STEREO_FORMATS == FORMATS and EYES == GEOMETRY_EYES and DEPTH_KINDS == JOB_DEPTH_KINDS


def test_stereo_help_imports_no_torch():
    code = ("import sys; from muggled_swinv2.cli import build_parser\n"
            "try:\n    build_parser().parse_args(['stereo', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'av' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--format" in result.stdout and result.stdout.strip().splitlines()[-1] == "False False"


@pytest.fixture(scope="module")
def rendered_room(tmp_path_factory):
    """The room at 640x480 from the left camera (picture and true metric depth as files) and,
    0.12 m to the right, the second camera's picture and depth."""
    folder = tmp_path_factory.mktemp("room")
    left, left_depth = room.render()
    right, right_depth = room.render(camera_x=0.12)
    cv2.imwrite(str(folder / "room.png"), left[:, :, ::-1])
    np.save(folder / "room_depth.npy", left_depth.astype(np.float32))
    return folder, left, left_depth, right, right_depth


def test_true_metric_depth_gives_the_input_on_the_left_and_the_moved_camera_on_the_right(rendered_room, tmp_path, capsys):
    folder, left, left_depth, right, right_depth = rendered_room
    code, _, err = run(capsys, "stereo", folder / "room.png", "--depth", folder / "room_depth.npy", "--depth-kind",
                       "metric", "--fov", 62, "--baseline", 0.12, "--eye", "left", "--format", "sbs",
                       "--dilation", 0, "--out", tmp_path)
    assert code == 0, err
    sbs = cv2.imread(str(tmp_path / "room_sbs.png"))[:, :, ::-1]
    assert sbs.shape == (480, 1280, 3)
    assert np.array_equal(sbs[:, :640], left)
    focal = room.focal_px(640, 62)
    both_see = room.covisible(left_depth, right_depth, focal, 0.12)
    assert room.psnr(sbs[:, 640:], right, both_see) >= 35.0
    report = json.loads((tmp_path / "room_sbs_comfort.json").read_text())
    nearest = 100 * focal * 0.12 / left_depth.min() / 640  # the nearest point: f B / z in % of the width
    assert report["nearest_pct"] == pytest.approx(nearest, rel=1e-5)
    assert report["farthest_pct"] == pytest.approx(100 * focal * 0.12 / left_depth.max() / 640, rel=1e-5)
    assert report["settings"]["baseline_m"] == 0.12 and report["settings"]["convergence_distance_m"] is None
    assert report["window_violation_left"] == 1.0  # parallel cameras: everything is in front of the screen
    assert "stereo: processed 1, failed 0" in err


def test_the_demo_model_makes_an_anaglyph(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "photo.png"), photo(64, 96))
    code, _, err = run(capsys, "stereo", tmp_path / "photo.png", "--format", "anaglyph", "--out", tmp_path / "out")
    assert code == 0, err
    anaglyph = cv2.imread(str(tmp_path / "out" / "photo_anaglyph.png"))
    assert anaglyph.shape == (64, 96, 3)
    report = json.loads((tmp_path / "out" / "photo_anaglyph_comfort.json").read_text())
    assert report["nearest_pct"] == pytest.approx(1.0, abs=1e-4) and report["farthest_pct"] == pytest.approx(-1.0, abs=1e-4)
    assert report["settings"]["divergence_pct"] == 2.0 and report["settings"]["convergence"] == 0.5
    assert "disparity -1.00% .. +1.00% of the width" in err


def inverse_depth_file(folder, height=24, width=40):
    depth = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))
    depth[8:16, 10:20] = 2.0
    np.save(folder / "depth.npy", depth)
    cv2.imwrite(str(folder / "pic.png"), photo(height, width))
    return folder / "pic.png", folder / "depth.npy"


EXPECTED_FILES = {  # format -> {file: (height, width)} for a 24x40 picture
    "sbs": {"pic_sbs.png": (24, 80)}, "half-sbs": {"pic_half-sbs.png": (24, 40)}, "tb": {"pic_tb.png": (48, 40)},
    "half-tb": {"pic_half-tb.png": (24, 40)}, "anaglyph": {"pic_anaglyph.png": (24, 40)},
    "cross": {"pic_cross.png": (24, 80)}, "pair": {"pic_left.png": (24, 40), "pic_right.png": (24, 40)},
}


@pytest.mark.parametrize("format", STEREO_FORMATS)
def test_every_format_writes_its_files(tmp_path, capsys, format):
    picture, depth = inverse_depth_file(tmp_path)
    out = tmp_path / "out"
    code, _, err = run(capsys, "stereo", picture, "--depth", depth, "--format", format, "--fov", 90, "--out", out)
    assert code == 0, err
    if format == "vr180":
        size = 2 * round(math.pi * 20 / 2)  # focal 20 px at 90 degrees over 40 pixels
        expected = {"pic_vr180_180x180_3dh_LR.png": (size, 2 * size)}
    elif format == "wiggle":
        ok, animation = cv2.imreadanimation(str(out / "pic_wiggle.gif"))
        assert ok and len(animation.frames) == 2 and animation.frames[0].shape[:2] == (24, 40)
        expected = {"pic_wiggle.gif": None}
    else:
        expected = EXPECTED_FILES[format]
    comfort = "pic_comfort.json" if format == "pair" else f"{next(iter(expected))[:-4]}_comfort.json"
    assert sorted(path.name for path in out.iterdir() if not path.name.startswith(".")) == sorted([*expected, comfort])
    for name, shape in expected.items():
        if shape is not None:
            assert cv2.imread(str(out / name)).shape[:2] == shape


def test_cross_is_sbs_with_the_eyes_swapped_and_pair_holds_the_eyes(tmp_path, capsys):
    picture, depth = inverse_depth_file(tmp_path)
    for format in ("sbs", "cross", "pair"):
        assert run(capsys, "stereo", picture, "--depth", depth, "--format", format, "--out", tmp_path / "out")[0] == 0
    sbs, cross = (cv2.imread(str(tmp_path / "out" / f"pic_{name}.png")) for name in ("sbs", "cross"))
    left, right = (cv2.imread(str(tmp_path / "out" / f"pic_{name}.png")) for name in ("left", "right"))
    assert np.array_equal(sbs[:, :40], left) and np.array_equal(sbs[:, 40:], right)
    assert np.array_equal(cross[:, :40], right) and np.array_equal(cross[:, 40:], left)
    assert np.array_equal(left, cv2.imread(str(picture)))  # --eye left: the picture itself


def test_auto_keeps_the_frame_edges_behind_the_screen(tmp_path, capsys):
    picture, depth = inverse_depth_file(tmp_path)
    assert run(capsys, "stereo", picture, "--depth", depth, "--auto", "--out", tmp_path / "out")[0] == 0
    report = json.loads((tmp_path / "out" / "pic_sbs_comfort.json").read_text())
    assert report["window_violation_left"] == report["window_violation_right"] == 0.0
    assert report["settings"]["auto"] and report["beyond_comfort_share"] == 0.0


def test_a_single_picture_may_be_written_to_a_file_name(tmp_path, capsys):
    picture, depth = inverse_depth_file(tmp_path)
    assert run(capsys, "stereo", picture, "--depth", depth, "--out", tmp_path / "mine.png")[0] == 0
    assert cv2.imread(str(tmp_path / "mine.png")).shape[:2] == (24, 80)
    assert (tmp_path / "mine_comfort.json").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--divergence", "0"], "--divergence must be a number in (0, 25], got 0"),
    (["--divergence", "-1"], "--divergence must be a number in (0, 25], got -1"),
    (["--divergence", "nan"], "--divergence must be a number in (0, 25], got nan"),
    (["--divergence", "1e9"], "--divergence must be a number in (0, 25], got 1e+09"),
    (["--convergence", "1.5"], "--convergence must be a number in [0, 1], got 1.5"),
    (["--depth-kind", "metric", "--baseline", "0", "--depth", "DEPTH"], "--baseline must be a number in (0, 100], got 0"),
    (["--depth-kind", "metric", "--baseline", "inf", "--depth", "DEPTH"], "--baseline must be a number in (0, 100]"),
    (["--depth-kind", "metric"], "--depth-kind metric needs --depth FILE"),
    (["--baseline", "0.1"], "--baseline applies only to metric depth"),
    (["--depth-kind", "metric", "--depth", "DEPTH", "--divergence", "2"], "--divergence applies only to relative depth"),
    (["--auto", "--divergence", "3"], "--auto chooses --divergence and --convergence"),
])
def test_bad_settings_are_refused_in_one_line_before_anything_is_written(tmp_path, capsys, arguments, message):
    picture, depth = inverse_depth_file(tmp_path)
    arguments = [depth if argument == "DEPTH" else argument for argument in arguments]
    code, _, err = run(capsys, "stereo", picture, *arguments, "--out", tmp_path / "out")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_a_depth_file_that_does_not_fit_is_refused(tmp_path, capsys):
    picture, depth = inverse_depth_file(tmp_path)
    np.save(tmp_path / "small.npy", np.ones((12, 20), np.float32))
    np.save(tmp_path / "negative.npy", -np.ones((24, 40), np.float32))
    cv2.imwrite(str(tmp_path / "other.png"), photo(24, 40))
    cases = [
        (["--depth", tmp_path / "small.npy"], "20x12 does not match the picture's 40x24"),
        (["--depth", tmp_path / "negative.npy", "--depth-kind", "metric"], "metric depth must be positive metres"),
        ([tmp_path / "other.png", "--depth", depth], "one depth map for 2 pictures"),
    ]
    for arguments, message in cases:
        code, _, err = run(capsys, "stereo", picture, *arguments, "--out", tmp_path / "out")
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()


def test_the_output_rule_guards_every_file(tmp_path, capsys):
    picture, depth = inverse_depth_file(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "pic_sbs_comfort.json").write_text("someone's notes")
    code, _, err = run(capsys, "stereo", picture, "--depth", depth, "--out", tmp_path / "out")
    assert code == 2 and "pic_sbs_comfort.json: exists; pass --overwrite" in err
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["pic_sbs_comfort.json"]
    code, _, err = run(capsys, "stereo", picture, "--depth", depth, "--out", picture)
    assert code == 2 and "would overwrite the input picture" in err
    assert run(capsys, "stereo", picture, "--depth", depth, "--out", tmp_path / "out2")[0] == 0
    assert run(capsys, "stereo", picture, "--depth", depth, "--out", tmp_path / "out2")[0] == 2  # exists
    assert run(capsys, "stereo", picture, "--depth", depth, "--out", tmp_path / "out2", "--overwrite")[0] == 0


def test_a_half_sbs_video_keeps_frames_duration_and_sound(tmp_path, capsys):
    pytest.importorskip("av")
    from test_av_video import probe, write_clip

    source = write_clip(tmp_path / "clip.mp4", size_wh=(96, 64))
    code, _, err = run(capsys, "stereo", source, "--format", "half-sbs", "--out", tmp_path / "stereo.mp4")
    assert code == 0, err
    codec, frames, size, seconds, sound, sound_seconds = probe(tmp_path / "stereo.mp4")
    assert (codec, frames, size, sound) == ("h264", 20, (96, 64), "aac")
    assert seconds == pytest.approx(2.0, abs=1e-3) and sound_seconds == pytest.approx(2.0, abs=0.05)
    report = json.loads((tmp_path / "stereo_comfort.json").read_text())
    assert report["frames"] == 20 and report["settings"]["format"] == "half-sbs"
    assert "wrote 20 stereo frames" in err


def test_a_video_refuses_formats_of_several_pictures_and_depth_files(tmp_path, capsys):
    pytest.importorskip("av")
    from test_av_video import write_clip

    source = write_clip(tmp_path / "clip.mp4", seconds=0.3)
    code, _, err = run(capsys, "stereo", source, "--format", "wiggle", "--out", tmp_path / "out.mp4")
    assert code == 2 and "--format wiggle: a video holds one picture per frame" in err
    np.save(tmp_path / "depth.npy", np.ones((48, 64), np.float32))
    code, _, err = run(capsys, "stereo", source, "--depth", tmp_path / "depth.npy", "--out", tmp_path / "out.mp4")
    assert code == 2 and "a depth file is for one picture" in err
    code, _, err = run(capsys, "stereo", source, "--out", source)
    assert code == 2 and "would overwrite the input video" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4", "depth.npy"]
