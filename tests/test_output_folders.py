"""Output folders: missing ones are made (for every command), and a run that wrote nothing leaves
none it made; an input folder given as a video is named as a folder."""

from cli_runs import listing, run


def test_image_run_whose_every_input_fails_leaves_no_folder(tmp_path, capsys, small_checkpoint):
    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    code, _, err = run(capsys, "image", tmp_path / "bad.jpg", "-w", small_checkpoint, "--out", tmp_path / "new" / "bad2", "-q")
    assert code == 1 and "bad.jpg" in err
    assert listing(tmp_path) == ["bad.jpg"]


def test_video_failure_leaves_no_folder_but_success_makes_it(tmp_path, capsys, small_checkpoint, clip):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    code, _, err = run(capsys, "video", tmp_path / "broken.mp4", "-w", small_checkpoint, "--out", tmp_path / "a" / "b" / "x.mp4")
    assert code == 2 and err.count("\n") == 1
    assert listing(tmp_path) == ["broken.mp4", "clip.mp4"]
    code, _, err = run(capsys, "video", clip, "-w", small_checkpoint, "--out", tmp_path / "a" / "b" / "x.mp4", "-q")
    assert code == 0, err
    assert listing(tmp_path / "a" / "b") == ["x.mp4"]


def test_video_input_that_is_a_folder(tmp_path, capsys, small_checkpoint):
    (tmp_path / "u").mkdir()
    code, _, err = run(capsys, "video", tmp_path / "u", "-w", small_checkpoint, "--out", tmp_path / "x.mp4")
    assert code == 2 and f"{tmp_path / 'u'}: is a folder; give one video file" in err
    assert listing(tmp_path) == ["u"]


def test_convert_makes_missing_folders_and_removes_them_on_failure(tmp_path, capsys, small_checkpoint):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    code, _, err = run(capsys, "convert", tmp_path / "junk.pt", tmp_path / "nodir" / "m.safetensors")
    assert code != 0 and err.count("\n") == 1
    assert listing(tmp_path) == ["junk.pt"]
    code, _, err = run(capsys, "convert", small_checkpoint, tmp_path / "nodir" / "m.safetensors")
    assert code == 0, err
    assert listing(tmp_path / "nodir") == ["m.safetensors"]
