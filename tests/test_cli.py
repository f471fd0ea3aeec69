"""End-to-end command line runs on real files written by the tests."""

import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from types import SimpleNamespace

import cv2
from muggled_swinv2 import load_model
from muggled_swinv2.cli import main
from muggled_swinv2.io.colormaps import COLORMAPS
from muggled_swinv2.io.images import read_pfm
from muggled_swinv2.io.ledger import LEDGER_NAME
from muggled_swinv2.video.depth_npz import recover_raw
from pictures import midas_square_pipeline, photo, read_video, write_video

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model(small_checkpoint):
    return load_model(small_checkpoint)


@pytest.fixture
def pictures(tmp_path):
    folder = tmp_path / "pictures"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "street.jpg"), photo(60, 90, seed=1))
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(photo(40, 40, seed=2), cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "deep.png"), photo(50, 70, seed=3).astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "alpha.png"), cv2.cvtColor(photo(30, 50, seed=4), cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(folder / "sub" / "street.png"), photo(45, 45, seed=5))
    return folder


def listing(folder) -> list[str]:
    """The files in a folder, less the ledger of the outputs we wrote there."""
    return sorted(path.name for path in Path(folder).iterdir() if path.name != LEDGER_NAME)


def min_max(depth: np.ndarray) -> np.ndarray:
    """Depth scaled to [0, 1] between its own min and max, in float64."""
    depth = depth.astype(np.float64)
    return (depth - depth.min()) / (depth.max() - depth.min())


def assert_inferno_of(picture: np.ndarray, unit: np.ndarray) -> None:
    """`picture` is OpenCV's inferno map of `unit` (1 = near = bright), to one of its 256 steps:
    each pixel's nearest entry of the map's table must be within one step of unit * 255."""
    table = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_INFERNO)[:, 0].astype(int)
    assert picture.shape == (*unit.shape, 3)
    distances = np.abs(picture.reshape(-1, 1, 3).astype(int) - table[None]).sum(axis=2)
    steps = distances.argmin(axis=1).reshape(unit.shape)
    assert np.abs(steps - unit * 255).max() <= 1


def run(capsys, *args):
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


# ----------------------------------------------------------------------------- images


def test_every_output_format_matches_predict(tmp_path, capsys, small_checkpoint, model, pictures):
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out,
                       "--raw", "npy,pfm,png16,tiff")
    assert code == 0, err
    expected = model.predict(cv2.imread(str(pictures / "street.jpg")))
    assert np.array_equal(np.load(out / "street.npy"), expected)
    assert np.array_equal(read_pfm(out / "street.pfm"), expected)
    assert np.array_equal(cv2.imread(str(out / "street.tiff"), cv2.IMREAD_UNCHANGED), expected)
    unit = min_max(expected)  # computed here, not by the package's colour code
    sixteen = cv2.imread(str(out / "street_16bit.png"), cv2.IMREAD_UNCHANGED)
    assert sixteen.dtype == np.uint16 and np.abs(sixteen - unit * 65535).max() <= 0.52  # rounding, after float32 maths
    assert_inferno_of(cv2.imread(str(out / "street.png")), unit)
    assert "processed 1, failed 0" in err


def test_pfm_layout_is_midas(tmp_path, capsys, small_checkpoint, pictures):
    out = tmp_path / "out"
    run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out, "--raw", "pfm,npy")
    data = (out / "street.pfm").read_bytes()
    header = b"Pf\n90 60\n-1\n"  # grayscale, width height, little-endian
    assert data.startswith(header) and len(data) == len(header) + 60 * 90 * 4
    rows_bottom_up = np.frombuffer(data[len(header):], "<f4").reshape(60, 90)
    assert np.array_equal(rows_bottom_up[::-1], np.load(out / "street.npy"))


def test_square_is_the_midas_pipeline(tmp_path, capsys, small_checkpoint, model, pictures):
    out = tmp_path / "out"
    run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out, "--square", "--raw", "npy")
    expected = midas_square_pipeline(model, cv2.imread(str(pictures / "street.jpg")))
    assert np.array_equal(np.load(out / "street.npy"), expected)


def test_size_option(tmp_path, capsys, small_checkpoint, model, pictures):
    out = tmp_path / "out"
    run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out, "--size", "96", "--raw", "npy")
    expected = model.predict(cv2.imread(str(pictures / "street.jpg")), size=96)
    assert np.array_equal(np.load(out / "street.npy"), expected)


def test_folder_recursive_collisions_and_formats(tmp_path, capsys, small_checkpoint, pictures):
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--out", out, "--recursive", "--raw", "npy")
    assert code == 0, err
    names = sorted(str(path.relative_to(out)) for path in out.rglob("*.png"))
    assert names == ["alpha.png", "deep.png", "gray.png", "street.png", "sub/street.png"]
    assert np.load(out / "deep.npy").shape == (50, 70)
    assert np.load(out / "alpha.npy").shape == (30, 50)


def test_same_stem_from_two_folders_does_not_overwrite(tmp_path, capsys, small_checkpoint, pictures):
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures / "street.jpg", pictures / "sub" / "street.png",
                       "-w", small_checkpoint, "--out", out, "--raw", "npy")
    assert code == 0, err
    assert np.load(out / "street.npy").shape == (60, 90)
    assert np.load(out / "street_2.npy").shape == (45, 45)


def test_glob_pattern(tmp_path, capsys, small_checkpoint, pictures):
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", str(pictures / "*.png"), "-w", small_checkpoint, "--out", out)
    assert code == 0, err
    assert listing(out) == ["alpha.png", "deep.png", "gray.png"]


def test_side_by_side_and_colormaps(tmp_path, capsys, small_checkpoint, pictures):
    pictures_out = {}
    for colormap in ("gray", "inferno", "magma", "turbo", "viridis"):
        out = tmp_path / colormap
        code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out,
                           "--side-by-side", "--colormap", colormap)
        assert code == 0, err
        picture = cv2.imread(str(out / "street.png"))
        assert picture.shape == (60, 180, 3)
        assert np.abs(picture[:, :90].astype(int) - cv2.imread(str(pictures / "street.jpg")).astype(int)).max() <= 1
        pictures_out[colormap] = picture[:, 90:]
    assert len({image.tobytes() for image in pictures_out.values()}) == 5
    assert set(pictures_out) <= set(COLORMAPS)


def test_batches_give_the_same_depth(tmp_path, capsys, small_checkpoint, pictures):
    for batch in (1, 3):
        run(capsys, "image", pictures, "-w", small_checkpoint, "--out", tmp_path / f"b{batch}", "--raw", "npy",
            "--batch-size", batch)
    for name in ("street", "gray", "deep", "alpha"):
        one, three = np.load(tmp_path / "b1" / f"{name}.npy"), np.load(tmp_path / "b3" / f"{name}.npy")
        assert np.allclose(one, three, atol=1e-5 * np.ptp(one)), name


def test_bad_file_is_reported_and_the_rest_continue(tmp_path, capsys, small_checkpoint, pictures):
    (pictures / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    (pictures / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--out", out)
    assert code == 1
    assert "broken.jpg: not an image OpenCV can decode" in err and "empty.png" in err
    assert "processed 4, failed 2" in err
    assert listing(out) == ["alpha.png", "deep.png", "gray.png", "street.png"]


def test_missing_input_is_reported(tmp_path, capsys, small_checkpoint, pictures):
    code, _, err = run(capsys, "image", pictures / "street.jpg", tmp_path / "nope.jpg", "-w", small_checkpoint,
                       "--out", tmp_path / "out")
    assert code == 1 and "nope.jpg: no such file or folder" in err
    assert (tmp_path / "out" / "street.png").exists()


def test_no_inputs_at_all(tmp_path, capsys, small_checkpoint):
    code, _, err = run(capsys, "image", tmp_path / "nope.jpg", "-w", small_checkpoint, "--out", tmp_path / "out")
    assert code == 2 and "no input images found" in err


def test_existing_outputs_skipped_unless_overwrite(tmp_path, capsys, small_checkpoint, pictures):
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out)
    assert code == 0 and "processed 1" in err
    first = (out / "street.png").stat().st_mtime_ns
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out)
    assert code == 0 and "skipped 1" in err and (out / "street.png").stat().st_mtime_ns == first
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out, "--overwrite")
    assert code == 0 and "processed 1" in err and cv2.imread(str(out / "street.png")) is not None
    assert listing(out) == ["street.png"]


def test_a_file_we_did_not_write_is_never_replaced(tmp_path, capsys, small_checkpoint):
    """Defect 2: an unrelated photo.png in --out was 'skipped', then replaced by --overwrite."""
    folder = tmp_path / "same2"
    folder.mkdir()
    cv2.imwrite(str(folder / "photo.jpg"), photo(30, 40, seed=1))
    users_photo = photo(30, 40, seed=9).astype(np.uint16) * 257
    cv2.imwrite(str(folder / "photo.png"), users_photo)
    original = (folder / "photo.png").read_bytes()
    for extra in ([], ["--overwrite"], ["--overwrite"]):
        code, _, err = run(capsys, "image", folder / "photo.jpg", "-w", small_checkpoint, "--out", folder, *extra)
        assert code == 0, err
        assert "photo.png exists and was not written by muggled-swinv2; writing" in err and "photo_2.png" in err
        assert (folder / "photo.png").read_bytes() == original
    assert cv2.imread(str(folder / "photo_2.png")).shape == (30, 40, 3)
    (folder / "photo_2.png").write_bytes(b"the user's file now")  # changed by someone else: no longer ours
    code, _, err = run(capsys, "image", folder / "photo.jpg", "-w", small_checkpoint, "--out", folder, "--overwrite")
    assert code == 0 and (folder / "photo_2.png").read_bytes() == b"the user's file now"
    assert listing(folder) == ["photo.jpg", "photo.png", "photo_2.png", "photo_3.png"]


def test_an_output_name_too_long_fails_only_its_image(tmp_path, capsys, small_checkpoint):
    """Defect 4: one output name over the file system's limit aborted the whole batch (exit 2)."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    long_stem = "x" * 249  # 249 + "_16bit.png" > 255 bytes
    cv2.imwrite(str(folder / f"{long_stem}.png"), photo(20, 30, seed=1))
    cv2.imwrite(str(folder / "zzz.png"), photo(20, 30, seed=2))
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", folder, "-w", small_checkpoint, "--out", out, "--raw", "png16")
    assert code == 1, err
    assert "File name too long" in err and "processed 1, failed 1" in err
    assert listing(out) == ["zzz.png", "zzz_16bit.png"]


def test_glob_takes_only_images_like_a_folder(tmp_path, capsys, small_checkpoint, pictures):
    (pictures / "notes.txt").write_text("not an image")
    (pictures / "clip.mp4").write_bytes(b"\0" * 100)
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", str(pictures / "*"), "-w", small_checkpoint, "--out", out)
    assert code == 0, err
    assert listing(out) == ["alpha.png", "deep.png", "gray.png", "street.png"]
    code, _, err = run(capsys, "image", str(pictures / "*.txt"), "-w", small_checkpoint, "--out", out)
    assert code == 2 and "*.txt: matches no image files (1 other files)" in err


def test_gif_and_multi_page_tiff(tmp_path, capsys, small_checkpoint):
    folder = tmp_path / "animated"
    folder.mkdir()
    animation = cv2.Animation()
    animation.frames = [photo(24, 32, seed=index) for index in range(3)]
    animation.durations = [100] * 3
    assert cv2.imwriteanimation(str(folder / "moving.gif"), animation)
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", folder, "-w", small_checkpoint, "--out", out)  # a folder with only a GIF
    assert code == 0, err
    assert "moving.gif: has 3 frames; only the first is used" in err and listing(out) == ["moving.png"]
    cv2.imwritemulti(str(folder / "scan.tiff"), [photo(24, 32, seed=index) for index in range(2)])
    code, _, err = run(capsys, "image", folder / "scan.tiff", "-w", small_checkpoint, "--out", out)
    assert code == 0 and err.count("scan.tiff: has 2 pages; only the first is used") == 1


def test_gray_colormap_is_one_channel_and_range_invert(tmp_path, capsys, small_checkpoint, model, pictures):
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out,
                       "--colormap", "gray")
    assert code == 0, err
    gray = cv2.imread(str(out / "street.png"), cv2.IMREAD_UNCHANGED)
    expected = model.predict(cv2.imread(str(pictures / "street.jpg")))
    assert gray.shape == (60, 90) and np.abs(gray - min_max(expected) * 255).max() <= 0.51
    low, high = float(expected.min()), float(expected.max()) * 2
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out / "fixed",
                       "--colormap", "gray", "--range", f"{low},{high}", "--invert", "--raw", "png16")
    assert code == 0, err
    fixed = cv2.imread(str(out / "fixed" / "street.png"), cv2.IMREAD_UNCHANGED)
    unit = 1 - np.clip((expected - low) / (high - low), 0, 1)
    assert np.abs(fixed.astype(int) - np.round(unit * 255)).max() <= 1
    sixteen = cv2.imread(str(out / "fixed" / "street_16bit.png"), cv2.IMREAD_UNCHANGED)
    assert np.abs(sixteen.astype(int) - np.round(unit * 65535)).max() <= 2
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out / "pct",
                       "--range", "2%,98%")
    assert code == 0, err
    low, high = np.percentile(expected.astype(np.float64), [2, 98])
    assert_inferno_of(cv2.imread(str(out / "pct" / "street.png")), np.clip((expected - low) / (high - low), 0, 1))


@pytest.mark.parametrize("text", ["1", "a,b", "5,1", "2%,101%"])
def test_bad_range_is_a_usage_error(capsys, pictures, text):
    with pytest.raises(SystemExit) as caught:
        main(["image", str(pictures), "--range", text])
    assert caught.value.code == 2 and "--range" in capsys.readouterr().err


def test_never_overwrites_an_input(tmp_path, capsys, small_checkpoint, pictures):
    original = (pictures / "gray.png").read_bytes()
    code, _, err = run(capsys, "image", pictures / "gray.png", "-w", small_checkpoint, "--out", pictures, "--overwrite")
    assert code == 0 and "gray.png exists and was not written by muggled-swinv2; writing" in err
    assert (pictures / "gray.png").read_bytes() == original and (pictures / "gray_2.png").exists()
    ours = (pictures / "gray_2.png").read_bytes()  # one of our outputs, given as the input
    code, _, err = run(capsys, "image", pictures / "gray_2.png", "-w", small_checkpoint, "--out", pictures, "--overwrite")
    assert code == 1 and "would overwrite an input" in err and (pictures / "gray_2.png").read_bytes() == ours


def test_output_folder_inside_input_folder_is_not_read_back(tmp_path, capsys, small_checkpoint, pictures):
    out = pictures / "depth"
    for _ in range(2):
        code, _, err = run(capsys, "image", pictures, "-r", "-w", small_checkpoint, "--out", out)
        assert code == 0, err
    assert not list(out.rglob("depth"))  # no depth/depth/... from reading outputs as inputs


def test_out_is_a_file(tmp_path, capsys, small_checkpoint, pictures):
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--out", tmp_path / "file")
    assert code == 2 and "not a folder" in err


def test_quiet_prints_nothing_on_success(tmp_path, capsys, small_checkpoint, pictures):
    code, out, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", tmp_path / "o", "-q")
    assert code == 0 and out == "" and err == ""


def test_no_partial_files_left(tmp_path, capsys, small_checkpoint, pictures):
    out = tmp_path / "out"
    run(capsys, "image", pictures, "-r", "-w", small_checkpoint, "--out", out, "--raw", "npy,pfm,png16,tiff")
    assert not [path for path in out.rglob("*") if "partial" in path.name or
                (path.name.startswith(".") and path.name != LEDGER_NAME)]
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "street.png").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


@pytest.mark.parametrize("option, value", [("--raw", "jpeg"), ("--batch-size", "0"), ("--colormap", "rainbow"),
                                           ("--size", "-5"), ("--dtype", "int8")])
def test_bad_options_are_usage_errors(tmp_path, capsys, small_checkpoint, pictures, option, value):
    with pytest.raises(SystemExit) as caught:
        main(["image", str(pictures), "-w", str(small_checkpoint), option, value])
    assert caught.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_square_and_size_together_are_a_usage_error(tmp_path, capsys, small_checkpoint, pictures):
    with pytest.raises(SystemExit) as caught:
        main(["image", str(pictures), "-w", str(small_checkpoint), "--square", "--size", "96"])
    assert caught.value.code == 2 and "not allowed with argument --square" in capsys.readouterr().err


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that announces width x height pixels and holds almost none."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 31)) + chunk(b"IEND", b"")


def test_images_that_cannot_be_used_fail_alone(tmp_path, capsys, small_checkpoint, pictures):
    photo_float = photo(20, 30).astype(np.float32) / 255
    photo_float[3, 4] = np.nan
    cv2.imwrite(str(pictures / "signed.tiff"), photo(20, 30).astype(np.int16) - 100)
    cv2.imwrite(str(pictures / "nan.tiff"), photo_float)
    (pictures / "bomb.png").write_bytes(png_header_only(100_000, 100_000))  # more pixels than OpenCV decodes
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--out", out, "--batch-size", "3")
    assert code == 1
    assert "signed.tiff: int16 pixels are not supported" in err
    assert "nan.tiff: holds NaN or infinite pixel values" in err
    assert "bomb.png: more pixels than OpenCV decodes" in err
    assert "processed 4, failed 3" in err
    assert listing(out) == ["alpha.png", "deep.png", "gray.png", "street.png"]


def test_opencv_warnings_do_not_reach_stderr(tmp_path, small_checkpoint, pictures):
    (pictures / "truncated.png").write_bytes((pictures / "gray.png").read_bytes()[:200])
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    commands = [["image", str(pictures / "truncated.png"), str(pictures / "gray.png"), "--out", str(tmp_path / "o")],
                ["video", str(corrupt), "--out", str(tmp_path / "o.mp4")]]
    for command in commands:  # a fresh process each: OpenCV and FFmpeg set up their logging once
        result = subprocess.run([sys.executable, "-m", "muggled_swinv2", *command, "-w", str(small_checkpoint), "-q"],
                                capture_output=True, text=True, timeout=300)
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert ("truncated.png: not an image" if command[0] == "image" else "corrupt.mp4: cannot open") in lines[0]


def test_failed_prediction_fails_only_its_image(tmp_path, capsys, monkeypatch, small_checkpoint, pictures):
    import muggled_swinv2.jobs.images as image_job

    real_predict = image_job.predict_batch

    def out_of_memory_on_the_square_one(model, images, *args):
        if any(image.shape[:2] == (45, 45) for image in images):
            raise RuntimeError("not enough memory: you tried to allocate 1 TB\nsecond line")
        return real_predict(model, images, *args)

    monkeypatch.setattr(image_job, "predict_batch", out_of_memory_on_the_square_one)
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures, "-r", "-w", small_checkpoint, "--out", out, "--batch-size", "5")
    assert code == 1
    assert "street.png: depth estimation failed (not enough memory: you tried to allocate 1 TB)" in err
    assert "processed 4, failed 1" in err and "second line" not in err
    assert sorted(path.name for path in out.glob("*.png")) == ["alpha.png", "deep.png", "gray.png", "street.png"]
    assert not (out / "sub").exists()


def test_raw_output_names_never_collide(tmp_path, capsys, small_checkpoint):
    folder = tmp_path / "pictures"
    folder.mkdir()
    cv2.imwrite(str(folder / "x.png"), photo(30, 40, seed=1))
    cv2.imwrite(str(folder / "x_16bit.png"), photo(30, 40, seed=2))  # its colour map would be x's 16-bit map
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", folder, "-w", small_checkpoint, "--out", out, "--raw", "png16")
    assert code == 0 and "processed 2, failed 0" in err
    assert listing(out) == ["x.png", "x_16bit.png", "x_16bit_2.png", "x_16bit_2_16bit.png"]
    assert cv2.imread(str(out / "x_16bit.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert cv2.imread(str(out / "x_16bit_2.png"), cv2.IMREAD_UNCHANGED).shape == (30, 40, 3)


def test_out_folder_that_is_the_input_folder(tmp_path, capsys, small_checkpoint, pictures):
    before = sorted(path.name for path in pictures.iterdir())
    for argument in (pictures, pictures / "*.png"):
        code, _, err = run(capsys, "image", argument, "-w", small_checkpoint, "--out", pictures)
        assert code == 2 and "choose another --out" in err and f"{argument}: " in err
    assert sorted(path.name for path in pictures.iterdir()) == before


def test_out_folder_that_cannot_be_created(tmp_path, capsys, small_checkpoint, pictures):
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--out", tmp_path / "file" / "depth")
    assert code == 2 and err.count("\n") == 1 and "file/depth: cannot write there" in err


def test_full_disk_is_named_as_such(tmp_path, capsys, monkeypatch, small_checkpoint, pictures):
    import muggled_swinv2.io.atomic as atomic

    def short_write(array, file):  # what numpy raises when the disk fills up during np.save
        raise OSError(f"{array.nbytes} requested and 27616 written")

    monkeypatch.setattr(np, "save", lambda file, array: short_write(array, file))
    monkeypatch.setattr(atomic, "disk_is_full", lambda folder: True)
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out, "--raw", "npy")
    assert code == 1 and "street.npy (No space left on device)" in err and "requested and" not in err
    assert not [path for path in out.iterdir() if "partial" in path.name]


def test_long_file_names(tmp_path, capsys, small_checkpoint):
    folder = tmp_path / "pictures"
    folder.mkdir()
    stem = "long" * 60  # 240 bytes: its outputs fit the 255-byte limit, a temp name with the whole stem would not
    cv2.imwrite(str(folder / f"{stem}.png"), photo(20, 30))
    code, _, err = run(capsys, "image", folder, "-w", small_checkpoint, "--out", tmp_path / "out", "--raw", "npy")
    assert code == 0, err
    assert listing(tmp_path / "out") == [f"{stem}.npy", f"{stem}.png"]


def test_interrupted_image_job(tmp_path, capsys, monkeypatch, small_checkpoint, pictures):
    import muggled_swinv2.jobs.images as image_job

    real_predict = image_job.predict_batch
    calls = []

    def interrupt_on_third_call(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(image_job, "predict_batch", interrupt_on_third_call)
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--out", out, "--raw", "npy", "-q")
    assert code == 130 and "processed 2, failed 0" in err and "interrupted" in err
    assert listing(out) == ["alpha.npy", "alpha.png", "deep.npy", "deep.png"]


def test_temp_files_of_a_killed_run_are_removed_when_run_again(tmp_path, capsys, small_checkpoint, pictures):
    """A writer killed part way cannot remove its temp file; the run that writes that output again
    does, and leaves every other file alone."""
    out = tmp_path / "out"
    out.mkdir()
    left = [".street.k1lled_x.partial", ".gray.k1lled_x.partial", ".other.k1lled_x.partial", ".street.notmine.partial"]
    for name in left:
        (out / name).write_bytes(b"half")
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out, "-q")
    assert code == 0, err
    assert sorted(path.name for path in out.iterdir()) == sorted([LEDGER_NAME, "street.png", *left[1:]])


def test_size_that_does_not_fit_in_memory_is_refused(tmp_path, capsys, monkeypatch, small_checkpoint, pictures, clip):
    """Defect 3: --size had no memory guard (12 GB RSS and counting)."""
    import muggled_swinv2.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 64 * 2**20)
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures / "street.jpg", pictures / "gray.png", "-w", small_checkpoint,
                       "--out", out, "--size", "4096")
    assert code == 1 and "processed 0, failed 2" in err
    line = next(line for line in err.splitlines() if "street.jpg" in line)
    assert "needs about" in line and "GiB available; the largest --size that fits is" in line and "--no-memory-check" in line
    largest = int(line.split("the largest --size that fits is ")[1].split(" ")[0])
    assert 32 <= largest < 4096 and listing(out) == []
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out,
                       "--size", largest)
    assert code == 0, err
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 2**20)
    code, _, err = run(capsys, "image", pictures / "gray.png", "-w", small_checkpoint, "--out", out, "--size", "96",
                       "--no-memory-check")
    assert code == 0, err
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "--size", "4096")
    assert code == 2 and err.count("\n") == 1 and "clip.mp4: needs about" in err and not (tmp_path / "depth.mp4").exists()


def test_memory_estimate_follows_the_measured_peak():
    """`python benchmarks/measure_memory.py --sizes 512,1024,2048` measured tiny at 2048x1536 (from a
    640x480 photo): 2080 MiB above the loaded model, with the depth head made in bands. The
    estimate may err high, not low: it counts the head's whole upsampled map (1.85x at this size)."""
    from muggled_swinv2.memory import estimate_bytes, largest_fitting_size
    from muggled_swinv2.model.config import RELEASES

    tiny = RELEASES["tiny"].config
    estimate = estimate_bytes(tiny, (1536, 2048), (480, 640)) / 2**20
    assert 2080 <= estimate <= 2 * 2080
    sizes = [estimate_bytes(tiny, (side * 3 // 4, side), (480, 640)) for side in (256, 512, 1024, 2048, 4096)]
    assert sizes == sorted(sizes)
    assert largest_fitting_size(tiny, (480, 640), int(estimate * 2**20)) == 2048


# ----------------------------------------------------------------------------- weights discovery


def test_weights_found_in_weights_folder(tmp_path, capsys, monkeypatch, small_checkpoint, pictures):
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("MUGGLED_SWINV2_WEIGHTS", str(folder))
    code, _, err = run(capsys, "image", pictures / "street.jpg", "--out", tmp_path / "out0")
    assert code == 0 and "embedded demo model" in err and "muggled-swinv2 download tiny" in err  # none there
    (folder / "one.pt").symlink_to(small_checkpoint)
    code, _, err = run(capsys, "image", pictures / "street.jpg", "--out", tmp_path / "out")
    assert code == 0 and "demo model" not in err, err
    (folder / "two.pt").symlink_to(small_checkpoint)
    code, _, err = run(capsys, "image", pictures / "street.jpg", "--out", tmp_path / "out2")
    assert code == 2 and "several checkpoints" in err and "one.pt, two.pt" in err


def test_weights_variable_naming_a_file(tmp_path, capsys, monkeypatch, small_checkpoint):
    monkeypatch.setenv("MUGGLED_SWINV2_WEIGHTS", str(small_checkpoint))
    code, _, err = run(capsys, "info")
    assert code == 2 and "MUGGLED_SWINV2_WEIGHTS" in err and "is a file" in err and "no checkpoint in" not in err


def test_bad_checkpoint_is_one_line(tmp_path, capsys, pictures):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    code, _, err = run(capsys, "image", pictures, "-w", bad, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "bad.pt" in err


def test_unavailable_device_and_dtype(tmp_path, capsys, small_checkpoint, pictures):
    if not __import__("torch").cuda.is_available():
        code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--device", "cuda")
        assert code == 2 and "no CUDA GPU" in err
    code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--device", "cpu", "--dtype", "float16")
    assert code == 2 and "float16 needs a CUDA GPU" in err


def test_bfloat16_on_cpu(tmp_path, capsys, small_checkpoint, model, pictures):
    out = tmp_path / "out"
    code, _, err = run(capsys, "image", pictures / "street.jpg", "-w", small_checkpoint, "--out", out,
                       "--dtype", "bfloat16", "--raw", "npy")
    assert code == 0, err
    depth = np.load(out / "street.npy")
    expected = model.predict(cv2.imread(str(pictures / "street.jpg")))
    assert np.isfinite(depth).all() and np.abs(depth - expected).max() < 0.1 * np.ptp(expected)


def test_bfloat16_recommended_only_where_the_cpu_has_it(tmp_path, capsys, monkeypatch, small_checkpoint, pictures):
    import muggled_swinv2.devices as devices

    for native in (False, True):
        monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: native)
        code, _, err = run(capsys, "image", pictures, "-w", small_checkpoint, "--device", "cpu", "--dtype", "float16")
        assert code == 2 and ("or bfloat16" in err) == native
    monkeypatch.setattr(devices, "cpu_has_native_bfloat16", lambda: False)
    code, _, err = run(capsys, "image", pictures / "gray.png", "-w", small_checkpoint, "--out", tmp_path / "o",
                       "--dtype", "bfloat16", "-q")
    assert code == 0 and err.startswith("warning: this CPU") and "no bfloat16 instructions" in err


# ----------------------------------------------------------------------------- info and entry points


def test_info(capsys, small_checkpoint):
    code, out, _ = run(capsys, "info", small_checkpoint)
    assert code == 0 and "native size: 64x64" in out and "parameters" in out


def test_console_script_installed(tmp_path, small_checkpoint):
    script = Path(sys.executable).parent / "muggled-swinv2"
    result = subprocess.run([str(script), "info", str(small_checkpoint)], capture_output=True, text=True)
    assert result.returncode == 0 and "custom" in result.stdout


# ----------------------------------------------------------------------------- video


@pytest.fixture
def clip(tmp_path):
    return write_video(tmp_path / "clip.mp4", frames=7, size_wh=(96, 64), fps=12.0)


@pytest.fixture
def panning_clip(tmp_path):
    """7 frames of 96x64 seen through a window moving 3 pixels right a frame: a moving camera."""
    scene = photo(64, 96 + 3 * 7, seed=4)
    writer = cv2.VideoWriter(str(tmp_path / "pan.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (96, 64))
    for index in range(7):
        writer.write(np.ascontiguousarray(scene[:, 3 * index:3 * index + 96]))
    writer.release()
    return tmp_path / "pan.mp4"


def test_video_frames_size_rate_and_raw(tmp_path, capsys, small_checkpoint, model, panning_clip):
    clip = panning_clip
    target = tmp_path / "depth.mp4"
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--raw", "npz", "--batch-size", 3)
    assert code == 0, err
    frames, fps = read_video(target)
    assert len(frames) == 7 and frames[0].shape == (64, 96, 3) and fps == pytest.approx(12.0)
    inputs, _ = read_video(clip)
    raw = np.load(tmp_path / "depth.npz")
    frame_names = [f"frame_{index:06d}" for index in range(7)]
    flows = [name for name in raw.files if name.startswith("flow_")]  # the frames of a moving camera: all but the first
    assert sorted(flows) == [f"flow_{index:06d}" for index in range(1, 7)]
    assert sorted(set(raw.files) - set(flows)) == sorted(frame_names + [f"smoothed_{index:06d}" for index in range(7)]
                                                         + ["reset", "scale", "shift", "smoothing", "moving_smoothing"])
    assert raw["scale"].shape == raw["shift"].shape == raw["reset"].shape == (7,)
    assert raw["reset"][0] and raw["scale"][0] == 1 and raw["shift"][0] == 0
    recovered = recover_raw(raw)  # stabilised by default; the npz undoes it, up to rounding
    assert len(recovered) == 7
    for index, frame in enumerate(inputs):
        expected = model.predict(frame)
        assert np.allclose(recovered[index], expected, atol=1e-5 * np.ptp(expected))
    assert "wrote 7 frames" in err
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--raw", "npz", "--no-stabilize",
                       "--overwrite")
    assert code == 0, err
    raw = np.load(tmp_path / "depth.npz")
    assert sorted(raw.files) == [f"frame_{index:06d}" for index in range(7)]  # the predictions as they are
    unchanged = recover_raw(raw)  # which recover_raw gives back as they are
    for index, frame in enumerate(inputs):
        expected = model.predict(frame)
        assert np.allclose(raw[f"frame_{index:06d}"], expected, atol=1e-5 * np.ptp(expected))
        assert np.array_equal(unchanged[index], raw[f"frame_{index:06d}"])


def test_video_side_by_side_and_per_frame(tmp_path, capsys, small_checkpoint, clip):
    for extra in ([], ["--per-frame-range"]):
        target = tmp_path / f"sbs{len(extra)}.avi"
        code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--side-by-side", *extra)
        assert code == 0, err
        frames, _ = read_video(target)
        assert len(frames) == 7 and frames[0].shape == (64, 192, 3)


def test_video_running_range_is_steadier_than_per_frame():
    from muggled_swinv2.io.colormaps import RunningRange

    running = RunningRange()
    highs = [running.update(np.array([0.0, 1.0 + (index % 2)]))[1] for index in range(20)]
    assert np.abs(np.diff(highs[5:])).max() < 0.2  # the per-frame max jumps by 1 every frame
    assert all(1.0 <= high <= 2.0 for high in highs)


def test_video_bad_inputs(tmp_path, capsys, small_checkpoint, clip):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    code, _, err = run(capsys, "video", corrupt, "-w", small_checkpoint, "--out", tmp_path / "o.mp4")
    assert code == 2 and "corrupt.mp4" in err and not (tmp_path / "o.mp4").exists()
    code, _, err = run(capsys, "video", tmp_path / "missing.mp4", "-w", small_checkpoint, "--out", tmp_path / "o.mp4")
    assert code == 2 and "no such video file" in err
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", clip, "--overwrite")
    assert code == 2 and "would overwrite the input" in err and len(read_video(clip)[0]) == 7
    (tmp_path / "exists.mp4").write_bytes(b"old")
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "exists.mp4")
    assert code == 2 and "--overwrite" in err and (tmp_path / "exists.mp4").read_bytes() == b"old"
    assert not [path for path in tmp_path.iterdir() if "partial" in path.name]


@pytest.mark.parametrize("name", ["clip.gif", "depth.png", "depth.jpg", "depth"])
def test_video_containers_we_cannot_write_are_refused_up_front(tmp_path, capsys, clip, name):
    """Defect 1: .gif/.png/.jpg were processed to the end, then failed blaming the disk, leaving litter."""
    code, _, err = run(capsys, "video", clip, "-w", tmp_path / "no-weights.pt", "--out", tmp_path / name)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{tmp_path / name}: cannot write" in err and "use one of .mp4, .m4v, .mov, .avi, .mkv" in err
    assert listing(tmp_path) == ["clip.mp4"]  # no model was loaded, nothing written


def test_video_overwrite_replaces_only_our_file(tmp_path, capsys, small_checkpoint, clip):
    target = tmp_path / "depth.avi"
    target.write_bytes(b"someone's video")
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--overwrite", "-q")
    assert code == 2 and "was not written by muggled-swinv2" in err and target.read_bytes() == b"someone's video"
    target.unlink()
    for _ in range(2):  # the second run replaces the file the first one wrote
        code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", target, "--overwrite", "-q")
        assert code == 0, err
    assert len(read_video(target)[0]) == 7


def test_video_with_zero_frames(tmp_path, capsys, small_checkpoint):
    empty = write_video(tmp_path / "empty.avi", frames=0, fourcc="MJPG")
    assert empty.stat().st_size > 0  # a container that opens, with no frame in it
    code, _, err = run(capsys, "video", empty, "-w", small_checkpoint, "--out", tmp_path / "o.mp4")
    assert code == 2 and f"{empty}: no frames could be read (empty or corrupt video)" in err and err.count("\n") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.avi"]


def test_video_interrupt_leaves_a_playable_file(tmp_path, monkeypatch, small_checkpoint, model, clip):
    import muggled_swinv2.jobs.video as video_job

    real_predict = video_job.infer_prepared
    calls = []

    def interrupt_on_fourth_call(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(video_job, "infer_prepared", interrupt_on_fourth_call)
    summary = video_job.run_video_job(model, clip, tmp_path / "cut.mp4", video_job.VideoJobOptions(raw_npz=True), quiet=True)
    assert summary.interrupted and summary.frames == 3
    assert len(read_video(tmp_path / "cut.mp4")[0]) == 3
    raw = np.load(tmp_path / "cut.npz")
    assert sorted(name for name in raw.files if name.startswith(("frame_", "smoothed_"))) == [
        "frame_000000", "frame_000001", "frame_000002", "smoothed_000000", "smoothed_000001", "smoothed_000002"]
    assert raw["scale"].shape == (3,)
    assert not [path for path in tmp_path.iterdir() if "partial" in path.name]


def test_video_out_that_is_a_folder_or_cannot_be_written(tmp_path, capsys, small_checkpoint, clip):
    (tmp_path / "folder").mkdir()
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "folder", "--overwrite")
    assert code == 2 and "is a folder" in err and not list((tmp_path / "folder").iterdir())
    (tmp_path / "file").write_text("x")
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "file" / "depth.mp4")
    assert code == 2 and err.count("\n") == 1 and "file: cannot write there" in err


def test_video_frames_lost_in_writing_leave_no_file(tmp_path, capsys, monkeypatch, small_checkpoint, clip):
    from muggled_swinv2.io.video import AtomicVideoWriter

    real_write = AtomicVideoWriter.write

    def drop_after_two(writer, frame):  # what OpenCV does, silently, when the disk is full
        if writer.frames < 2:
            real_write(writer, frame)
        else:
            writer.frames += 1

    monkeypatch.setattr(AtomicVideoWriter, "write", drop_after_two)
    monkeypatch.setattr("muggled_swinv2.io.av_video.av", None)  # OpenCV's writer: PyAV's reports its errors
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "--raw", "npz", "-q")
    assert code == 2 and "depth.mp4: could not be written completely (2 of 7 frames" in err
    assert "OpenCV wrote a damaged file" in err and "space" not in err  # the disk is fine: not blamed
    assert listing(tmp_path) == ["clip.mp4"]
    monkeypatch.setattr("muggled_swinv2.io.video.disk_is_full", lambda folder: True)
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "-q")
    assert code == 2 and "(2 of 7 frames readable back; no space left on device)" in err


def test_video_npz_write_error_leaves_no_file(tmp_path, capsys, monkeypatch, small_checkpoint, clip):
    from muggled_swinv2.io.video import AtomicNpzWriter

    def disk_full(writer, name, array):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(AtomicNpzWriter, "write_array", disk_full)
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "--raw", "npz", "-q")
    assert code == 2 and err.count("\n") == 1 and "depth.mp4: cannot write (No space left on device)" in err
    assert listing(tmp_path) == ["clip.mp4"]


def test_video_failed_prediction_is_one_line(tmp_path, capsys, monkeypatch, small_checkpoint, clip):
    import muggled_swinv2.jobs.video as video_job

    real_predict = video_job.infer_prepared
    calls = []

    def out_of_memory_on_third_call(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("not enough memory: you tried to allocate 1 TB\nsecond line")
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(video_job, "infer_prepared", out_of_memory_on_third_call)
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4", "--raw", "npz", "-q")
    assert code == 2 and err.count("\n") == 1
    assert "clip.mp4: depth estimation failed at frame 3 (not enough memory: you tried to allocate 1 TB)" in err
    assert listing(tmp_path) == ["clip.mp4"]


def test_video_interrupted_before_any_frame_writes_nothing(tmp_path, monkeypatch, model, clip):
    import muggled_swinv2.jobs.video as video_job

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(video_job, "infer_prepared", interrupt)
    summary = video_job.run_video_job(model, clip, tmp_path / "cut.mp4", video_job.VideoJobOptions(raw_npz=True), quiet=True)
    assert summary.interrupted and summary.frames == 0
    assert listing(tmp_path) == ["clip.mp4"]  # no empty, unplayable file


# ----------------------------------------------------------------------------- webcam demo


def test_webcam_demo_headless(tmp_path, small_checkpoint, clip):
    target = tmp_path / "live.mp4"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "webcam_demo.py"), "--source", str(clip), "--weights",
         str(small_checkpoint), "--headless", "--max-frames", "5", "--save", str(target)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    frames, fps = read_video(target)
    assert len(frames) == 5 and frames[0].shape == (64, 192, 3) and fps == pytest.approx(12.0)
    assert frames[0][:, 96:].max() > 0  # the depth half is drawn from the first frame on


def test_webcam_demo_bad_source(tmp_path, small_checkpoint):
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "webcam_demo.py"), "--source", str(tmp_path / "nope.mp4"),
         "--weights", str(small_checkpoint), "--headless"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "cannot open" in result.stderr and "Traceback" not in result.stderr


def webcam_demo(*args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "webcam_demo.py"), "--headless", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_webcam_demo_never_overwrites_the_source_or_an_existing_file(tmp_path, small_checkpoint, clip):
    original = clip.read_bytes()
    result = webcam_demo("--source", clip, "--weights", small_checkpoint, "--save", clip, "--overwrite")
    assert result.returncode == 2 and "would overwrite the source video" in result.stderr
    assert clip.read_bytes() == original
    (tmp_path / "old.mp4").write_bytes(b"old")
    result = webcam_demo("--source", clip, "--weights", small_checkpoint, "--save", tmp_path / "old.mp4")
    assert result.returncode == 2 and "--overwrite" in result.stderr and (tmp_path / "old.mp4").read_bytes() == b"old"


def test_webcam_demo_bad_arguments_are_one_line(tmp_path, small_checkpoint, clip):
    (tmp_path / "file").write_text("x")
    empty = write_video(tmp_path / "empty.avi", frames=0, fourcc="MJPG")
    for args, message in [(["--size", "0"], "must be a positive integer"),
                          (["--max-frames", "-1"], "must be a positive integer"),
                          (["--save", tmp_path / "file" / "live.mp4"], "cannot write there"),
                          (["--source", empty], "empty.avi")]:
        result = webcam_demo("--source", clip, "--weights", small_checkpoint, *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (args, result.stderr)
        assert message in result.stderr.strip().splitlines()[-1]  # after argparse's usage lines, if any


def load_webcam_demo():
    import importlib.util

    spec = importlib.util.spec_from_file_location("webcam_demo", REPO / "scripts" / "webcam_demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


def test_webcam_demo_saved_frames_carry_their_own_depth(tmp_path, monkeypatch, clip):
    """Defect 6: a file source with --headless --save paired new frames with stale depth maps."""
    import time

    demo = load_webcam_demo()

    from muggled_swinv2.predict import prepare_input

    class SlowModel(torch.nn.Module):  # depth = the input's mean, so each depth map tells which frame it belongs to
        def __init__(self):
            super().__init__()
            self.config = SimpleNamespace(native_size=64)
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def forward(self, image_bchw):
            time.sleep(0.05)
            return image_bchw.mean(dim=(1, 2, 3))[:, None, None].expand(-1, *image_bchw.shape[2:]).clone()

    shown = []
    real_compose = demo.compose
    monkeypatch.setattr(demo, "load_model", lambda *args, **kwargs: SlowModel())
    monkeypatch.setattr(demo, "compose", lambda frame, depth, *rest: shown.append((frame, depth)) or
                        real_compose(frame, depth, *rest))
    code = demo.main(["--source", str(clip), "--weights", "unused.pt", "--headless", "--no-stabilize",
                      "--save", str(tmp_path / "live.avi")])
    assert code == 0 and len(shown) == 7
    assert all(depth is not None and depth[0, 0] == pytest.approx(float(prepare_input(frame, 64, False, None).mean()), abs=1e-3)
               for frame, depth in shown)
    assert len(read_video(tmp_path / "live.avi")[0]) == 7


def test_webcam_demo_missing_camera_is_named_before_loading_the_model(tmp_path):
    result = webcam_demo("--source", "7", "--weights", tmp_path / "missing.pt")
    assert result.returncode == 2 and result.stderr.strip() == "error: no camera 7 (or it is busy)"
    result = webcam_demo("--source", "0", "--weights", tmp_path / "missing.pt", "--save", tmp_path / "live.gif")
    assert result.returncode == 2 and "live.gif: cannot write .gif videos" in result.stderr


def test_webcam_snapshot_that_cannot_be_written_is_reported(tmp_path, monkeypatch, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("webcam_demo", REPO / "scripts" / "webcam_demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the current folder no longer exists: nothing can be written there
    demo.save_snapshot(np.zeros((8, 8, 3), np.uint8))
    err = capsys.readouterr().err
    assert "cannot save" in err and "saved" not in err
    monkeypatch.chdir(tmp_path)
    demo.save_snapshot(np.zeros((8, 8, 3), np.uint8))
    demo.save_snapshot(np.zeros((8, 8, 3), np.uint8))
    assert len(list(tmp_path.glob("depth_snapshot_*.png"))) == 2  # the second does not replace the first


# ----------------------------------------------------------------------------- demo script


def test_demo_uses_any_checkpoint_the_command_line_reads(tmp_path, small_checkpoint):
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", repo / "scripts")
    shutil.copytree(REPO / "muggled_swinv2" / "web" / "examples", repo / "muggled_swinv2" / "web" / "examples")
    (repo / "weights").mkdir()
    shutil.copy(small_checkpoint, repo / "weights" / "mine.pth")  # a .pth: no download needed
    venv = tmp_path / "venv"  # already set up: just our console script
    (venv / "bin").mkdir(parents=True)
    (venv / ".installed").touch()
    (venv / "bin" / "muggled-swinv2").symlink_to(Path(sys.executable).parent / "muggled-swinv2")
    result = subprocess.run(["bash", str(repo / "scripts" / "demo.sh")], env={**os.environ, "MUGGLED_VENV": str(venv)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "download" not in result.stderr and "mine.pth" in result.stdout
    stems = sorted(path.stem for path in (REPO / "muggled_swinv2" / "web" / "examples").iterdir() if path.suffix in (".jpg", ".png"))
    assert listing(repo / "outputs" / "examples") == sorted(
        f"{stem}{suffix}" for stem in stems for suffix in (".npy", ".png"))

