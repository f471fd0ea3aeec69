"""The CPU inference paths that compute the same numbers another way (model/onednn.py, the depth
head in bands): equal to the plain computation to float rounding, and the plain path wherever they
do not apply (autograd, other dtypes)."""

import pytest
import torch
import torch.nn.functional as F

from muggled_swinv2.model import dpt_decoder
from muggled_swinv2.model.dpt_decoder import DepthHead
from muggled_swinv2.model.onednn import Linear, blas_linears, linear, uses_onednn


@pytest.mark.parametrize("shape, bias", [((7, 16), True), ((2, 5, 9, 48), True), ((3, 64), False), ((0, 16), True)])
def test_linear_matches_f_linear(shape, bias):
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randn(*shape, generator=generator)
    weight = torch.randn(24, shape[-1], generator=generator)
    offset = torch.randn(24, generator=generator) if bias else None
    with torch.inference_mode():
        result, expected = linear(tokens, weight, offset), F.linear(tokens, weight, offset)
    assert result.shape == expected.shape == (*shape[:-1], 24)
    scale = expected.abs().max().item() if expected.numel() else 1.0
    assert torch.allclose(result, expected, rtol=1e-5, atol=1e-5 * max(1.0, scale))


def test_linear_takes_the_plain_path_where_oneDNN_does_not_apply():
    tokens, weight = torch.randn(4, 8), torch.randn(3, 8)
    with torch.inference_mode(), blas_linears():
        assert not uses_onednn(tokens, weight)
    assert not uses_onednn(tokens, weight)  # autograd on
    with torch.inference_mode():
        assert not uses_onednn(tokens.double(), weight.double())
    layer = Linear(8, 3)
    assert list(layer.state_dict()) == ["weight", "bias"]  # the keys of nn.Linear
    layer(tokens).sum().backward()  # gradients flow (F.linear)
    assert layer.weight.grad is not None and layer.weight.grad.shape == (3, 8)


def head_with_positive_output(in_channels: int, dtype=torch.float32) -> DepthHead:
    torch.manual_seed(0)
    head = DepthHead(in_channels, (16, 8)).eval()
    with torch.no_grad():
        head.conv2.bias += 0.3
        head.conv3.weight += 0.1
        head.conv3.bias.fill_(1.0)
    return head.to(dtype)


@pytest.mark.parametrize("batch, height, width, band_values", [
    (2, 12, 20, 2**20),  # one band
    (1, 9, 7, 300),      # many bands, odd sides
    (1, 1, 1, 2**20),    # a single feature pixel: the upsampling only copies
    (3, 2, 5, 160),      # a band of one row
])
def test_banded_head_matches_the_whole_upsampling(monkeypatch, batch, height, width, band_values):
    monkeypatch.setattr(dpt_decoder, "BAND_VALUES", band_values)
    head = head_with_positive_output(32)
    features = torch.randn(batch, 32, height, width, generator=torch.Generator().manual_seed(1))
    features = features.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        whole, banded = head.depth_from_features(features), head(features)
    assert banded.shape == whole.shape == (batch, 2 * height, 2 * width)
    assert (banded - whole).abs().max() <= 1e-5 * (whole.max() - whole.min()).clamp(min=1e-6)


def test_banded_head_only_in_float32_inference():
    head = head_with_positive_output(8, torch.bfloat16)
    features = torch.randn(1, 8, 6, 6).to(torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(head(features), head.depth_from_features(features))  # half precision: whole
    head = head_with_positive_output(8)
    features = torch.randn(1, 8, 6, 6, requires_grad=True)
    head(features).sum().backward()  # autograd: the whole path, differentiable
    assert features.grad is not None
