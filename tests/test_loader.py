"""load_model: configuration inference, key mapping, and every way a checkpoint can be wrong."""

import pickle
import warnings
import zipfile

import pytest
import torch

from midas_layout import MIDAS_CONFIGS, SMALL_CONFIG, make_midas_state_dict

from muggled_swinv2 import CheckpointError, DeviceError, SwinV2DPT, load_model
from muggled_swinv2.formats.key_table import KEY_TABLE, MIDAS, from_native, to_native, unused_reason
from muggled_swinv2.model.windows import attention_mask, window_layout


@pytest.fixture(scope="module")
def small_state_dict():
    return make_midas_state_dict(SMALL_CONFIG, seed=0)


def save(tmp_path, state_dict, name="model.pt"):
    path = tmp_path / name
    torch.save(state_dict, path)
    return path


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("name", ["tiny", "base", "large"])
def test_infers_released_configs(tmp_path, name):
    spec = MIDAS_CONFIGS[name]
    model = load_model(save(tmp_path, make_midas_state_dict(spec, seed=1)))
    config = model.config
    assert config.release_name == {"tiny": "tiny-256", "base": "base-384", "large": "large-384"}[name]
    assert config.embed_dims == spec["embed_dims"]
    assert config.depths == spec["depths"]
    assert config.num_heads == spec["num_heads"]
    assert config.window_size == spec["window"]
    assert config.pretrained_window_sizes == spec["pretrained_windows"]
    assert config.native_size == spec["native"]
    assert model.checkpoint_format == "midas-pt"
    assert not model.training


def test_infers_custom_config(tmp_path, small_state_dict):
    config = load_model(save(tmp_path, small_state_dict)).config
    assert config.release_name == "custom"
    assert config.embed_dims == SMALL_CONFIG["embed_dims"]
    assert config.depths == SMALL_CONFIG["depths"]
    assert config.window_size == SMALL_CONFIG["window"]
    assert config.native_size == SMALL_CONFIG["native"]


def test_every_used_tensor_is_loaded_unchanged(tmp_path, small_state_dict):
    model = load_model(save(tmp_path, small_state_dict))
    native, dropped = to_native(small_state_dict, MIDAS)
    assert native.keys() == model.state_dict().keys()
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, native[key]), key
    used = {key: value for key, value in small_state_dict.items() if not unused_reason(key, MIDAS)}
    round_trip = from_native(native, MIDAS)
    assert round_trip.keys() == used.keys() and all(torch.equal(round_trip[k], used[k]) for k in used)
    assert sum(dropped.values()) == len(small_state_dict) - len(used)


def test_key_table_names_are_unique(small_state_dict):
    """The table maps onto our module tree one to one; the unused MiDaS tensors are named."""
    for column in range(3):
        cells = [row[column] for row in KEY_TABLE]
        assert len(cells) == len(set(cells))
    unused = sorted(key for key in small_state_dict if unused_reason(key, MIDAS))
    assert any(key.endswith("attn_mask") for key in unused)
    assert "pretrained.model.head.weight" in unused and "pretrained.model.norm.weight" in unused
    assert "scratch.refinenet4.resConfUnit1.conv1.weight" in unused


@pytest.mark.parametrize("name", ["tiny", "base"])
def test_saved_masks_equal_rebuilt_masks(name):
    """The shift masks stored in the file are exactly what our window layout builds."""
    spec = MIDAS_CONFIGS[name]
    state_dict = make_midas_state_dict(spec, seed=0)
    checked = 0
    for key, mask in state_dict.items():
        if key.endswith("attn_mask"):
            stage = int(key.split(".")[3])
            grid = spec["native"] // 4 // 2**stage
            assert torch.equal(attention_mask(window_layout((grid, grid), spec["window"], True)), mask)
            checked += 1
    assert checked > 0


def test_loads_on_device_and_dtype(tmp_path, small_state_dict):
    model = load_model(save(tmp_path, small_state_dict), device="cpu", dtype=torch.bfloat16)
    assert {tensor.dtype for tensor in model.parameters()} == {torch.bfloat16}
    with torch.no_grad():
        depth = model(torch.zeros(1, 3, 64, 64, dtype=torch.bfloat16))
    assert depth.shape == (1, 64, 64) and torch.isfinite(depth).all()


def test_rejects_unknown_dtype(tmp_path, small_state_dict):
    with pytest.raises(ValueError, match="dtype"):
        load_model(save(tmp_path, small_state_dict), dtype=torch.int8)


# ----------------------------------------------------------------------------- bad files


def assert_one_line_error(path, match):
    with pytest.raises(CheckpointError, match=match) as caught:
        load_model(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_file(tmp_path):
    assert_one_line_error(tmp_path / "nope.pt", "no such file")


def test_directory(tmp_path):
    assert_one_line_error(tmp_path, "folder without config.json")


def test_truncated_file(tmp_path, small_state_dict):
    path = save(tmp_path, small_state_dict)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = assert_one_line_error(path, "corrupt or truncated")
    assert message.endswith("failed finding central directory)")  # torch's first sentence, not cut mid-way


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"this is not a checkpoint at all" * 10)
    assert_one_line_error(path, "corrupt or truncated")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    assert_one_line_error(path, "empty file")


def test_corrupted_tensor_data(tmp_path, small_state_dict):
    """Bytes overwritten inside a stored tensor (a bad download): caught as non-finite weights."""
    path = save(tmp_path, small_state_dict)
    with zipfile.ZipFile(path) as archive:
        entry = max(archive.infolist(), key=lambda info: info.file_size)
    data = bytearray(path.read_bytes())
    local_header = 30 + len(entry.filename.encode()) + int.from_bytes(data[entry.header_offset + 28 : entry.header_offset + 30], "little")
    middle = entry.header_offset + local_header + entry.file_size // 2
    data[middle : middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    assert_one_line_error(path, "NaN or Inf")


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_not_executed(tmp_path, small_state_dict):
    marker = tmp_path / "pwned"
    path = save(tmp_path, {**small_state_dict, "payload": Exploit(marker)})
    message = assert_one_line_error(path, "refusing to unpickle")
    assert message.endswith("refusing to unpickle it (it asks for io.open)"), message  # not torch's advice
    assert not marker.exists()


def test_plain_pickle_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(Exploit(marker)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError):
            load_model(path)
    assert not marker.exists()
    assert not [warning for warning in caught if "pickle" in str(warning.message)], "only the one-line error"


def test_not_a_state_dict(tmp_path):
    path = save(tmp_path, [torch.zeros(3), torch.ones(2)])
    assert_one_line_error(path, "not a plain state dict")


def test_wrapped_training_checkpoint(tmp_path, small_state_dict):
    path = save(tmp_path, {"epoch": 3, "state_dict": small_state_dict})
    assert_one_line_error(path, "not a plain state dict")


def test_vit_dpt_checkpoint(tmp_path):
    state_dict = {
        "pretrained.model.cls_token": torch.zeros(1, 1, 8),
        "pretrained.model.blocks.0.attn.qkv.weight": torch.zeros(24, 8),
        "scratch.layer1_rn.weight": torch.zeros(4, 8, 3, 3),
        "scratch.output_conv.0.weight": torch.zeros(2, 4, 3, 3),
    }
    assert_one_line_error(save(tmp_path, state_dict), "ViT/BEiT")


def test_swin_v1_checkpoint(tmp_path):
    state_dict = {
        "pretrained.model.layers.0.blocks.0.attn.relative_position_bias_table": torch.zeros(49, 3),
        "scratch.layer1_rn.weight": torch.zeros(4, 8, 3, 3),
    }
    assert_one_line_error(save(tmp_path, state_dict), "Swin \\(V1\\)")


def test_classifier_checkpoint(tmp_path, small_state_dict):
    classifier = {
        key.removeprefix("pretrained.model."): tensor
        for key, tensor in small_state_dict.items()
        if key.startswith("pretrained.model.")
    }
    assert_one_line_error(save(tmp_path, classifier), "without the DPT depth decoder")


def test_unrelated_state_dict(tmp_path):
    assert_one_line_error(save(tmp_path, {"weight": torch.zeros(3)}), "not a SwinV2-DPT checkpoint \\(unrecognised tensor names such as weight")


def test_missing_tensor(tmp_path, small_state_dict):
    broken = dict(small_state_dict)
    del broken["scratch.refinenet2.out_conv.bias"]
    message = assert_one_line_error(save(tmp_path, broken), "missing tensors")
    assert "decoder.fusion.1.out_conv.bias" in message


def test_missing_block(tmp_path, small_state_dict):
    broken = {key: value for key, value in small_state_dict.items() if ".layers.1.blocks.0.attn.proj" not in key}
    assert_one_line_error(save(tmp_path, broken), "missing tensors")


def test_wrong_shape(tmp_path, small_state_dict):
    broken = dict(small_state_dict)
    broken["scratch.output_conv.2.weight"] = torch.zeros(32, 128, 5, 5)
    message = assert_one_line_error(save(tmp_path, broken), "wrong shape")
    assert "decoder.head.conv2.weight" in message


def test_inconsistent_widths(tmp_path, small_state_dict):
    broken = dict(small_state_dict)
    key = "pretrained.model.layers.1.blocks.0.norm1.weight"
    broken[key] = torch.zeros(broken[key].shape[0] + 1)
    assert_one_line_error(save(tmp_path, broken), "inconsistent architecture|wrong shape")


def test_unexpected_tensor(tmp_path, small_state_dict):
    broken = {**small_state_dict, "scratch.extra_conv.weight": torch.zeros(3)}
    message = assert_one_line_error(save(tmp_path, broken), "unexpected tensors")
    assert "scratch.extra_conv.weight" in message


def test_no_masks(tmp_path, small_state_dict):
    broken = {key: value for key, value in small_state_dict.items() if not key.endswith("attn_mask")}
    assert_one_line_error(save(tmp_path, broken), "window size")


@pytest.mark.parametrize("device, message", [("bogus", "unknown device 'bogus'"), ("cuda", "no CUDA GPU")])
def test_unavailable_device_is_a_clear_error(tmp_path, small_state_dict, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceError, match=message):
        load_model(save(tmp_path, small_state_dict), device=device)
