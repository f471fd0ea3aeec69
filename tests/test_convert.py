"""Checkpoint formats: our safetensors, Hugging Face transformers folders/files, and the converter."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from midas_layout import SMALL_CONFIG, make_midas_state_dict

from muggled_swinv2 import CheckpointError, load_model
from muggled_swinv2.cli import main
from muggled_swinv2.formats.convert import ConversionError, convert


@pytest.fixture(scope="module")
def image_batch():
    return torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))


def depth(path_or_model, image_bchw):
    model = load_model(path_or_model) if isinstance(path_or_model, (str, Path)) else path_or_model
    with torch.no_grad():
        return model(image_bchw)


def relative_error(a, b):
    return ((a - b).abs().max() / (b.max() - b.min())).item()


# ----------------------------------------------------------------------------- our format


def test_float32_conversion_is_bit_exact_and_holds_only_used_tensors(tmp_path, small_checkpoint, image_batch):
    target = tmp_path / "small.safetensors"
    report = convert(small_checkpoint, target)
    model = load_model(target)
    assert model.checkpoint_format == "muggled-safetensors"
    assert torch.equal(depth(model, image_batch), depth(small_checkpoint, image_batch))
    with safe_open(target, framework="pt") as file:
        keys, metadata = set(file.keys()), file.metadata()
    assert keys == set(model.state_dict()) and report.tensors_kept == len(keys)
    assert metadata["format"] == "muggled_swinv2" and metadata["format_version"] == "1"
    assert json.loads(metadata["config"])["embed_dims"] == list(SMALL_CONFIG["embed_dims"])
    assert sum(report.dropped.values()) == 10  # head 2, norm 2, masks 2, refinenet4.resConfUnit1 4
    assert not list(tmp_path.glob(".*partial"))


# Max error / output range. This random-weight model is harsher than a trained one (attention
# temperatures up to 100 over random keys make softmax nearly argmax); measured here: float16 0.2%,
# bfloat16 (8-bit mantissa) 1.5% with the vectors kept float32, 3.1% if they are rounded too.
HALF_TOLERANCE = {"float16": 1e-2, "bfloat16": 2e-2}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_conversion_halves_the_size_and_stays_close(tmp_path, small_checkpoint, image_batch, dtype):
    full, half = tmp_path / "full.safetensors", tmp_path / f"{dtype}.safetensors"
    convert(small_checkpoint, full)
    report = convert(small_checkpoint, half, dtype=dtype)
    assert report.bytes_after < 0.52 * full.stat().st_size
    with safe_open(half, framework="pt") as file:
        stored = {key: file.get_tensor(key).dtype for key in file.keys()}
    assert stored["decoder.head.conv1.weight"] == stored["encoder.stages.0.blocks.0.attn.qkv.weight"] == getattr(torch, dtype)
    assert stored["encoder.stages.0.blocks.0.norm1.weight"] == stored["encoder.stages.0.blocks.0.attn.cpb_mlp.0.weight"] == torch.float32
    assert relative_error(depth(half, image_batch), depth(small_checkpoint, image_batch)) < HALF_TOLERANCE[dtype]


def test_metadata_config_that_contradicts_the_tensors(tmp_path, small_checkpoint):
    target = tmp_path / "small.safetensors"
    convert(small_checkpoint, target)
    with safe_open(target, framework="pt") as file:
        tensors, metadata = {key: file.get_tensor(key) for key in file.keys()}, file.metadata()
    config = json.loads(metadata["config"])
    config["depths"] = [2, 2, 4, 2]
    save_file(tensors, target, metadata={**metadata, "config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="missing tensors"):
        load_model(target)


def test_unknown_format_version(tmp_path, small_checkpoint):
    target = tmp_path / "small.safetensors"
    convert(small_checkpoint, target)
    with safe_open(target, framework="pt") as file:
        tensors, metadata = {key: file.get_tensor(key) for key in file.keys()}, file.metadata()
    save_file(tensors, target, metadata={**metadata, "format_version": "99"})
    with pytest.raises(CheckpointError, match="format version '99'.*upgrade"):
        load_model(target)


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_safetensors(tmp_path, small_checkpoint, keep):
    target = tmp_path / "small.safetensors"
    convert(small_checkpoint, target)
    data = target.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as caught:
        load_model(target)
    assert "\n" not in str(caught.value) and str(target) in str(caught.value)


def test_corrupt_safetensors_header(tmp_path, small_checkpoint):
    target = tmp_path / "small.safetensors"
    convert(small_checkpoint, target)
    data = bytearray(target.read_bytes())
    data[8:40] = b"{" + b"\x00" * 31  # a header that is not JSON
    target.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(target)


def test_safetensors_of_another_family(tmp_path):
    path = tmp_path / "vit.safetensors"
    save_file({"pretrained.model.cls_token": torch.zeros(1, 1, 8), "scratch.layer1_rn.weight": torch.zeros(4, 8, 3, 3)}, path)
    with pytest.raises(CheckpointError, match="not a SwinV2-DPT checkpoint \\(a ViT/BEiT model\\)"):
        load_model(path)


# ----------------------------------------------------------------------------- converter edges


def test_refuses_to_overwrite_its_input(tmp_path, small_checkpoint):
    before = small_checkpoint.read_bytes()
    with pytest.raises(ConversionError, match="would overwrite the input"):
        convert(small_checkpoint, small_checkpoint, overwrite=True)
    hf_folder = tmp_path / "hf"
    convert(small_checkpoint, hf_folder, to="hf")
    with pytest.raises(ConversionError, match="would overwrite the input"):
        convert(hf_folder, hf_folder / "model.safetensors", overwrite=True)
    assert small_checkpoint.read_bytes() == before and load_model(hf_folder)


def test_existing_output_needs_overwrite(tmp_path, small_checkpoint):
    target = tmp_path / "small.safetensors"
    convert(small_checkpoint, target)
    with pytest.raises(ConversionError, match="exists; pass --overwrite"):
        convert(small_checkpoint, target)
    float32_bytes = target.stat().st_size
    convert(small_checkpoint, target, overwrite=True, dtype="float16")  # ours: replaced
    assert load_model(target).checkpoint_format == "muggled-safetensors"
    with safe_open(str(target), "pt") as replaced:
        assert replaced.get_tensor("decoder.head.conv1.weight").dtype == torch.float16
    assert target.stat().st_size < 0.6 * float32_bytes


def test_overwrite_never_replaces_a_file_we_did_not_write(tmp_path, small_checkpoint):
    target = tmp_path / "precious.safetensors"
    target.write_bytes(b"precious")
    foreign_model = tmp_path / "downloaded"
    foreign_model.mkdir()
    save_file({"x": torch.zeros(2)}, str(foreign_model / "model.safetensors"), metadata={"format": "pt"})
    (foreign_model / "config.json").write_text("{}")
    for path, to in ((target, "muggled"), (foreign_model, "hf")):
        with pytest.raises(ConversionError, match="was not written by muggled-swinv2; refusing to replace it"):
            convert(small_checkpoint, path, to=to, overwrite=True)
    assert target.read_bytes() == b"precious" and (foreign_model / "config.json").read_text() == "{}"


def test_existing_folder_as_file_target_is_named_before_overwrite(tmp_path, small_checkpoint):
    (tmp_path / "folder").mkdir()
    for overwrite in (False, True):
        with pytest.raises(ConversionError, match="is a folder; give the .safetensors file"):
            convert(small_checkpoint, tmp_path / "folder", overwrite=overwrite)


def test_bad_input_leaves_no_output(tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        convert(broken, tmp_path / "out.safetensors")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.pt"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda sd: sd.pop("scratch.output_conv.4.weight"), "1 missing tensors"),
        (lambda sd: sd.__setitem__("scratch.layer2_rn.weight", torch.zeros(256, 31, 3, 3)), "wrong shape"),
        (lambda sd: sd["scratch.refinenet1.out_conv.bias"].__setitem__(3, float("nan")), "NaN or Inf"),
    ],
)
def test_damaged_checkpoint_is_not_converted(tmp_path, damage, message):
    """The converter checks the tensors as the loader does: it never writes a file that would not load."""
    state_dict = make_midas_state_dict(SMALL_CONFIG, seed=5)
    damage(state_dict)
    source = tmp_path / "damaged.pt"
    torch.save(state_dict, source)
    for to, target in (("muggled", tmp_path / "out.safetensors"), ("hf", tmp_path / "out-hf")):
        with pytest.raises(CheckpointError, match=message) as error:
            convert(source, target, to=to)
        assert str(error.value).startswith(str(source))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["damaged.pt"]


def test_hf_overwrite_replaces_only_a_model_folder(tmp_path, small_checkpoint, monkeypatch):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("precious")
    (folder / "config.json").write_text("{}")
    with pytest.raises(ConversionError, match="holds other files \\(notes.txt, sub\\)"):
        convert(small_checkpoint, folder, to="hf", overwrite=True)
    assert (folder / "notes.txt").read_text() == "precious" and (folder / "sub").is_dir()

    monkeypatch.chdir(folder)  # "." is a folder too: the same rule, no crash on its empty name
    with pytest.raises(ConversionError, match="holds other files"):
        convert(small_checkpoint, ".", to="hf", overwrite=True)

    model_folder = tmp_path / "model"
    convert(small_checkpoint, model_folder, to="hf")
    convert(small_checkpoint, model_folder, to="hf", overwrite=True, dtype="float16")  # a model folder: replaced
    assert sorted(path.name for path in model_folder.iterdir()) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert json.loads((model_folder / "config.json").read_text())["torch_dtype"] == "float16"
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_missing_output_folder_is_made(tmp_path, small_checkpoint):
    convert(small_checkpoint, tmp_path / "nowhere" / "deeper" / "out.safetensors")
    assert (tmp_path / "nowhere" / "deeper" / "out.safetensors").is_file()


def test_cli_convert_prints_what_it_did(tmp_path, small_checkpoint, capsys):
    target = tmp_path / "small16.safetensors"
    assert main(["convert", str(small_checkpoint), str(target), "--dtype", "float16"]) == 0
    printed = capsys.readouterr().out
    assert "midas-pt" in printed and "float16" in printed and "tensors kept: 195" in printed
    assert "ImageNet classifier" in printed and "MiB ->" in printed
    assert main(["convert", str(small_checkpoint), str(target)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "exists; pass --overwrite" in error


def test_convert_script_and_info(tmp_path, small_checkpoint):
    target = tmp_path / "small.safetensors"
    script = [sys.executable, "-m", "muggled_swinv2", "convert", str(small_checkpoint), str(target)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    info = subprocess.run([sys.executable, "-m", "muggled_swinv2", "info", str(target)], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0 and "muggled-safetensors" in info.stdout


# ----------------------------------------------------------------------------- Hugging Face


@pytest.fixture(scope="module")
def hf_tiny(tmp_path_factory):
    """A random transformers DPTForDepthEstimation with the tiny-256 config, saved with save_pretrained."""
    from transformers import DPTConfig, DPTForDepthEstimation, Swinv2Config

    backbone = Swinv2Config(
        image_size=256, patch_size=4, embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
        window_size=16, pretrained_window_sizes=[0, 0, 0, 0], out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = DPTConfig(
        backbone_config=backbone, neck_hidden_sizes=[96, 192, 384, 768], fusion_hidden_size=256,
        use_batch_norm_in_fusion_residual=False, add_projection=False, head_in_index=-1,
    )
    torch.manual_seed(0)
    model = DPTForDepthEstimation(config).eval()
    with torch.no_grad():  # a head that leans positive, so the depth is not all clipped to zero
        model.head.head[4].bias.fill_(1.0)
    folder = tmp_path_factory.mktemp("hf") / "dpt-swinv2-tiny-256"
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture(scope="module")
def tiny_image():
    return torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))


def test_hf_folder_matches_transformers(hf_tiny, tiny_image):
    reference, folder = hf_tiny
    model = load_model(folder)
    assert model.checkpoint_format == "hf-directory" and model.config.release_name == "tiny-256"
    with torch.no_grad():
        expected = reference(pixel_values=tiny_image).predicted_depth
    assert expected.max() - expected.min() > 0
    assert relative_error(depth(model, tiny_image), expected) < 1e-4


def test_hf_safetensors_alone_and_pytorch_bin(tmp_path, hf_tiny, tiny_image):
    _, folder = hf_tiny
    expected = depth(folder, tiny_image)
    alone = load_model(folder / "model.safetensors")  # as published: the configuration from the tensors
    assert alone.checkpoint_format == "hf-safetensors" and alone.config == load_model(folder).config
    assert torch.equal(depth(alone, tiny_image), expected)
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "config.json").write_text((folder / "config.json").read_text())
    torch.save(hf_tiny[0].state_dict(), bin_folder / "pytorch_model.bin")
    assert torch.equal(depth(bin_folder, tiny_image), expected)


def test_round_trip_ours_hf_ours(tmp_path, hf_tiny, tiny_image):
    _, folder = hf_tiny
    ours, exported, back = tmp_path / "tiny.safetensors", tmp_path / "exported", tmp_path / "back.safetensors"
    convert(folder, ours)
    report = convert(ours, exported, to="hf")
    assert report.target_format.startswith("Hugging Face")
    convert(exported, back)
    first, last = load_model(ours).state_dict(), load_model(back).state_dict()
    assert first.keys() == last.keys() and all(torch.equal(first[key], last[key]) for key in first)
    assert torch.equal(depth(back, tiny_image), depth(folder, tiny_image))


def test_exported_folder_loads_in_transformers(tmp_path, small_checkpoint, image_batch):
    from transformers import DPTForDepthEstimation

    exported = tmp_path / "exported"
    convert(small_checkpoint, exported, to="hf")
    reference = DPTForDepthEstimation.from_pretrained(exported).eval()
    square = image_batch[..., :64]  # transformers lays windows out for its configured (native) size
    with torch.no_grad():
        expected = reference(pixel_values=square).predicted_depth
    assert relative_error(depth(small_checkpoint, square), expected) < 1e-4


def test_hf_config_that_contradicts_the_tensors(tmp_path, hf_tiny):
    _, folder = hf_tiny
    copy = tmp_path / "contradicting"
    copy.mkdir()
    (copy / "model.safetensors").symlink_to(folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    config["backbone_config"]["depths"] = [2, 2, 18, 2]
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="missing tensors"):
        load_model(copy)


def test_hf_folder_of_another_family(tmp_path):
    folder = tmp_path / "dpt-beit"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "dpt", "backbone_config": {"model_type": "beit"}}))
    save_file({"backbone.embeddings.cls_token": torch.zeros(1, 1, 8)}, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="describes dpt with a beit backbone"):
        load_model(folder)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="folder without config.json"):
        load_model(folder)
    with pytest.raises(CheckpointError, match="another backbone"):
        load_model(folder / "model.safetensors")


def test_hf_folder_without_weights_and_bad_json(tmp_path):
    folder = tmp_path / "empty-hf"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        load_model(folder)
    (folder / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no model.safetensors or pytorch_model.bin"):
        load_model(folder)


def test_safetensors_whose_header_length_looks_like_a_pickle(tmp_path):
    """A header length whose first byte is 0x80 (a pickle's first byte) is still safetensors."""
    path = tmp_path / "tricky.safetensors"
    for padding in range(256):
        save_file({"weight": torch.zeros(3)}, path, metadata={"padding": "x" * padding})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    with pytest.raises(CheckpointError, match="unrecognised tensor names such as weight"):
        load_model(path)


@pytest.mark.parametrize("to, target_name", [("muggled", "out.safetensors"), ("hf", "out-hf")])
@pytest.mark.parametrize(
    "failure, reason",
    [
        (SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"), "Error while serializing"),
        (PermissionError(13, "Permission denied"), "Permission denied"),
    ],
)
def test_write_errors_are_one_line_and_leave_nothing(tmp_path, monkeypatch, capsys, small_checkpoint, to, target_name, failure, reason):
    import muggled_swinv2.formats.convert as convert_module

    def failing_save_file(*args, **kwargs):
        raise failure

    monkeypatch.setattr(convert_module, "save_file", failing_save_file)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert main(["convert", str(small_checkpoint), str(out_dir / target_name), "--to", to]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{out_dir / target_name}: cannot write ({reason}" in error
    assert list(out_dir.iterdir()) == []


def test_exported_folder_has_the_usual_permissions(tmp_path, small_checkpoint):
    exported = tmp_path / "exported"
    convert(small_checkpoint, exported, to="hf")
    umask = os.umask(0)
    os.umask(umask)
    assert exported.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (exported / "config.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (exported / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # was 0600
