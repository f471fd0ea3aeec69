"""accelerate_for_inference: the same function as the plain model on every configuration, every speed
path really taken, and right numbers (never a stale table, never a crash) under inference_mode,
no_grad, after casts and moves, after in-place weight edits, and with autograd on."""

import pickle
import platform
from collections import Counter
from contextlib import nullcontext

import numpy as np
import pytest
import torch

from muggled_swinv2 import SwinV2DPT, load_model
from muggled_swinv2.accelerate import accelerate_for_inference, is_accelerated, layers, speed_paths_off
from muggled_swinv2.accelerate.layers import BandedDepthHead, WinogradConv3x3, fused_cosine_attention
from muggled_swinv2.build import build_model
from muggled_swinv2.formats.key_table import MIDAS, to_native
from muggled_swinv2.reference import random_midas_state_dict
from muggled_swinv2.model import swinv2_dpt
from muggled_swinv2.model.config import RELEASES, SMALL_CONFIGS
from muggled_swinv2.model.dpt_decoder import FusionBlock, ResidualConvUnit
from muggled_swinv2.model.swinv2_encoder import SwinV2Block, WindowAttention, cosine_window_attention

TOLERANCE = 1e-5  # of the output range
CONFIGS = {**SMALL_CONFIGS, **{name: release.config for name, release in RELEASES.items()}}
FUSED_CPU_KERNEL = "aten::_scaled_dot_product_flash_attention_for_cpu"  # the slow fallback: ..._attention_math
ON_X86 = platform.machine().lower() in ("x86_64", "amd64")


def relative_error(result: torch.Tensor, reference: torch.Tensor) -> float:
    value_range = (reference.max() - reference.min()).item()
    assert value_range > 0, "degenerate reference output"
    return (result.float() - reference.float()).abs().max().item() / value_range


def plain_model(name: str, seed: int = 0) -> SwinV2DPT:
    native, _ = to_native(random_midas_state_dict(CONFIGS[name], seed), MIDAS)
    return build_model(CONFIGS[name], native).eval()


def plain_and_accelerated(name: str, seed: int = 0) -> tuple[SwinV2DPT, SwinV2DPT]:
    """Two models on equal (not shared) weights: plain, and accelerated."""
    return plain_model(name, seed), accelerate_for_inference(plain_model(name, seed))


def image_of(batch: int, height: int, width: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("name, batch, size_hw", [
    ("nano", 2, (64, 64)),
    ("nano", 1, (96, 160)),  # padded windows
    ("micro", 1, (256, 256)),  # the head in several bands
    ("micro", 2, (128, 224)),
    ("tiny", 1, (256, 256)),  # Winograd (256 channels) on the 16x16 to 64x64 fusion grids
    ("base", 1, (192, 192)),
    ("large", 1, (192, 192)),
])
def test_plain_and_accelerated_agree(name, batch, size_hw):
    plain, accelerated = plain_and_accelerated(name)
    assert not is_accelerated(plain) and is_accelerated(accelerated)
    assert list(accelerated.state_dict()) == list(plain.state_dict())
    image = image_of(batch, *size_hw)
    with torch.inference_mode():
        reference, result = plain(image), accelerated(image)
    assert result.shape == reference.shape == (batch, *size_hw)
    assert relative_error(result, reference) <= TOLERANCE


def operator_counts(model, image: torch.Tensor, *paths_off: str) -> Counter:
    """How often each operator ran in one inference forward, with the named speed paths off."""
    switch = speed_paths_off(model, *paths_off) if paths_off else nullcontext()
    with torch.inference_mode(), switch, torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        model(image)
    return Counter(event.name for event in profile.events())


class TableMakers:
    """Counts the calls of what makes the kept tables: position biases and Winograd filters."""

    def __init__(self, monkeypatch):
        self.calls = Counter()
        position_bias, transform_weight = WindowAttention.position_bias, layers.winograd.transform_weight

        def counted_position_bias(attention, window_hw):
            self.calls["position_bias"] += 1
            return position_bias(attention, window_hw)

        def counted_transform_weight(weight):
            self.calls["transform_weight"] += 1
            return transform_weight(weight)

        monkeypatch.setattr(WindowAttention, "position_bias", counted_position_bias)
        monkeypatch.setattr(layers.winograd, "transform_weight", counted_transform_weight)

    def made(self) -> Counter:
        """The calls since the last look."""
        calls, self.calls = self.calls, Counter()
        return calls


@pytest.mark.usefixtures("winograd_at_any_width")
def test_every_speed_path_runs(monkeypatch):
    """Agreement alone would also hold if the model silently took its plain paths: each path is
    seen running (its own operators, its own functions called), and gone with its switch off."""
    calls = {"winograd": 0, "bands": 0}
    winograd_conv3x3, depth_in_bands = layers.winograd.winograd_conv3x3, BandedDepthHead.depth_in_bands

    def counted_winograd(*args):
        calls["winograd"] += 1
        return winograd_conv3x3(*args)

    def counted_bands(self, features):
        calls["bands"] += 1
        return depth_in_bands(self, features)

    monkeypatch.setattr(layers.winograd, "winograd_conv3x3", counted_winograd)
    monkeypatch.setattr(BandedDepthHead, "depth_in_bands", counted_bands)
    model = accelerate_for_inference(plain_model("micro"))
    image = image_of(2, 128, 128)
    operators = operator_counts(model, image)
    assert calls["winograd"] > 0 and calls["bands"] == 2  # one image at a time
    attentions = sum(isinstance(module, WindowAttention) for module in model.modules())
    assert operators[FUSED_CPU_KERNEL] == attentions and "aten::_scaled_dot_product_attention_math" not in operators
    if ON_X86:  # oneDNN is there in every x86 build of PyTorch
        assert layers.onednn._ONEDNN_LINEAR and operators["mkldnn::_linear_pointwise"] > 0
        assert "mkldnn::_linear_pointwise" not in operator_counts(model, image, "linear")

    # in place: each block's GELU and its two residuals, each residual unit's hidden ReLU and its
    # residual, each fusion block's skip sum
    blocks = sum(isinstance(module, SwinV2Block) for module in model.modules())
    units = sum(isinstance(module, ResidualConvUnit) for module in model.modules())
    skips = sum(isinstance(module, FusionBlock) and module.skip_unit is not None for module in model.modules())
    out_of_place = operator_counts(model, image, "in_place")
    assert operators["aten::gelu_"] == blocks and "aten::gelu_" not in out_of_place
    assert operators["aten::add_"] - out_of_place["aten::add_"] == 2 * blocks + units + skips
    assert operators["aten::relu_"] - out_of_place["aten::relu_"] == units
    assert FUSED_CPU_KERNEL not in operator_counts(model, image, "attention")

    calls.update(winograd=0, bands=0)
    with torch.inference_mode(), speed_paths_off(model):
        model(image_of(1, 128, 128))
    assert calls == {"winograd": 0, "bands": 0}


@pytest.mark.usefixtures("winograd_at_any_width")
def test_tables_are_made_once_and_again_after_an_edit(monkeypatch):
    """The position biases (one per attention and window size) and the Winograd filters are made on
    the first call only, and again for the weight edited in place."""
    makers = TableMakers(monkeypatch)
    model = accelerate_for_inference(plain_model("micro"))
    image = image_of(1, 128, 128)  # Winograd on the 32x32 fusion grid
    with torch.inference_mode():
        model(image)
        attentions = sum(isinstance(module, WindowAttention) for module in model.modules())
        first = makers.made()
        assert first["position_bias"] == attentions and first["transform_weight"] > 0
        model(image)
        assert makers.made() == Counter()
        model.encoder.stages[0].blocks[1].attn.cpb_mlp[2].weight.mul_(0.5)
        model.decoder.fusion[0].unit.conv1.weight.mul_(0.5)
        model(image)
        assert makers.made() == Counter(position_bias=1, transform_weight=1)


def test_fused_attention_is_the_cosine_attention():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 3, 5, 8, generator=generator) for _ in range(3))  # (B, windows, heads, N, d)
    logit_scale = torch.tensor([1.0, 2.0, 6.0]).view(3, 1, 1)
    for bias in (torch.randn(3, 5, 5, generator=generator), torch.randn(4, 3, 5, 5, generator=generator)):
        expected = cosine_window_attention(q, k, v, logit_scale, bias)
        assert torch.allclose(fused_cosine_attention(q, k, v, logit_scale, bias), expected, atol=1e-5)


def test_all_speed_paths_off_is_the_plain_model():
    plain, accelerated = plain_and_accelerated("nano")
    image = image_of(1, 64, 96)
    with torch.inference_mode(), speed_paths_off(accelerated):
        assert torch.allclose(accelerated(image), plain(image), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="unknown speed paths"):
        with speed_paths_off(accelerated, "warp"):
            pass


@pytest.mark.parametrize("mode", [torch.inference_mode, torch.no_grad])
def test_loaded_and_run_inside_inference_mode_or_no_grad(small_checkpoint, mode, monkeypatch):
    """Issue 21 defect 8: a model loaded under inference_mode crashed on its first forward."""
    plain = load_model(small_checkpoint, accelerate=False)
    image = image_of(2, 64, 96)
    picture = (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8)
    with torch.no_grad():
        reference = plain(image)
    expected_depth = plain.predict(picture)
    makers = TableMakers(monkeypatch)
    with mode():
        model = load_model(small_checkpoint)
        assert is_accelerated(model) and isinstance(model, SwinV2DPT)
        first = model(image)
        assert makers.made()["position_bias"] > 0
        second = model(image)
        assert makers.made() == Counter()  # from the kept tables
        depth = model.predict(picture)
    assert relative_error(first, reference) <= TOLERANCE and torch.equal(first, second)
    assert depth.shape == (50, 70) and relative_error(torch.from_numpy(depth), torch.from_numpy(expected_depth)) <= TOLERANCE


@pytest.mark.parametrize("inside", [torch.inference_mode, torch.no_grad])
@pytest.mark.usefixtures("winograd_at_any_width")
def test_weights_edited_in_place_are_seen(inside):
    """An edit of a weight behind a table (position-bias MLP, Winograd filter) recomputes the table."""
    plain, accelerated = plain_and_accelerated("micro")
    image = image_of(1, 128, 128)  # Winograd on the 32x32 fusion grid
    with torch.inference_mode():
        accelerated(image)  # tables made
    for model in (plain, accelerated):
        with inside():
            model.encoder.stages[0].blocks[1].attn.cpb_mlp[2].weight.mul_(-1.5)
            model.decoder.fusion[0].unit.conv1.weight.mul_(2.0)
    assert isinstance(accelerated.decoder.fusion[0].unit.conv1, WinogradConv3x3)
    with torch.inference_mode():
        reference, result = plain(image), accelerated(image)
    assert relative_error(result, reference) <= TOLERANCE


def test_weights_replaced_inside_inference_mode_are_seen():
    """load_state_dict (copying, or assigning tensors made under inference_mode, which have no version
    counter) inside inference_mode."""
    _, accelerated = plain_and_accelerated("nano", seed=0)
    other = plain_model("nano", seed=5)
    image = image_of(1, 64, 64)
    with torch.inference_mode():
        expected = other(image)
        accelerated(image)
        accelerated.load_state_dict(other.state_dict())
        assert relative_error(accelerated(image), expected) <= TOLERANCE
        fresh = {key: tensor.clone() for key, tensor in plain_model("nano", seed=0).state_dict().items()}
        assert all(tensor.is_inference() for tensor in fresh.values())
        accelerated.load_state_dict(fresh, assign=True)
        accelerated(image)
        for key in fresh:
            if "cpb_mlp" in key:
                fresh[key].add_(0.25)  # in place, through the tensors the model now holds
    reference = plain_model("nano", seed=0)
    reference.load_state_dict(fresh)
    with torch.inference_mode():
        assert relative_error(accelerated(image), reference(image)) <= TOLERANCE


@pytest.mark.parametrize("cast", ["half", "bfloat16", "set_dtype float16"])
def test_casts_give_the_plain_models_numbers(cast):
    """After a cast the accelerated modules compute as their plain classes (their speed paths are
    float32 only), but for the fused attention, which serves every precision: the plain model's
    numbers to half-precision rounding."""
    plain, accelerated = plain_and_accelerated("nano")
    image = image_of(1, 64, 96)
    with torch.inference_mode():
        float32_result = accelerated(image)  # float32 tables made
        for model in (plain, accelerated):
            if cast == "half":
                model.half()
            elif cast == "bfloat16":
                model.to(torch.bfloat16)
            else:
                model.set_dtype(torch.float16)
        reference, result = plain(image), accelerated(image)
    if cast == "half":  # the whole encoder in float16 overflows (as MiDaS warns): NaN where the plain model's is
        assert torch.equal(result.isnan(), reference.isnan())  # the attention's own numbers: the test below
        return
    assert torch.isfinite(result).all()
    if cast == "bfloat16":  # 8 bits of mantissa: each way of summing is 2-4% off float32 (measured)
        assert FUSED_CPU_KERNEL in operator_counts(accelerated, image.bfloat16())
        assert relative_error(result, reference) <= 0.04
        assert relative_error(result, float32_result) <= 0.05
        return
    # set_dtype(float16) keeps the encoder float32 (its speed paths round differently), then float16 rounding
    assert relative_error(result, reference) <= 1e-2


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_attention_in_half_precision_is_the_plain_attention(dtype):
    """One masked block's attention (whole models overflow in float16), on the windows it gets in a
    forward: the fused kernel in half precision against the plain attention in the same precision
    and in float32."""
    plain, accelerated = plain_and_accelerated("micro")
    arguments = []
    block = (0, 1)  # stage 0, block 1: shifted windows, masked
    hook = plain.encoder.stages[block[0]].blocks[block[1]].attn.register_forward_pre_hook(
        lambda module, args: arguments.append(args))
    with torch.inference_mode():
        plain(image_of(1, 64, 96))
    hook.remove()
    windows, layout, mask = arguments[0]
    assert mask is not None
    plain_attention, fast_attention = (model.encoder.stages[block[0]].blocks[block[1]].attn for model in (plain, accelerated))
    with torch.inference_mode():
        expected = plain_attention(windows, layout, mask)
        plain_attention.to(dtype), fast_attention.to(dtype)
        reference = plain_attention(windows.to(dtype), layout, mask)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            result = fast_attention(windows.to(dtype), layout, mask)
    assert FUSED_CPU_KERNEL in {event.name for event in profile.events()}
    bound = 4 * relative_error(reference, expected)  # the plain attention's own rounding in this precision
    assert 0 < relative_error(result, expected) <= bound and relative_error(result, reference) <= bound


def test_cast_there_and_back_recomputes_the_tables():
    """.half().float() rounds every weight; the tables must follow (a table kept from before would
    differ by the float16 rounding, far above the tolerance)."""
    plain, accelerated = plain_and_accelerated("micro")
    image = image_of(1, 128, 128)
    with torch.inference_mode():
        accelerated(image)
    for model in (plain, accelerated):
        model.half().float()
    with torch.inference_mode():
        reference, result = plain(image), accelerated(image)
    assert relative_error(result, reference) <= TOLERANCE


def test_autograd_takes_the_plain_paths():
    """With autograd on (training, backward), the accelerated model computes as the plain one."""
    plain, accelerated = plain_and_accelerated("nano")
    image = image_of(1, 64, 64)
    with torch.inference_mode():
        accelerated(image)
    outputs = [model(image, clamp_negative=False) for model in (plain, accelerated)]
    for output in outputs:
        output.square().mean().backward()
    assert relative_error(outputs[1].detach(), outputs[0].detach()) <= 1e-6
    for (name, parameter), other in zip(plain.named_parameters(), accelerated.parameters()):
        assert torch.allclose(other.grad, parameter.grad, rtol=1e-4, atol=1e-6 * parameter.grad.abs().max()), name


def test_load_model_accelerates_unless_told(small_checkpoint):
    assert is_accelerated(load_model(small_checkpoint))
    assert not is_accelerated(load_model(small_checkpoint, accelerate=False))
    assert is_accelerated(load_model(small_checkpoint, dtype=torch.bfloat16))  # the fused attention serves every dtype
    assert type(load_model(small_checkpoint, accelerate=False)) is SwinV2DPT
    assert issubclass(SwinV2DPT, swinv2_dpt.SwinV2DPT) and not hasattr(swinv2_dpt.SwinV2DPT, "predict")


def test_accelerated_model_pickles_and_accelerating_twice_changes_nothing():
    plain, accelerated = plain_and_accelerated("nano")
    image = image_of(1, 64, 64)
    with torch.inference_mode():
        expected = accelerated(image)
    restored = pickle.loads(pickle.dumps(accelerate_for_inference(accelerated)))
    assert is_accelerated(restored)
    with torch.inference_mode():
        assert torch.equal(restored(image), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
@pytest.mark.parametrize("dtype, bound", [(torch.float32, TOLERANCE), (torch.bfloat16, 0.04)])
def test_gpu_runs_the_fused_attention_with_kept_tables(monkeypatch, dtype, bound):
    """On a GPU the accelerated model takes the fused attention kernel (no N x N matrix per window)
    with its position biases made once; every other module computes as the plain one."""
    makers = TableMakers(monkeypatch)
    plain, accelerated = (model.to("cuda", dtype) for model in plain_and_accelerated("micro"))
    image = image_of(1, 128, 192).to("cuda", dtype)
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.inference_mode():
        reference = plain(image)
        makers.made()
        with torch.profiler.profile(activities=activities) as profile:
            result = accelerated(image)
        assert makers.made()["position_bias"] == sum(isinstance(module, WindowAttention) for module in accelerated.modules())
        assert torch.equal(accelerated(image), result) and makers.made() == Counter()
    operators = {event.name for event in profile.events()}
    fused = {"aten::_scaled_dot_product_efficient_attention", "aten::_scaled_dot_product_flash_attention",
             "aten::_scaled_dot_product_cudnn_attention"}
    assert operators & fused and "aten::_scaled_dot_product_attention_math" not in operators
    assert relative_error(result, reference) <= bound


def test_winograd_only_where_it_pays():
    """3x3 convolutions with 256 or more outputs take Winograd; narrower ones (the depth head's, a
    small model's decoder) stay direct convolutions, as do other kernels and strides."""
    from muggled_swinv2.model.dpt_decoder import conv3x3

    wide, narrow = accelerate_for_inference(conv3x3(64, 256)), accelerate_for_inference(conv3x3(256, 128))
    strided = accelerate_for_inference(torch.nn.Conv2d(64, 256, 3, stride=2, padding=1))
    assert isinstance(wide, WinogradConv3x3) and not isinstance(narrow, WinogradConv3x3)
    assert not isinstance(strided, WinogradConv3x3)
    model = accelerate_for_inference(plain_model("tiny"))
    winograd_convs = [module for module in model.modules() if isinstance(module, WinogradConv3x3)]
    assert len(winograd_convs) == 4 + 2 * 7  # reassembly, and the fusion blocks' residual units
    assert not any(isinstance(module, WinogradConv3x3) for module in model.decoder.head.modules())
