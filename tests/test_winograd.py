"""Winograd F(4x4, 3x3) convolutions against direct convolution (float64) and exact arithmetic."""

import contextlib
import random
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from muggled_swinv2.accelerate import accelerate_for_inference, speed_paths_off
from muggled_swinv2.accelerate.layers import WinogradConv3x3
from muggled_swinv2.accelerate.winograd import TILES_PER_PASS, winograd_matrices
from muggled_swinv2.model.dpt_decoder import conv3x3

TOLERANCE = 1e-5  # of the largest output magnitude, float32
pytestmark = pytest.mark.usefixtures("winograd_at_any_width")  # small convolutions keep these tests fast


def test_matrices_compute_1d_correlation_exactly():
    """y = A^T [(G g) * (B^T d)] is y_i = sum_k g_k d_(i+k), in exact rational arithmetic."""
    a_t, g_matrix, b_t = winograd_matrices()
    assert (len(a_t), len(a_t[0]), len(g_matrix), len(g_matrix[0]), len(b_t), len(b_t[0])) == (4, 6, 6, 3, 6, 6)
    rng = random.Random(0)
    for _ in range(20):
        d = [Fraction(rng.randint(-9, 9)) for _ in range(6)]
        g = [Fraction(rng.randint(-9, 9)) for _ in range(3)]
        transformed_g = [sum(row[k] * g[k] for k in range(3)) for row in g_matrix]
        transformed_d = [sum(row[k] * d[k] for k in range(6)) for row in b_t]
        products = [x * y for x, y in zip(transformed_g, transformed_d)]
        y = [sum(row[k] * products[k] for k in range(6)) for row in a_t]
        assert y == [sum(g[k] * d[i + k] for k in range(3)) for i in range(4)]


def random_conv(in_channels, out_channels, bias, seed=0) -> WinogradConv3x3:
    conv = conv3x3(in_channels, out_channels, bias=bias).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) / (3 * in_channels**0.5))
        if bias:
            conv.bias.copy_(torch.randn(out_channels, generator=generator))
    conv = accelerate_for_inference(conv)
    assert isinstance(conv, WinogradConv3x3)
    return conv


def direct_float64(conv: WinogradConv3x3, image: torch.Tensor) -> torch.Tensor:
    bias = None if conv.bias is None else conv.bias.double()
    return F.conv2d(image.double(), conv.weight.double(), bias, padding=1)


def relative_error(result: torch.Tensor, reference: torch.Tensor) -> float:
    return ((result.double() - reference).abs().max() / reference.abs().max()).item()


@pytest.mark.parametrize(
    "batch, in_channels, out_channels, height, width, bias, channels_last",
    [
        (1, 32, 48, 32, 32, True, True),  # smallest grid that uses Winograd
        (2, 16, 24, 96, 200, False, True),  # several bands, the last one partial; no bias
        (1, 24, 16, 64, 52, True, False),  # a channels-first input
        (3, 8, 8, 52, 64, True, True),
    ],
)
def test_matches_direct_convolution(batch, in_channels, out_channels, height, width, bias, channels_last):
    conv = random_conv(in_channels, out_channels, bias)
    image = torch.randn(batch, in_channels, height, width, generator=torch.Generator().manual_seed(1))
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    assert conv.uses_winograd(image) is False  # autograd is recording
    with torch.inference_mode():
        assert conv.uses_winograd(image)
        result = conv(image)
    assert result.shape == (batch, out_channels, height, width) and result.dtype == torch.float32
    assert relative_error(result, direct_float64(conv, image)) <= TOLERANCE


def test_band_size_covers_the_partial_band_case():
    """The second case above really has a partial last band (else it tests less than it claims)."""
    tile_cols, tile_rows = 200 // 4, 96 // 4
    band_rows = TILES_PER_PASS // tile_cols
    assert 1 < band_rows < tile_rows and tile_rows % band_rows != 0


@pytest.mark.parametrize(
    "shape, dtype, grad, enabled",
    [
        ((1, 8, 12, 16), torch.float32, False, True),  # grid too small: transforms cost more than they save
        ((1, 8, 50, 64), torch.float32, False, True),  # a side not a multiple of 4
        ((1, 8, 64, 64), torch.float64, False, True),  # only float32 runs Winograd
        ((1, 8, 64, 64), torch.float32, True, True),  # autograd: the plain convolution
        ((1, 8, 64, 64), torch.float32, False, False),  # switched off
    ],
)
def test_falls_back_to_the_plain_convolution(shape, dtype, grad, enabled):
    conv = random_conv(8, 8, bias=True).to(dtype)
    image = torch.randn(shape, dtype=dtype)
    switch = contextlib.nullcontext() if enabled else speed_paths_off(conv, "winograd")
    with torch.set_grad_enabled(grad), switch:
        assert not conv.uses_winograd(image)
        result = conv(image)
    expected = F.conv2d(image, conv.weight, conv.bias, padding=1)
    assert torch.equal(result, expected)


def test_transformed_weight_follows_new_weights():
    conv = random_conv(16, 16, bias=True, seed=0)
    image = torch.randn(1, 16, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        first = conv(image)
    conv.load_state_dict(random_conv(16, 16, bias=True, seed=5).state_dict())
    with torch.inference_mode():
        second = conv(image)
    assert relative_error(second, direct_float64(conv, image)) <= TOLERANCE
    assert relative_error(first, direct_float64(conv, image)) > 0.1


def test_transformed_weight_follows_in_place_edits_and_casts():
    """In-place edits (also under inference_mode), and a cast away and back, give a new table."""
    conv = random_conv(16, 16, bias=True, seed=0)
    image = torch.randn(1, 16, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        conv(image)
        conv.weight.mul_(-2)
        assert relative_error(conv(image), direct_float64(conv, image)) <= TOLERANCE
    conv.double().float()  # may land on the freed memory, at version 0 again
    with torch.inference_mode():
        assert relative_error(conv(image), direct_float64(conv, image)) <= TOLERANCE
