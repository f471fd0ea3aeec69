"""The benchmark: runs end to end (small sizes), reports what it measured, and its FLOP count and
its claim of where transformers computes the same function are right."""

import json
import subprocess
import sys

import pytest
import torch

from hf_reference import build_hf_reference, hf_depth
from midas_layout import SMALL_CONFIG, make_midas_state_dict, native_model

from muggled_swinv2.jobs.bench.measure import count_flops, peer_computes_same_function
from muggled_swinv2.model import SwinV2DPTConfig
from muggled_swinv2.model.config import RELEASES
from muggled_swinv2.accelerate import accelerate_for_inference
from muggled_swinv2.accelerate.layers import WinogradConv3x3
from muggled_swinv2.cli import main


def small_config() -> SwinV2DPTConfig:
    return SwinV2DPTConfig(
        embed_dims=SMALL_CONFIG["embed_dims"], depths=SMALL_CONFIG["depths"], num_heads=SMALL_CONFIG["num_heads"],
        window_size=SMALL_CONFIG["window"], pretrained_window_sizes=SMALL_CONFIG["pretrained_windows"],
        native_size=SMALL_CONFIG["native"],
    )


def test_bench_command_writes_a_complete_report(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "muggled_swinv2", "bench", "--models", "tiny", "--sizes", "64,64x96",
               "--batch-sizes", "1", "--repeats", "1", "--plain", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| case |" in result.stdout and "GEMM" in result.stdout and "Winograd gain" in result.stdout
    report = json.loads(out.read_text())
    assert report["gemm_gflops"] > 0
    rows = {row["case"]: row for row in report["results"]}
    assert set(rows) == {"tiny@64x64 b1", "tiny@64x96 b1"}
    for row in rows.values():
        assert row["gflop"] > 0 and row["ours_s"] > 0 and row["peer_s"] > 0 and row["speedup"] > 0
        assert row["ours_finite"] and row["peer_finite"]
        assert row["ours_peak_mib"] > 0 and row["peer_peak_mib"] > 0
        assert row["plain_s"] > 0 and row["winograd_gain"] == pytest.approx(row["plain_s"] / row["ours_s"])
    assert rows["tiny@64x64 b1"]["max_diff"] <= 1e-4  # the same function, on the same weights
    assert rows["tiny@64x96 b1"]["max_diff"] is None  # the peer's windows differ there: no parity claim
    assert report["peer_computes_another_function"] == ["tiny@64x96"]


def bench(capsys, *args: str) -> tuple[int, str]:
    """(exit code, stderr) of `muggled-swinv2 bench ARGS`, run in this process (argparse's refusals exit)."""
    try:
        code = main(["bench", *args])
    except SystemExit as end:
        code = end.code
    return code, capsys.readouterr().err


def test_bench_rejects_bad_plans(capsys):
    cases = [(["--models", "huge"], "error: unknown model 'huge'; choose from tiny,base,large"),
             (["--models", "tiny", "--sizes", "100"], "error: --sizes 100: tiny needs positive multiples of 32")]
    for args, message in cases:
        code, err = bench(capsys, *args)
        assert code != 0
        assert err.strip() == message


def test_flops_are_those_of_the_direct_computation():
    """Winograd does fewer multiplications; the count must not depend on it (and must be exact)."""
    config = small_config()
    model = accelerate_for_inference(native_model(make_midas_state_dict(SMALL_CONFIG, seed=1)))
    image = torch.zeros(1, 3, 256, 256)  # the finest fusion grid is 64x64: Winograd runs there
    flops = count_flops(model, image)
    assert all(conv.fast for conv in model.modules() if isinstance(conv, WinogradConv3x3))  # switched back on

    # The decoder's convolutions, counted by hand: 2 FLOPs per multiply-add.
    channels, (mid, last) = config.fusion_channels, config.head_channels
    grids = [(256 // 4 // 2**level) ** 2 for level in range(4)]
    reassemble = sum(2 * 9 * dim * channels * grid for dim, grid in zip(config.embed_dims, grids))
    units = sum(2 * 2 * 9 * channels * channels * grid * (2 if level < 3 else 1) for level, grid in enumerate(grids))
    out_convs = sum(2 * channels * channels * grid for grid in grids)
    head = 2 * 9 * channels * mid * (128 * 128) + 2 * 9 * mid * last * (256 * 256) + 2 * last * 256 * 256
    decoder = reassemble + units + out_convs + head
    assert flops > decoder
    with torch.inference_mode():
        stage_outputs = model.encoder(image)
    decoder_only = count_flops(model.decoder, stage_outputs)
    assert decoder_only == decoder

    # Counted as it runs, with Winograd, the same forward does fewer multiplications: the switch matters.
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.decoder(stage_outputs)
    assert counter.get_total_flops() < decoder


@pytest.mark.parametrize(
    "name, size_hw, same",
    [
        ("tiny", (256, 256), True),
        ("base", (384, 384), True),
        ("large", (768, 768), True),
        ("base", (384, 672), False),  # stage 2 grid 48x84: padded
        ("tiny", (256, 384), False),  # stage 3 grid 16x24: we shift the long axis, the peer does not
    ],
)
def test_peer_window_agreement_on_released_configs(name, size_hw, same):
    assert peer_computes_same_function(RELEASES[name].config, size_hw) is same


@pytest.mark.parametrize("image_hw, same", [((256, 384), True), ((64, 96), False), ((96, 64), False)])
def test_peer_window_agreement_is_what_transformers_does(image_hw, same):
    """Where the claim says 'same', transformers agrees with us; where it says 'different', it does not."""
    assert peer_computes_same_function(small_config(), image_hw) is same
    state_dict = make_midas_state_dict(SMALL_CONFIG, seed=2)
    image = torch.randn(1, 3, *image_hw, generator=torch.Generator().manual_seed(4)).clamp(-1, 1)
    reference = hf_depth(build_hf_reference(SMALL_CONFIG, image_hw, state_dict), image)
    with torch.no_grad():
        ours = native_model(state_dict)(image)
    error = ((ours - reference).abs().max() / (reference.max() - reference.min())).item()
    assert (error <= 1e-4) is same


@pytest.mark.parametrize(
    "args, message",
    [
        (["--threads", "0"], "--threads: expected a positive integer"),
        (["--repeats", "0"], "--repeats: expected a positive integer"),
        (["--batch-sizes", "x"], "--batch-sizes: expected positive integers"),
        (["--sizes", "abc"], "--sizes 'abc': expected native, H or HxW"),
        (["--sizes", "0"], "--sizes 0: tiny needs positive multiples of 32"),
        (["--sizes", "64x70"], "--sizes 64x70: tiny needs positive multiples of 32"),
        (["--no-peer", "--sizes", "64", "--json", "/nonexistent/out.json"], "--json /nonexistent/out.json: cannot write"),
    ],
)
def test_bench_bad_arguments_are_one_line_errors(capsys, args, message):
    code, err = bench(capsys, "--models", "tiny", *args)
    assert code != 0
    assert "Traceback" not in err
    assert message in err.strip().splitlines()[-1]


def test_bench_onnxruntime_peer(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "muggled_swinv2", "bench", "--models", "tiny", "--sizes", "64", "--batch-sizes", "1",
               "--repeats", "1", "--peers", "onnxruntime", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "ORT speed-up" in result.stdout and "peer s" not in result.stdout
    (row,) = json.loads(out.read_text())["results"]
    assert row["onnxruntime_s"] > 0 and row["onnxruntime_peak_mib"] > 0 and row["onnxruntime_finite"]
    assert row["onnxruntime_speedup"] == pytest.approx(row["onnxruntime_s"] / row["ours_s"])
    assert row["onnxruntime_max_diff"] <= 1e-4 and row["peer_s"] is None


def test_bench_unknown_peer_is_refused(capsys):
    code, err = bench(capsys, "--peers", "tvm")
    assert code == 2 and err.strip() == "error: --peers tvm: choose from transformers,onnxruntime"


def test_default_plan_comes_from_the_release_registry():
    """tiny@256 and base@384 at batch 1 and 4, large@384 at batch 1 only, and base at the wide
    384x672: each release at its native size, the largest quick release also wide."""
    from muggled_swinv2.jobs.bench.plan import BenchOptions, plan_cases

    labels = [case.label for case in plan_cases(BenchOptions())]
    assert labels == ["tiny@256x256 b1", "tiny@256x256 b4", "base@384x384 b1", "base@384x384 b4", "base@384x672 b1",
                      "large@384x384 b1"]
    assert [case.label for case in plan_cases(BenchOptions(models="large,tiny", sizes="64,native", batch_sizes=[2]))] == \
        ["large@64x64 b2", "large@384x384 b2", "tiny@64x64 b2", "tiny@256x256 b2"]
