"""The whole model against transformers' DPTForDepthEstimation (SwinV2) on the same random weights."""

import pytest
import torch

from hf_reference import build_hf_reference, hf_depth
from midas_layout import MIDAS_CONFIGS, SMALL_CONFIG, make_midas_state_dict, native_model

from muggled_swinv2.accelerate import accelerate_for_inference

TOLERANCE = 1e-4  # of the output range, float32


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    value_range = (reference.max() - reference.min()).item()
    assert value_range > 0 and (reference > 0).float().mean() > 0.8, "reference output is degenerate"
    return (ours - reference).abs().max().item() / value_range


@pytest.mark.parametrize(
    "name, image_hw, batch",
    [
        ("tiny", (256, 256), 2),  # native sizes
        ("base", (384, 384), 1),
        ("large", (384, 384), 1),
        ("tiny", (512, 512), 1),  # larger than native: stage 3 shifts, stage 4 grows to a full window
        ("small", (256, 384), 2),  # non-square, every grid a multiple of the window
    ],
)
def test_matches_transformers(name, image_hw, batch):
    config = SMALL_CONFIG if name == "small" else MIDAS_CONFIGS[name]
    state_dict = make_midas_state_dict(config, seed=7)
    image = torch.randn(batch, 3, *image_hw, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)
    reference = hf_depth(build_hf_reference(config, image_hw, state_dict), image)
    plain = native_model(state_dict)
    with torch.no_grad():
        ours = plain(image)
        accelerated = accelerate_for_inference(plain)(image)  # as load_model gives it on the CPU
    for model, output in (("plain", ours), ("accelerated", accelerated)):
        assert output.shape == (batch, *image_hw)
        error = relative_error(output, reference)
        print(f"{name} {image_hw} batch {batch} {model}: max |ours - transformers| = {error:.2e} of the output range")
        assert error <= TOLERANCE


@pytest.mark.parametrize("image_hw", [(64, 64), (32, 32), (32, 320), (160, 96), (224, 288)])
def test_any_multiple_of_32_and_batch_consistency(small_model, image_hw):
    images = torch.randn(3, 3, *image_hw, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        batched = small_model(images)
        single = torch.cat([small_model(image[None]) for image in images])
    assert batched.shape == (3, *image_hw)
    assert torch.isfinite(batched).all()
    assert torch.allclose(batched, single, atol=1e-5 * batched.abs().max().item())


@pytest.mark.parametrize("shape", [(1, 3, 64, 48), (1, 3, 70, 64), (3, 64, 64), (1, 4, 64, 64)])
def test_rejects_bad_input_shapes(small_model, shape):
    with pytest.raises(ValueError, match="multiples of 32"):
        small_model(torch.zeros(shape))


def test_float16_stays_finite_and_close(small_checkpoint, small_model):
    """float16 runs the decoder in half precision and keeps the encoder (which overflows) in float32."""
    from muggled_swinv2 import load_model

    half = load_model(small_checkpoint, dtype=torch.float16)
    assert half.encoder.patch_embed.proj.weight.dtype == torch.float32
    assert half.decoder.head.conv1.weight.dtype == torch.float16
    image = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        reference, result = small_model(image), half(image)
    assert result.dtype == torch.float32 and torch.isfinite(result).all()
    assert (result - reference).abs().max() <= 1e-2 * (reference.max() - reference.min())
