"""Synthetic scenes, the MiDaS losses, the evaluation protocol, the trainer and the train/eval commands."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch

from midas_layout import MIDAS_CONFIGS, save_midas_checkpoint

from muggled_swinv2 import load_model
from muggled_swinv2.cli import main
from muggled_swinv2.demo import DEMO_WEIGHTS
from muggled_swinv2 import devices as devices_module
from muggled_swinv2.evaluation.metrics import fit_scale_shift, row_gradient_baseline, score_depth
from muggled_swinv2.io.images import save_pfm
from muggled_swinv2.io.outputs import OutputRule
from muggled_swinv2.training import trainer as trainer_module
from muggled_swinv2.datasets import load_folder, render_split
from muggled_swinv2.training.batches import training_batch
from muggled_swinv2.model import SwinV2DPT
from muggled_swinv2.model.config import SMALL_CONFIGS
from muggled_swinv2.predict import predict_depth
from muggled_swinv2.training.losses import (
    ANCHOR_WEIGHT, gradient_matching_loss, midas_loss, normalize_scale_shift, output_anchor_loss,
    training_loss, trimmed_absolute_loss,
)
from muggled_swinv2.synthetic.scenes import SPLITS, Camera, ground_plane, render_scene, split_seed
from muggled_swinv2.training.trainer import TrainOptions, train

# ----------------------------------------------------------------------------- scenes


def test_scenes_are_deterministic_and_differ_by_seed():
    image_a, depth_a = render_scene(5, (64, 80))
    image_b, depth_b = render_scene(5, (64, 80))
    image_c, _ = render_scene(6, (64, 80))
    assert image_a.shape == (64, 80, 3) and image_a.dtype == np.uint8 and depth_a.shape == (64, 80)
    assert np.array_equal(image_a, image_b) and np.array_equal(depth_a, depth_b)
    assert not np.array_equal(image_a, image_c)
    assert (depth_a > 0).all() and not np.isnan(depth_a).any()


def test_some_scenes_have_sky_at_infinite_depth():
    depths = [render_scene(seed, (32, 32))[1] for seed in range(12)]
    assert any(np.isposinf(depth).any() for depth in depths)
    assert any(np.isfinite(depth).all() for depth in depths)  # rooms are closed


def test_splits_never_overlap():
    ranges = sorted(SPLITS.values())
    assert all(stop <= next_start for (_, stop), (next_start, _) in zip(ranges, ranges[1:]))
    assert split_seed("test", 0) == SPLITS["test"][0]
    with pytest.raises(ValueError):
        split_seed("val", SPLITS["val"][1] - SPLITS["val"][0])


def test_pinhole_camera_puts_a_level_ground_plane_at_the_exact_depth():
    """Level camera at height h: the floor seen in row v is at depth f * h / (v + 0.5 - H/2)."""
    height, width, fov, camera_height = 48, 64, 70.0, 1.5
    origin, directions = Camera(fov_deg=fov, height=camera_height, pitch=0.0).rays((height, width))
    depth, _ = ground_plane()(origin, directions)
    depth = depth.reshape(height, width)
    focal = width / 2 / math.tan(math.radians(fov) / 2)
    rows = np.arange(height) + 0.5 - height / 2
    expected = np.where(rows > 0, focal * camera_height / np.where(rows > 0, rows, 1), np.inf)
    assert np.allclose(depth, expected[:, None], rtol=1e-5)
    assert np.isposinf(depth[: height // 2]).all()  # above the horizon: sky


# ----------------------------------------------------------------------------- losses


def test_normalization_is_median_and_mean_absolute_deviation():
    values = torch.tensor([[1.0, 2.0, 4.0], [8.0, 100.0, 3.0]])
    valid = torch.tensor([[True, True, True], [True, False, True]])
    picked = np.array([1.0, 2.0, 4.0, 8.0, 3.0])
    median = np.median(picked)  # 3 (odd count: no ambiguity between torch's and numpy's medians)
    scale = np.abs(picked - median).mean()
    expected = np.where(valid.numpy(), (values.numpy() - median) / scale, 0)
    assert np.allclose(normalize_scale_shift(values[None], valid[None])[0].numpy(), expected)


def test_trimmed_loss_drops_the_largest_fifth_of_residuals():
    pred = torch.arange(10, dtype=torch.float32).reshape(2, 5)
    target = torch.zeros(2, 5)
    valid = torch.ones(2, 5, dtype=torch.bool)
    # residuals 0..9; the 8 smallest sum to 28, divided by 2M = 20
    assert trimmed_absolute_loss(pred[None], target[None], valid[None]).item() == pytest.approx(28 / 20)


def test_losses_of_a_batch_are_each_images_own():
    """All images at once, each with its own valid pixels and its own count of kept residuals."""
    generator = torch.Generator().manual_seed(4)
    pred, target = torch.randn(3, 8, 9, generator=generator), torch.randn(3, 8, 9, generator=generator)
    valid = torch.rand(3, 8, 9, generator=generator) > torch.tensor([0.1, 0.5, 0.8])[:, None, None]
    trimmed = trimmed_absolute_loss(pred, target, valid)
    gradient = gradient_matching_loss(pred, target, valid)
    normalized = normalize_scale_shift(pred, valid)
    for image in range(3):
        v = valid[image].numpy()
        residuals = np.sort(np.abs((pred[image] - target[image]).numpy()[v]))
        kept = int(len(residuals) * 0.8)
        assert trimmed[image].item() == pytest.approx(residuals[:kept].sum() / (2 * len(residuals)), rel=1e-5)
        assert gradient[image].item() == pytest.approx(
            gradient_matching_loss(pred[image][None], target[image][None], valid[image][None]).item(), rel=1e-6)
        picked = np.sort(pred[image].numpy()[v])
        median = picked[(len(picked) - 1) // 2]  # the lower median, as torch.median
        expected = (picked - median) / np.abs(picked - median).mean()
        assert np.allclose(np.sort(normalized[image].numpy()[v]), expected, atol=1e-5)
        assert normalized[image].numpy()[~v].tolist() == [0.0] * int((~v).sum())
    # the batch loss is the mean of the images' losses, one that has too few valid pixels left out
    valid[1] = False
    valid[1, 0, :5] = True
    each = [midas_loss(pred[i][None], target[i][None], valid[i][None]).item() for i in (0, 2)]
    assert midas_loss(pred, target, valid).item() == pytest.approx(np.mean(each), rel=1e-6)


def test_gradient_loss_matches_a_direct_sum():
    generator = torch.Generator().manual_seed(0)
    pred, target = torch.randn(9, 11, generator=generator), torch.randn(9, 11, generator=generator)
    valid = torch.rand(9, 11, generator=generator) > 0.2
    r = np.where(valid, (pred - target).numpy(), 0)
    v = valid.numpy()
    expected = 0.0
    for level in range(4):
        rs, vs = r[:: 2**level, :: 2**level], v[:: 2**level, :: 2**level]
        total = 0.0
        for i in range(rs.shape[0]):
            for j in range(rs.shape[1]):
                if j + 1 < rs.shape[1] and vs[i, j] and vs[i, j + 1]:
                    total += abs(rs[i, j + 1] - rs[i, j])
                if i + 1 < rs.shape[0] and vs[i, j] and vs[i + 1, j]:
                    total += abs(rs[i + 1, j] - rs[i, j])
        if vs.sum():
            expected += total / vs.sum()
    assert gradient_matching_loss(pred[None], target[None], valid[None]).item() == pytest.approx(expected, rel=1e-5)


def test_midas_loss_ignores_scale_and_shift_of_the_prediction():
    generator = torch.Generator().manual_seed(1)
    pred = torch.rand(2, 16, 16, generator=generator)
    target = torch.rand(2, 16, 16, generator=generator)
    valid = torch.rand(2, 16, 16, generator=generator) > 0.1
    loss = midas_loss(pred, target, valid)
    assert loss.item() > 0.1
    for scale, shift in [(3.0, -2.0), (0.01, 5.0), (250.0, 0.0)]:
        assert midas_loss(scale * pred + shift, target, valid).item() == pytest.approx(loss.item(), rel=1e-4)
    assert midas_loss(7 * target + 1, target, valid).item() == pytest.approx(0, abs=1e-5)
    assert midas_loss(-pred, target, valid).item() != pytest.approx(loss.item(), rel=1e-3)  # s > 0 only


def test_output_anchor_is_zero_at_median_one_and_spread_one_fifth_and_grows_away_from_it():
    step = 0.2 * 401 / 400  # 200 pixels at 1 - step, one at 1, 200 at 1 + step: median 1, mean |x - 1| = 0.2
    anchored = torch.cat([torch.full((200,), 1 - step), torch.ones(1), torch.full((200,), 1 + step)])
    anchored = anchored[torch.randperm(401, generator=torch.Generator().manual_seed(2))].reshape(1, 1, 401)
    valid = torch.ones(1, 1, 401, dtype=torch.bool)
    assert output_anchor_loss(anchored, valid).item() == pytest.approx(0, abs=1e-6)
    assert output_anchor_loss(anchored + 0.5, valid).item() == pytest.approx(0.25, rel=1e-4)
    widened = 1.0 + (anchored - 1.0) * 10
    assert output_anchor_loss(widened, valid).item() == pytest.approx(math.log(10) ** 2, rel=1e-4)
    target = torch.rand(1, 1, 401, generator=torch.Generator().manual_seed(3))
    assert training_loss(widened, target, valid).item() == pytest.approx(
        midas_loss(widened, target, valid).item() + ANCHOR_WEIGHT * math.log(10) ** 2, rel=1e-5)


def test_training_sees_the_output_before_the_final_relu():
    model = SwinV2DPT(SMALL_CONFIGS["nano"]).eval()
    with torch.no_grad():
        model.decoder.head.conv3.bias.fill_(-100.0)
        image = torch.randn(1, 3, 64, 64)
        assert torch.equal(model(image), torch.zeros(1, 64, 64))
        assert (model(image, clamp_negative=False) < 0).all()


def test_initialisation_starts_the_raw_output_near_the_anchor():
    model = trainer_module.init_from_scratch(SwinV2DPT(SMALL_CONFIGS["micro"]), seed=0)
    with torch.no_grad():
        raw = model(torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0)), clamp_negative=False)
    median = raw.median().item()
    spread = (raw - median).abs().mean().item()
    assert 0.5 < median < 1.5 and 0.02 < spread < 0.5 and (raw > 0).all()  # Kaiming everywhere gave -59 and 28


# ----------------------------------------------------------------------------- metrics


def test_scale_shift_fit_matches_numpy_lstsq():
    rng = np.random.default_rng(2)
    pred, target = rng.random((20, 30)), rng.random((20, 30))
    valid = rng.random((20, 30)) > 0.3
    design = np.stack([pred[valid], np.ones(valid.sum())], axis=1)
    expected, *_ = np.linalg.lstsq(design, target[valid], rcond=None)
    assert np.allclose(fit_scale_shift(pred, target, valid), expected, rtol=1e-9)


def test_scores_on_hand_made_cases():
    depth = np.array([[1.0, 2.0, 10.0, 0.0]])  # the last pixel has no ground truth
    exact = score_depth(3 / depth.clip(1e-9) + 7, depth)  # any affine map of the true disparity
    assert exact.absrel == pytest.approx(0, abs=1e-9) and exact.delta1 == 1.0 and exact.valid == 3
    capped = score_depth(1 / depth.clip(1e-9), depth, max_depth=5.0)  # 10 m is capped at 5 m
    assert capped.absrel == pytest.approx((0 + 0 + 0.5) / 3) and capped.delta1 == pytest.approx(2 / 3)


def test_row_gradient_baseline_is_exact_on_a_level_ground_plane():
    height, width, focal, camera_height = 40, 30, 50.0, 1.2
    rows = np.arange(height)[:, None] + 0.5 - height / 2 + np.zeros((1, width))
    depth = np.where(rows > 0, focal * camera_height / np.where(rows > 0, rows, 1), np.inf)
    scores = score_depth(row_gradient_baseline(depth), depth)
    assert scores.absrel == pytest.approx(0, abs=1e-9) and scores.valid == height // 2 * width


# ----------------------------------------------------------------------------- folder data


def test_folder_data_reads_every_ground_truth_format_and_names_bad_pairs(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "depth").mkdir()
    (tmp_path / "disparity").mkdir()
    depth = np.full((8, 12), 2.5, np.float32)
    depth[0, 0] = 0  # missing
    for stem in ["npy", "pfm", "tiff", "png16", "disp", "lonely", "broken"]:
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.png"), np.full((8, 12, 3), 128, np.uint8))
    np.save(tmp_path / "depth" / "npy.npy", depth)
    save_pfm(tmp_path / "depth" / "pfm.pfm", depth)
    cv2.imwrite(str(tmp_path / "depth" / "tiff.tiff"), depth)
    cv2.imwrite(str(tmp_path / "depth" / "png16.png"), (depth * 1000).astype(np.uint16))
    np.save(tmp_path / "disparity" / "disp.npy", np.where(depth > 0, 1 / depth.clip(1e-9), 0))
    (tmp_path / "depth" / "broken.npy").write_bytes(b"not numpy")
    samples, problems = load_folder(tmp_path, gt_scale=1000)
    assert sorted(sample.name for sample in samples) == ["disp", "npy", "pfm", "png16", "tiff"]
    for sample in samples:
        expected = np.where(depth > 0, 2.5, 0) if sample.name != "png16" else np.where(depth > 0, 2.5, 0)
        assert np.allclose(sample.depth, expected, rtol=1e-5), sample.name
    assert any("lonely.png" in line and "no ground truth" in line for line in problems)
    assert any("broken.npy" in line and "unreadable" in line for line in problems)


def test_batches_depend_on_seed_and_step_only():
    samples = load_synthetic(3)
    first = training_batch(samples, seed=4, step=9, batch_size=2, size=32)
    again = training_batch(samples, seed=4, step=9, batch_size=2, size=32)
    other = training_batch(samples, seed=4, step=10, batch_size=2, size=32)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    images, disparity, valid = first
    assert images.shape == (2, 3, 32, 32) and disparity.shape == valid.shape == (2, 32, 32)
    assert images.min() >= -1 and images.max() <= 1


def test_batches_made_by_worker_processes_are_the_same_batches_in_the_same_order(tmp_path):
    samples = load_synthetic(3)
    options = nano_options(tmp_path, seed=4, batch_size=2, size=32, steps=9, accumulate=2)
    for first_step in (0, 6):  # from the start, and from where a resumed run goes on
        loader = trainer_module.batch_loader(samples, options, first_step, workers=2, pin=False)
        made = list(loader)
        assert len(made) == (9 - first_step) * 2
        for index, batch in enumerate(made, start=first_step * 2):
            expected = training_batch(samples, seed=4, step=index, batch_size=2, size=32)
            assert all(torch.equal(got, torch.from_numpy(want)) for got, want in zip(batch, expected))


def test_batch_workers_default_to_none_on_a_cpu_and_some_beside_a_gpu(tmp_path):
    options = nano_options(tmp_path)
    lines = []
    assert trainer_module.batch_workers(options, torch.device("cpu"), lines.append) == 0
    assert 1 <= trainer_module.batch_workers(options, torch.device("cuda"), lines.append) <= 8
    assert trainer_module.batch_workers(nano_options(tmp_path, workers=3), torch.device("cpu"), lines.append) == 3
    assert lines == []


def test_batch_workers_are_fewer_where_shared_memory_is_short_and_none_without_fork(tmp_path, monkeypatch):
    options = nano_options(tmp_path, workers=8, batch_size=8, size=192)  # 3 batches of 4.7 MB per worker
    lines = []
    monkeypatch.setattr(trainer_module, "shared_memory_free", lambda: 64 * 2**20)  # a container's default
    assert trainer_module.batch_workers(options, torch.device("cuda"), lines.append) == 2  # in half of it
    assert len(lines) == 1 and "2 batch workers instead of 8" in lines[0] and "/dev/shm" in lines[0]
    monkeypatch.setattr(trainer_module, "shared_memory_free", lambda: 2**20)
    assert trainer_module.batch_workers(options, torch.device("cuda"), lines.append) == 0
    monkeypatch.setattr(trainer_module, "shared_memory_free", lambda: None)  # unknown: as asked
    assert trainer_module.batch_workers(options, torch.device("cuda"), lines.append) == 8
    monkeypatch.setattr(trainer_module.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    lines.clear()
    assert trainer_module.batch_workers(options, torch.device("cuda"), lines.append) == 0
    assert len(lines) == 1 and "cannot fork" in lines[0]


def load_synthetic(count):
    return render_split("train", count, 64, quiet=True, workers=1)


# ----------------------------------------------------------------------------- trainer


def nano_options(tmp_path, **changes) -> TrainOptions:
    values = dict(out=str(tmp_path / "nano.safetensors"), config="nano", scenes=6, scene_size=64, steps=6,
                  batch_size=2, size=64, warmup=2, lr=2e-3, val_every=1000, val_count=2, quiet=True)
    return TrainOptions(**{**values, **changes})


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_on_a_few_scenes_lowers_the_loss(tmp_path, precision):
    result = train(nano_options(tmp_path, scenes=2, steps=40, warmup=5, lr=3e-3, precision=precision), log=lambda line: None)
    losses = result["losses"]
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    model = load_model(tmp_path / "nano.safetensors")
    assert model.config == trainer_module.SMALL_CONFIGS["nano"]


def weights_of(path):
    return {key: value.clone() for key, value in load_model(path).state_dict().items()}


def test_same_seed_same_weights_and_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: reductions in one order
    try:
        train(nano_options(tmp_path / "a"), log=lambda line: None)
        train(nano_options(tmp_path / "b", workers=2), log=lambda line: None)  # batches from worker processes
        reference = weights_of(tmp_path / "a" / "nano.safetensors")
        assert all(torch.equal(reference[k], v) for k, v in weights_of(tmp_path / "b" / "nano.safetensors").items())

        real_batch = trainer_module.training_batch

        def interrupt_at_step_3(samples, seed, step, *args):
            if step == 3:
                raise KeyboardInterrupt
            return real_batch(samples, seed, step, *args)

        monkeypatch.setattr(trainer_module, "training_batch", interrupt_at_step_3)
        with pytest.raises(KeyboardInterrupt):
            train(nano_options(tmp_path / "c"), log=lambda line: None)
        assert trainer_module.state_path(tmp_path / "c" / "nano.safetensors").is_file()
        monkeypatch.setattr(trainer_module, "training_batch", real_batch)
        train(nano_options(tmp_path / "c"), resume=True, log=lambda line: None)
        resumed = weights_of(tmp_path / "c" / "nano.safetensors")
        assert all(torch.equal(reference[k], v) for k, v in resumed.items())
    finally:
        torch.set_num_threads(threads)


def test_accumulating_two_batches_of_4_is_one_batch_of_8(tmp_path, monkeypatch):
    """--accumulate 2 --batch-size 4 takes the step that --batch-size 8 takes on the same 8 crops:
    the same loss, and after one step (float32, one thread) the same weights up to rounding.

    AdamW's first step moves each weight by about lr * sign(gradient), so a step built from one
    micro-batch's gradient alone moves thousands of weights the other way: 2 lr apart."""
    samples = load_synthetic(3)
    crops = training_batch(samples, seed=0, step=0, batch_size=8, size=64)

    def the_same_eight(samples, seed, step, batch_size, size):
        assert step < 8 // batch_size
        return tuple(column[step * batch_size:(step + 1) * batch_size] for column in crops)

    monkeypatch.setattr(trainer_module, "training_batch", the_same_eight)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        initial = trainer_module.build(nano_options(tmp_path)).state_dict()
        runs = {}
        for name, batch_size, accumulate in (("one of 8", 8, 1), ("two of 4", 4, 2)):
            options = nano_options(tmp_path / name, steps=1, batch_size=batch_size, accumulate=accumulate,
                                   precision="float32", warmup=1, lr=1e-3)
            runs[name] = train(options, log=lambda line: None)["losses"], weights_of(tmp_path / name / "nano.safetensors")
    finally:
        torch.set_num_threads(threads)
    (losses_8, weights_8), (losses_4x2, weights_4x2) = runs["one of 8"], runs["two of 4"]
    assert losses_4x2 == pytest.approx(losses_8, rel=1e-5)
    moved = max((weights_8[key] - initial[key]).abs().max().item() for key in initial)
    assert 0.9e-3 < moved < 1.1e-3  # about lr: the step was taken
    for key in initial:  # measured: 1 of 390 k weights 7e-6 apart; with the first micro-batch lost, 97 k over 1e-5
        assert torch.allclose(weights_4x2[key], weights_8[key], rtol=0, atol=1e-5), key


def cpu_flags_say_bfloat16() -> bool:
    """This CPU's bfloat16 instructions, read from /proc/cpuinfo here rather than by the package's
    detector: x86 AVX512-BF16 or AMX-BF16 flags, Arm's bf16 feature."""
    try:
        text = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    flag_lines = re.findall(r"^(?:flags|Features)\s*:(.*)$", text, flags=re.MULTILINE)
    if not flag_lines:
        pytest.skip("/proc/cpuinfo lists no CPU flags")
    return bool({"avx512_bf16", "amx_bf16", "bf16"} & set(flag_lines[0].split()))


def test_precision_auto_is_bfloat16_exactly_where_the_cpu_has_it(tmp_path):
    """The passes really run in the precision chosen: bfloat16 and float32 give other weights,
    and auto gives the weights of the precision this CPU's instructions call for."""
    expected = "bfloat16" if cpu_flags_say_bfloat16() else "float32"
    lines = []
    for precision in ("float32", "bfloat16", "auto"):
        train(nano_options(tmp_path / precision, precision=precision), log=lines.append)
    weights = {precision: weights_of(tmp_path / precision / "nano.safetensors") for precision in ("float32", "bfloat16", "auto")}
    assert any(not torch.equal(weights["float32"][k], v) for k, v in weights["bfloat16"].items())
    assert all(torch.equal(weights[expected][k], v) for k, v in weights["auto"].items())
    assert f"{expected} passes on cpu" in [line for line in lines if line.startswith("training ")][-1]


def test_resume_may_change_the_precision_and_emulated_bfloat16_is_warned_about(tmp_path, monkeypatch):
    """The saved state is float32 whatever the passes ran in, so --resume may change --precision
    (a GPU run finished on a CPU); bfloat16 on a CPU without its instructions runs, with a warning."""
    train(nano_options(tmp_path, steps=3, precision="float32"), log=lambda line: None)
    monkeypatch.setattr(devices_module, "cpu_has_native_bfloat16", lambda: False)
    lines = []
    result = train(nano_options(tmp_path, steps=5, precision="bfloat16"), resume=True, log=lines.append)
    assert result["steps"] == 5 and len(result["losses"]) == 2
    assert any("no bfloat16 instructions" in line and "use precision float32" in line for line in lines), lines


def test_a_float16_run_resumes_at_the_loss_scale_it_had_reached(tmp_path, monkeypatch):
    """float16 passes (CUDA's; run here with CPU autocast) keep their loss scaler's state in the
    training state, and --resume goes on from it rather than from the initial 2^16."""
    monkeypatch.setattr(trainer_module, "training_autocast_dtype", lambda name, device: torch.float16)
    train(nano_options(tmp_path, steps=2), log=lambda line: None)
    path = trainer_module.state_path(tmp_path / "nano.safetensors")
    state = torch.load(path, weights_only=True)
    assert state["loss_scaler"]["scale"] > 0
    state["loss_scaler"]["scale"] = 8.0  # as if it had backed off after overflows
    torch.save(state, path)
    OutputRule().record(path)  # as the run itself would have saved it (an edited file is no longer ours)
    loaded = []
    real_load = torch.amp.GradScaler.load_state_dict
    monkeypatch.setattr(torch.amp.GradScaler, "load_state_dict",
                        lambda self, saved: (loaded.append(saved["scale"]), real_load(self, saved))[1])
    train(nano_options(tmp_path, steps=3), resume=True, log=lambda line: None)
    assert loaded == [8.0]
    assert torch.load(path, weights_only=True)["loss_scaler"]["scale"] == 8.0  # no overflow in one step


def test_fine_tuning_a_midas_checkpoint_keeps_its_architecture(tmp_path):
    tiny = tmp_path / "dpt_swin2_tiny_256.pt"
    save_midas_checkpoint(tiny, MIDAS_CONFIGS["tiny"], seed=3)
    out = tmp_path / "tuned.safetensors"
    code = main(["train", "--init", str(tiny), "--out", str(out), "--steps", "2", "--batch-size", "1",
                 "--size", "64", "--scenes", "2", "--val-count", "1", "--warmup", "1", "--quiet", "--device", "cpu"])
    assert code == 0
    assert load_model(out).config == load_model(tiny).config
    assert load_model(out).config.release_name == "tiny-256"


# ----------------------------------------------------------------------------- commands


@pytest.mark.parametrize("arguments, message", [
    ([], "--config NAME"),
    (["--config", "micro", "--init", "x.pt"], "exclude each other"),
    (["--config", "huge"], "--config huge"),
    (["--config", "nano", "--data", "no/such/folder"], "no/such/folder"),
    (["--config", "nano", "--size", "100"], "multiple of 32"),
    (["--config", "nano", "--resume"], "no training state"),
    (["--config", "nano", "--device", "cpu", "--precision", "float16"], "float16 needs a CUDA GPU"),
])
def test_train_refuses_bad_arguments_in_one_line(tmp_path, capsys, arguments, message):
    code = main(["train", "--out", str(tmp_path / "m.safetensors"), "--quiet", "--scenes", "2", "--val-count", "1", *arguments])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_ctrl_c_during_training_exits_130_with_a_saved_state(tmp_path, monkeypatch, capsys):
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "training_batch", interrupt)
    out = tmp_path / "m.safetensors"
    code = main(["train", "--config", "nano", "--out", str(out), "--quiet", "--scenes", "2", "--val-count", "1", "--size", "64"])
    assert code == 130
    assert trainer_module.state_path(out).is_file()
    assert "--resume" in capsys.readouterr().err


def test_a_dead_batch_worker_stops_training_in_one_line(tmp_path, monkeypatch, capsys):
    def die(*args):
        os._exit(3)  # in the worker process: as if killed

    monkeypatch.setattr(trainer_module, "training_batch", die)
    code = main(["train", "--config", "nano", "--out", str(tmp_path / "m.safetensors"), "--quiet", "--scenes", "2",
                 "--val-count", "1", "--size", "64", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "batch worker processes failed" in err and "--workers 0" in err
    assert len([line for line in err.splitlines() if line.startswith("error")]) == 1 and "Traceback" not in err, err


def test_ctrl_c_with_batch_workers_exits_130_and_leaves_no_process(tmp_path):
    out = tmp_path / "m.safetensors"
    command = [sys.executable, "-m", "muggled_swinv2", "train", "--config", "nano", "--out", str(out), "--quiet",
               "--scenes", "2", "--val-count", "1", "--size", "64", "--steps", "100000", "--workers", "2", "--device", "cpu"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # a warning may come first
        if line.startswith("training "):
            break
    time.sleep(3)  # steps under way, workers running
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)  # returns only once no worker holds stderr open
    assert process.returncode == 130, err
    assert trainer_module.state_path(out).is_file() and "--resume" in err


def test_resume_with_fewer_steps_than_were_run_is_refused_in_one_line(tmp_path, capsys):
    arguments = ["train", "--config", "nano", "--out", str(tmp_path / "m.safetensors"), "--quiet", "--scenes", "2",
                 "--val-count", "1", "--size", "64", "--steps", "2"]
    assert main(arguments) == 0
    capsys.readouterr()
    assert main([*arguments[:-1], "1", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--steps 1: the saved run is already at step 2" in err and len(err.strip().splitlines()) == 1, err
    assert main([*arguments, "--resume"]) == 0  # at its last step already: nothing to do, not an error


def test_eval_command_writes_the_protocol_json(tmp_path, small_checkpoint, capsys):
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    (folder / "depth").mkdir()
    for index in range(3):
        image, depth = render_scene(100 + index, (48, 64))
        cv2.imwrite(str(folder / "images" / f"s{index}.png"), image)
        np.save(folder / "depth" / f"s{index}.npy", depth)
    report = tmp_path / "scores.json"
    code = main(["eval", "--weights", str(small_checkpoint), "--data", str(folder), "--json", str(report), "--quiet"])
    assert code == 0
    result = json.loads(report.read_text())
    assert set(result["mean"]) == {"absrel", "delta1"} and set(result["baseline"]) == {"absrel", "delta1"}
    assert [row["name"] for row in result["images"]] == ["s0", "s1", "s2"]
    assert all(row["valid"] > 0 and 0 <= row["delta1"] <= 1 for row in result["images"])
    assert result["weights"] == str(small_checkpoint) and result["settings"]["count"] == 3
    assert result["settings"]["max_depth"] is None  # a folder: each image's farthest depth
    assert "AbsRel" in capsys.readouterr().out


def test_eval_on_synthetic_scenes_caps_depth_at_80_m_unless_told(tmp_path):
    """The cap shows in the scores: the demo model puts the far ground of the second test scene
    (an outdoor one, true depth up to 5.7 km) at a disparity below 1/80 after the fit. Capped at
    80 m its AbsRel is that of score_depth(..., max_depth=80), small; at 1e6 m (nearly no cap)
    hundreds; at the scene's own farthest depth (the default for folders) in between."""
    arguments = ["eval", "--weights", str(DEMO_WEIGHTS), "--count", "2", "--scene-size", "64", "--quiet", "--json"]
    assert main([*arguments, str(tmp_path / "capped.json")]) == 0
    capped = json.loads((tmp_path / "capped.json").read_text())
    assert capped["settings"]["max_depth"] == 80.0 and capped["settings"]["split"] == "test"
    assert main([*arguments, str(tmp_path / "uncapped.json"), "--max-depth", "1e6"]) == 0
    uncapped = json.loads((tmp_path / "uncapped.json").read_text())
    assert uncapped["settings"]["max_depth"] == 1e6
    assert [row["name"] for row in capped["images"]] == [row["name"] for row in uncapped["images"]]
    model = load_model(DEMO_WEIGHTS)
    samples = render_split("test", 2, 64, quiet=True, workers=1)
    for sample, capped_row, uncapped_row in zip(samples, capped["images"], uncapped["images"]):
        prediction = predict_depth(model, sample.image)
        assert capped_row["absrel"] == pytest.approx(score_depth(prediction, sample.depth, 80.0).absrel, rel=1e-4)
        assert uncapped_row["absrel"] == pytest.approx(score_depth(prediction, sample.depth, 1e6).absrel, rel=1e-4)
    own_farthest = score_depth(predict_depth(model, samples[1].image), samples[1].depth)
    assert capped["images"][1]["absrel"] < 0.2 < own_farthest.absrel < 10 < uncapped["images"][1]["absrel"]


def test_eval_names_a_folder_without_pairs(tmp_path, small_checkpoint, capsys):
    (tmp_path / "images").mkdir()
    code = main(["eval", "--weights", str(small_checkpoint), "--data", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and str(tmp_path) in err and "depth/" in err


# ----------------------------------------------------------------------------- the demo model fallback


def test_with_no_checkpoint_the_commands_use_the_demo_model_and_say_so(tmp_path, small_checkpoint, monkeypatch, capsys):
    import muggled_swinv2.formats.weights as weights_module

    empty = tmp_path / "no-weights"
    empty.mkdir()
    monkeypatch.setenv(weights_module.WEIGHTS_ENV, str(empty))
    monkeypatch.setattr(weights_module, "DEMO_WEIGHTS", small_checkpoint.resolve())
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), render_scene(1, (48, 64))[0])
    assert main(["image", str(picture), "--out", str(tmp_path / "out")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "demo model" in line]
    assert len(notes) == 1 and "embedded demo model" in notes[0] and "muggled-swinv2 download tiny" in notes[0]
    assert (tmp_path / "out" / "p.png").is_file()
    (empty / "mine.pt").write_bytes(small_checkpoint.read_bytes())  # any other checkpoint takes precedence
    assert main(["image", str(picture), "--out", str(tmp_path / "out2")]) == 0
    assert "demo model" not in capsys.readouterr().err
