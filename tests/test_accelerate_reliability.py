"""The accelerated model behaves as the plain one where a user can tell them apart: called from
several threads at once (issue 26, N10), traced with torch.jit.trace (N11), its state dict saved
with safetensors (N12)."""

import threading
import time

import pytest
import torch

from muggled_swinv2 import load_model
from muggled_swinv2.accelerate import is_accelerated, layers

from test_accelerate import image_of, plain_and_accelerated, relative_error

TOLERANCE = 1e-5  # of the output range


def test_one_model_from_several_threads_gives_the_plain_models_numbers(monkeypatch):
    """Four threads share one accelerated model, two sizes in turn (micro: two masked blocks in
    stage 3 at 256 px). Each masked attention pauses between writing its bias-plus-mask and reading
    it, so that a buffer shared between calls would be overwritten by another thread (it was:
    0.33-0.49 of the range off)."""
    plain, accelerated = plain_and_accelerated("micro")
    images = [image_of(1, 256, 256, seed=2), image_of(1, 128, 192, seed=3)]
    with torch.inference_mode():
        expected = [plain(image) for image in images]
    fused = layers.fused_cosine_attention

    def paused_attention(q, k, v, logit_scale, bias):
        if bias.ndim == 4:  # a mask was added into a buffer
            time.sleep(0.002)  # lets the other threads run (the GIL is released)
        return fused(q, k, v, logit_scale, bias)

    monkeypatch.setattr(layers, "fused_cosine_attention", paused_attention)
    errors = {}

    def worker(thread: int) -> None:
        for call in range(4):
            which = (thread + call) % 2
            with torch.inference_mode():
                depth = accelerated(images[which])
            errors[thread, call] = relative_error(depth, expected[which])

    threads = [threading.Thread(target=worker, args=(thread,)) for thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 16 and max(errors.values()) <= TOLERANCE, max(errors.values())


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_jit_trace_records_the_plain_model(small_checkpoint, mode):
    """torch.jit.trace of the accelerated model raised "unsupported input list type: Scalar?" (the
    oneDNN call); a trace records the plain computation, as an export does."""
    model = load_model(small_checkpoint)
    plain = load_model(small_checkpoint, accelerate=False)
    image = image_of(1, 64, 64)
    with mode():
        traced = torch.jit.trace(model, image, check_trace=False)
        graph = str(traced.inlined_graph)
        expected, result = plain(image), traced(image)
    assert "mkldnn::_linear_pointwise" not in graph and "scaled_dot_product" not in graph
    assert relative_error(result, expected) <= 1e-6


def test_state_dict_is_the_plain_models_and_saves_with_safetensors(small_checkpoint, tmp_path):
    """safetensors refused the accelerated model's state dict (20 channels-last decoder weights)."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model, plain = load_model(small_checkpoint), load_model(small_checkpoint, accelerate=False)
    assert is_accelerated(model)
    saved, reference = model.state_dict(), plain.state_dict()
    assert list(saved) == list(reference)
    for key, tensor in saved.items():
        assert tensor.is_contiguous() and tensor.stride() == reference[key].stride(), key
        assert torch.equal(tensor, reference[key]), key
    path = tmp_path / "accelerated.safetensors"
    safetensors_torch.save_file(saved, str(path))
    loaded = safetensors_torch.load_file(str(path))
    assert all(torch.equal(loaded[key], reference[key]) for key in reference)
    kept = model.state_dict(keep_vars=True)  # the parameters themselves, as PyTorch's own gives
    assert all(kept[name] is parameter for name, parameter in model.named_parameters())
    decoder_convs = [module for name, module in model.named_modules() if name.startswith("decoder")
                     and isinstance(module, torch.nn.Conv2d)]
    assert decoder_convs and all(conv.weight.is_contiguous(memory_format=torch.channels_last) for conv in decoder_convs)
