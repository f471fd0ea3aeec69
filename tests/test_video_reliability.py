"""`video` with awkward inputs: a variable frame rate keeps its duration, pictures are refused in
one line pointing to `image`, and writing WebM prints nothing of OpenCV's."""

import struct

import cv2
import numpy as np
import pytest

from cli_runs import run
from muggled_swinv2.io.video import AtomicVideoWriter, VideoError, VideoReader
from pictures import photo, read_video, write_video


# ----------------------------------------------------------------------------- variable frame rate


def ebml_number(data: bytes, position: int, keep_marker: bool) -> tuple[int, int]:
    """An EBML variable-length number at `position` -> (value, position after it)."""
    length = 9 - data[position].bit_length()
    value = int.from_bytes(data[position:position + length], "big")
    return (value if keep_marker else value & ((1 << (7 * length)) - 1)), position + length


def block_timecodes(data: bytes, start: int, end: int, found: dict):
    """Positions of the Cluster timecodes (position, size) and of the 16-bit relative timecodes
    of the frames' blocks in a Matroska file."""
    position = start
    while position < end:
        element, inside = ebml_number(data, position, keep_marker=True)
        size, inside = ebml_number(data, inside, keep_marker=False)
        if element in (0x18538067, 0x1F43B675, 0xA0):  # Segment, Cluster, BlockGroup: look inside
            block_timecodes(data, inside, min(inside + size, end), found)
        elif element == 0xE7:  # a Cluster's timecode
            found["clusters"].append((inside, size))
        elif element in (0xA3, 0xA1):  # SimpleBlock, Block: track number, then the timecode
            found["blocks"].append(ebml_number(data, inside, keep_marker=False)[1])
        position = inside + size


def variable_rate_mkv(path, frame_seconds: list[float], size_wh=(64, 48)):
    """A Matroska video whose frame i lasts frame_seconds[i]: written by OpenCV at a constant rate,
    then each frame's timecode set (clusters at 0, each frame's time relative to it, in ms)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size_wh)
    for index in range(len(frame_seconds)):
        writer.write(photo(size_wh[1], size_wh[0], seed=index))
    writer.release()
    data = bytearray(path.read_bytes())
    found = {"clusters": [], "blocks": []}
    block_timecodes(data, 0, len(data), found)
    assert len(found["blocks"]) == len(frame_seconds)
    for position, size in found["clusters"]:
        data[position:position + size] = bytes(size)
    starts = np.concatenate([[0.0], np.cumsum(frame_seconds)[:-1]])
    for position, start in zip(found["blocks"], starts):
        data[position:position + 2] = struct.pack(">h", round(start * 1000))
    path.write_bytes(bytes(data))
    return path


def test_variable_frame_rate_keeps_its_duration_and_says_so(tmp_path, capsys, small_checkpoint):
    seconds = [0.04] * 12 + [0.25] * 12  # 0.48 s at 25 frames/s, then 3 s at 4 frames/s
    source = variable_rate_mkv(tmp_path / "phone.mkv", seconds)
    assert cv2.VideoCapture(str(source)).get(cv2.CAP_PROP_FPS) == 25.0  # what OpenCV states: the first frames
    code, _, err = run(capsys, "video", source, "-w", small_checkpoint, "--out", tmp_path / "depth.avi")
    assert code == 0, err
    frames, fps = read_video(tmp_path / "depth.avi")
    assert len(frames) == 24
    # the frames' times span 0.48 + 11 * 0.25 = 3.23 s: evenly spaced over that, the video lasts 24 / 23 of it
    assert len(frames) / fps == pytest.approx(3.23 * 24 / 23, rel=0.01)
    assert "frame rate varies" in err and f"{23 / 3.23:.2f} frames/s" in err


@pytest.mark.parametrize("name, fourcc", [("steady.mkv", "MJPG"), ("steady.mp4", "mp4v"), ("steady.avi", "MJPG")])
def test_a_constant_frame_rate_is_kept_as_stated(tmp_path, name, fourcc):
    reader = VideoReader(str(write_video(tmp_path / name, frames=10, fps=29.97, fourcc=fourcc)))
    reader.close()
    assert reader.fps == pytest.approx(29.97, rel=1e-4) and reader.timing_note is None


def test_a_misstated_rate_is_replaced_by_the_frames_own(tmp_path):
    reader = VideoReader(str(variable_rate_mkv(tmp_path / "steady.mkv", [1 / 30] * 10)))  # says 25 frames/s
    reader.close()
    assert reader.fps == pytest.approx(30.0, rel=0.01) and "states 25 frames/s" in reader.timing_note


# ----------------------------------------------------------------------------- pictures


def picture_files(folder):
    picture = photo(48, 64)
    files = {}
    for suffix in (".jpg", ".png", ".webp", ".bmp", ".tif"):
        files[suffix] = folder / f"photo{suffix}"
        cv2.imwrite(str(files[suffix]), picture)
    files["truncated"] = folder / "cut.jpg"
    files["truncated"].write_bytes(files[".jpg"].read_bytes()[:300])
    files["renamed"] = folder / "photo.mp4"  # recognised by content, not by name
    files["renamed"].write_bytes(files[".png"].read_bytes())
    return files


@pytest.mark.parametrize("kind", [".jpg", ".png", ".webp", ".bmp", ".tif", "truncated", "renamed"])
def test_video_refuses_pictures_pointing_to_image(tmp_path, capsys, small_checkpoint, kind):
    picture = picture_files(tmp_path)[kind]
    before = sorted(path.name for path in tmp_path.iterdir())
    code, _, err = run(capsys, "video", picture, "-w", small_checkpoint, "--out", tmp_path / "depth.mp4")
    assert code == 2
    assert err.strip().count("\n") == 0 and f"{picture}: is a picture, not a video" in err and "image" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_an_animated_gif_is_still_a_video(tmp_path):
    frames = [photo(48, 64, seed=index) for index in range(3)]
    assert cv2.imwritemulti(str(tmp_path / "anim.gif"), frames)
    reader = VideoReader(str(tmp_path / "anim.gif"))
    assert len(list(reader)) == 3
    reader.close()
    with pytest.raises(VideoError, match="is a picture"):
        cv2.imwrite(str(tmp_path / "still.gif"), frames[0])
        VideoReader(str(tmp_path / "still.gif"))


# ----------------------------------------------------------------------------- WebM


def test_writing_webm_prints_nothing(tmp_path, capfd):
    writer = AtomicVideoWriter(tmp_path / "depth.webm", 10.0, (64, 48))
    for index in range(3):
        writer.write(photo(48, 64, seed=index))
    writer.finish()
    err = capfd.readouterr().err
    assert "VP80" not in err and "not supported" not in err, err
    assert len(read_video(tmp_path / "depth.webm")[0]) == 3
