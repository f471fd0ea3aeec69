"""The CPU inference paths that compute the same numbers another way (accelerate/onednn.py, the depth
head in bands): equal to the plain computation to float rounding, and the plain path wherever they
do not apply (autograd, other dtypes, switched off)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from muggled_swinv2.accelerate import accelerate_for_inference, layers, onednn, speed_paths_off
from muggled_swinv2.accelerate.layers import BandedDepthHead, OneDNNLinear
from muggled_swinv2.accelerate.onednn import linear, uses_onednn
from muggled_swinv2.model.dpt_decoder import DepthHead

ONEDNN_OP = "mkldnn::_linear_pointwise"
needs_onednn = pytest.mark.skipif(not onednn._ONEDNN_LINEAR, reason="oneDNN linear layers run on x86-64 builds with oneDNN only")


def operators_run(function) -> set[str]:
    """Names of the operators `function()` ran (torch.profiler)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        function()
    return {event.name for event in profile.events()}


@needs_onednn
@pytest.mark.parametrize("shape, bias", [((7, 16), True), ((2, 5, 9, 48), True), ((3, 64), False)])
def test_linear_matches_f_linear_and_runs_onednn(shape, bias):
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randn(*shape, generator=generator)
    weight = torch.randn(24, shape[-1], generator=generator)
    offset = torch.randn(24, generator=generator) if bias else None
    with torch.inference_mode():
        assert ONEDNN_OP in operators_run(lambda: linear(tokens, weight, offset))
        result, expected = linear(tokens, weight, offset), F.linear(tokens, weight, offset)
    assert result.shape == expected.shape == (*shape[:-1], 24)
    scale = expected.abs().max().item()
    assert torch.allclose(result, expected, rtol=1e-5, atol=1e-5 * max(1.0, scale))


def test_linear_of_no_tokens_is_f_linear():
    tokens, weight = torch.randn(0, 16), torch.randn(24, 16)
    with torch.inference_mode():
        assert not uses_onednn(tokens, weight)
        assert linear(tokens, weight).shape == (0, 24)


@needs_onednn
def test_accelerated_linear_layer_runs_onednn_only_where_it_applies():
    layer = accelerate_for_inference(nn.Linear(8, 3))
    tokens = torch.randn(4, 8)
    assert isinstance(layer, OneDNNLinear) and list(layer.state_dict()) == ["weight", "bias"]  # the keys of nn.Linear
    with torch.inference_mode():
        assert ONEDNN_OP in operators_run(lambda: layer(tokens))
        with speed_paths_off(layer, "linear"):
            assert ONEDNN_OP not in operators_run(lambda: layer(tokens))
        assert ONEDNN_OP not in operators_run(lambda: layer.double()(tokens.double()))
    layer.float()
    assert not uses_onednn(tokens, layer.weight)  # autograd on
    assert ONEDNN_OP not in operators_run(lambda: layer(tokens))
    layer(tokens).sum().backward()  # gradients flow (F.linear)
    assert layer.weight.grad is not None and layer.weight.grad.shape == (3, 8)


def head_with_positive_output(in_channels: int, dtype=torch.float32) -> BandedDepthHead:
    torch.manual_seed(0)
    head = DepthHead(in_channels, (16, 8)).eval()
    with torch.no_grad():
        head.conv2.bias += 0.3
        head.conv3.weight += 0.1
        head.conv3.bias.fill_(1.0)
    return accelerate_for_inference(head.to(dtype))


@pytest.mark.parametrize("batch, height, width, band_values", [
    (2, 12, 20, 2**20),  # one band
    (1, 9, 7, 300),      # many bands, odd sides
    (1, 1, 1, 2**20),    # a single feature pixel: the upsampling only copies
    (3, 2, 5, 160),      # a band of one row
])
def test_banded_head_matches_the_whole_upsampling(monkeypatch, batch, height, width, band_values):
    monkeypatch.setattr(layers, "BAND_VALUES", band_values)
    head = head_with_positive_output(32)
    assert isinstance(head, BandedDepthHead)
    features = torch.randn(batch, 32, height, width, generator=torch.Generator().manual_seed(1))
    features = features.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        with speed_paths_off(head, "head"):
            whole = head(features)
        banded = head(features)
        assert torch.equal(banded[:1], head.depth_in_bands(features[:1]))  # the banded path ran
    assert banded.shape == whole.shape == (batch, 2 * height, 2 * width)
    assert (banded - whole).abs().max() <= 1e-5 * (whole.max() - whole.min()).clamp(min=1e-6)


def test_banded_head_only_in_float32_inference(monkeypatch):
    calls = []
    monkeypatch.setattr(BandedDepthHead, "depth_in_bands", lambda self, features: calls.append(1))
    head = head_with_positive_output(8, torch.bfloat16)
    features = torch.randn(1, 8, 6, 6).to(torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(head(features), DepthHead.forward(head, features))  # half precision: whole
    head = head_with_positive_output(8)
    features = torch.randn(1, 8, 6, 6, requires_grad=True)
    head(features).sum().backward()  # autograd: the whole path, differentiable
    assert features.grad is not None
    with torch.inference_mode():
        head(features.detach(), clamp_negative=False)  # unclamped output is for training: whole
    assert calls == []
