"""The image job's one table of output kinds (jobs/images.OUTPUTS): every file `image` writes, and
the web page's downloads and 3D mesh, are rows of it, written under the output rule and recorded
in the folder's ledger (io/outputs.py, io/ledger.py). A new kind is one row."""

from pathlib import Path

import numpy as np
import pytest

import cv2
from muggled_swinv2.export.geometry import save_mesh
from muggled_swinv2.io.images import save_image
from muggled_swinv2.io.ledger import OutputLedger
from muggled_swinv2.jobs import images as image_job
from muggled_swinv2.jobs.images import OUTPUTS, RAW_FORMATS, ImageJobOptions, OutputKind, prepare_image_job, run_image_job
from muggled_swinv2.predict import predict_depth
from muggled_swinv2.web.service import KEEP_ASPECT, PREVIEW_LONG_SIDE, DepthService, Limits, ModelInfo
from pictures import photo


def test_every_kind_is_a_row_and_raw_names_only_rows():
    assert set(RAW_FORMATS) | {"png", "camera"} == set(OUTPUTS)  # the camera comes with any metric kind
    names = [kind.file_name.format("x") for kind in OUTPUTS.values()]
    assert len(set(names)) == len(names)  # no two kinds share a file


def write_text_kind(prediction, path: Path):
    """A kind that is not in the table: the depth's shape and the task's source, as text."""
    height, width = prediction.depth.shape
    path.write_text(f"{height}x{width} from {prediction.task.source.name} step {prediction.options.point_step}\n")


def test_a_new_row_is_named_written_recorded_and_skipped_like_the_others(tmp_path, small_model, monkeypatch):
    monkeypatch.setitem(OUTPUTS, "shape", OutputKind("{}_shape.txt", write_text_kind))
    source = tmp_path / "in" / "scene.png"
    source.parent.mkdir()
    save_image(source, photo(48, 80))
    out = tmp_path / "out"
    options = ImageJobOptions(out_dir=out, raw_formats=("npy", "shape"), point_step=3)

    tasks, errors = prepare_image_job([source], False, options)
    assert errors == [] and tasks[0].outputs == {"png": out / "scene.png", "npy": out / "scene.npy",
                                                 "shape": out / "scene_shape.txt"}
    summary = run_image_job(small_model, tasks, options, quiet=True)
    assert (summary.processed, summary.failed) == (1, [])
    assert (out / "scene_shape.txt").read_text() == "48x80 from scene.png step 3\n"
    assert all(OutputLedger().is_ours(path) for path in tasks[0].outputs.values())

    again = run_image_job(small_model, prepare_image_job([source], False, options)[0], options, quiet=True)
    assert (again.processed, again.skipped) == (0, 1)  # every output of the new kind exists too

    (out / "scene_shape.txt").write_text("someone else's\n")  # not ours any more: planned around
    replanned, _ = prepare_image_job([source], False, ImageJobOptions(out_dir=out, raw_formats=("shape",), overwrite=True))
    assert replanned[0].outputs["shape"] == out / "scene_2_shape.txt"
    assert "scene_shape.txt exists and was not written by muggled-swinv2" in replanned[0].note


def test_a_failing_writer_names_its_file_and_the_job_goes_on(tmp_path, small_model, monkeypatch):
    def refuse(prediction, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(OUTPUTS, "tiff", OutputKind("{}.tiff", refuse))
    sources = []
    for name in ("a.png", "b.png"):
        sources.append(tmp_path / name)
        save_image(sources[-1], photo(40, 40))
    options = ImageJobOptions(out_dir=tmp_path / "out", raw_formats=("tiff",))
    summary = run_image_job(small_model, prepare_image_job(sources, False, options)[0], options, quiet=True)
    assert summary.failed == [f"{source}: cannot write {tmp_path / 'out' / source.stem}.tiff (No space left on device)"
                              for source in sources]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [".muggled_swinv2-outputs.jsonl", "a.png", "b.png"]


def test_the_web_page_writes_through_the_table(tmp_path, small_model, monkeypatch):
    """The page's files are the image job's rows (its mesh decimated to PREVIEW_LONG_SIDE by
    --point-step), written and recorded as `image` writes them."""
    calls = []
    real_predict_and_write = image_job.predict_and_write
    monkeypatch.setattr("muggled_swinv2.web.service.predict_and_write",
                        lambda *args: calls.append(args) or real_predict_and_write(*args))
    upload = tmp_path / "upload" / "wide.png"
    upload.parent.mkdir()
    image = photo(120, 600)
    save_image(upload, image)
    service = DepthService(small_model, ModelInfo("small", Path("small.pt"), "cpu", "float32"), Limits(), tmp_path / "work")

    result = service.image(str(upload), "turbo", KEEP_ASPECT, 0)

    assert len(calls) == 1
    folder = result.depth_png.parent
    assert [path.name for path in result.downloads] == ["wide.png", "wide_16bit.png", "wide.npy", "wide_mesh.ply"]
    assert result.model3d == folder / "wide_mesh.ply"
    assert all(OutputLedger().is_ours(path) for path in result.downloads)
    depth = predict_depth(small_model, image)
    assert np.array_equal(np.load(folder / "wide.npy"), depth)
    step = 600 // PREVIEW_LONG_SIDE
    assert step == 2
    assert result.model3d.read_bytes() == save_mesh(tmp_path / "mesh.ply", image, depth, step=step).read_bytes()
    assert cv2.imread(str(result.photo)).shape == image.shape


def test_the_web_page_reports_a_failing_writer_in_one_line(tmp_path, small_model, monkeypatch):
    from muggled_swinv2.web.service import UploadError

    def refuse(prediction, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(OUTPUTS, "mesh", OutputKind("{}_mesh.ply", refuse))
    upload = tmp_path / "room.png"
    save_image(upload, photo(64, 64))
    service = DepthService(small_model, ModelInfo("small", Path("small.pt"), "cpu", "float32"), Limits(), tmp_path / "work")
    with pytest.raises(UploadError, match=r"^room\.png: cannot write .*room_mesh\.ply \(No space left on device\)$"):
        service.image(str(upload))
