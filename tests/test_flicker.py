"""The flicker figure and its synthetic clips (evaluation/flicker.py, benchmarks/video_flicker.py)."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from muggled_swinv2.evaluation.flicker import CLIPS, flicker, moving_clip, still_clip, unchanged_pixels

REPO = Path(__file__).resolve().parent.parent


def test_flicker_is_scale_free_and_counts_only_unchanged_pixels():
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 5, (20, 30)).astype(np.float32)
    steady = [1 / depth] * 4
    assert flicker(steady, [depth] * 4) == 0
    noisy = [1 / depth + 0.01 * rng.standard_normal(depth.shape) for _ in range(4)]
    assert flicker(noisy, [depth] * 4) == np.float32(flicker([7 * frame - 3 for frame in noisy], [depth] * 4))
    moved = [depth.copy() for _ in range(4)]
    for index, frame in enumerate(moved):
        frame[:, :10] += index  # true depth changes there: prediction changes there do not count
    predictions = [1 / frame for frame in moved]
    assert flicker(predictions, moved) == 0
    assert unchanged_pixels(moved[0], moved[1])[:, 10:].all() and not unchanged_pixels(moved[0], moved[1])[:, :10].any()


def test_clips_have_exact_depth_still_and_moving():
    clip = still_clip(frames=3, size_hw=(24, 32))
    images, depths = clip.images, clip.depths
    assert len(images) == 3 and images[0].shape == (24, 32, 3) and images[0].dtype == np.uint8
    assert all(np.array_equal(depth, depths[0]) for depth in depths) and np.isfinite(depths[0]).all()
    assert not np.array_equal(images[0], images[1])  # the light changes
    depths = moving_clip(frames=3, size_hw=(24, 32)).depths
    unchanged = unchanged_pixels(depths[0], depths[1])
    assert 0.1 < unchanged.mean() < 1.0  # planes along the motion keep their depth, the rest does not


def test_video_flicker_script_prints_the_table(tmp_path, small_checkpoint):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "video_flicker.py"), "--weights", str(small_checkpoint),
                             "--frames", "3", "--size", "32x48", "--json", str(tmp_path / "rows.json")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| still camera | 3 |" in result.stdout and "| moving camera | 3 |" in result.stdout
    assert (tmp_path / "rows.json").is_file()


def test_video_flicker_script_values(tmp_path, small_checkpoint, small_model):
    """The table's numbers: those of the JSON rows, which are flicker and AbsRel recomputed here
    from the clip made again (its true depth and motion) and the model's own predictions for its
    frames (raw), and the stabilised frames the `video` job wrote."""
    import json

    import pytest

    from muggled_swinv2.evaluation.flicker import mean_absrel
    from muggled_swinv2.predict import infer_prepared, prepare_input, restore_size
    from muggled_swinv2.video.depth_npz import recover_raw
    from pictures import read_video

    kept = tmp_path / "kept"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "video_flicker.py"), "--weights", str(small_checkpoint),
                             "--frames", "3", "--size", "32x48", "--json", str(tmp_path / "rows.json"), "--keep", str(kept)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert {row["clip"] for row in rows} >= {"still camera"}
    for row in rows:
        assert row["frames"] == 3 and row["resets"] == 0
        table_row = next(line for line in result.stdout.splitlines() if line.startswith(f"| {row['clip']} |"))
        cells = [cell.strip() for cell in table_row.strip("|").split("|")]
        for key in ("flicker_raw", "flicker_stable", "absrel_raw", "absrel_stable"):
            assert f"{row[key]:.4f}" in cells, (key, cells)
        assert f"{row['flicker_raw'] / row['flicker_stable']:.1f}x" in cells
        assert f"{row['absrel_stable'] / row['absrel_raw'] - 1:+.2%}" in cells
        # "raw" is what the model gives for the clip's frames; "stabilised" is not that
        name = row["clip"].replace(" ", "_")
        frames, _ = read_video(kept / f"{name}.avi")
        with np.load(kept / f"{name}_depth.npz") as archive:
            raw = recover_raw(archive)
            stable = [archive[f"frame_{index:06d}"] for index in range(3)]
        native = small_model.config.native_size
        direct = [restore_size(depth, frame.shape[:2]) for depth, frame in
                  zip(infer_prepared(small_model, [prepare_input(frame, native, False, None) for frame in frames]), frames)]
        for recovered, expected in zip(raw, direct):
            np.testing.assert_allclose(recovered, expected, atol=1e-4 * np.ptp(expected))
        assert not np.allclose(stable[1], raw[1], atol=1e-3 * np.ptp(raw[1]))
        clip = CLIPS[row["clip"]](2_000_000, 3, (32, 48))  # the script's default scene seed, made again
        assert all(np.corrcoef(frame.ravel(), image.ravel())[0, 1] > 0.95 for frame, image in zip(frames, clip.images))  # (MJPEG)
        assert row["flicker_raw"] == pytest.approx(flicker(direct, clip.depths, clip.motions), rel=1e-3)
        assert row["absrel_raw"] == pytest.approx(mean_absrel(direct, clip.depths), rel=1e-3)
        assert row["flicker_stable"] == pytest.approx(flicker(stable, clip.depths, clip.motions), rel=1e-9)
        assert row["absrel_stable"] == pytest.approx(mean_absrel(stable, clip.depths), rel=1e-9)
        assert row["absrel_raw"] > 0 and row["flicker_raw"] > 0  # a random model's predictions are neither exact nor steady
