"""An independent reference: Hugging Face transformers' DPTForDepthEstimation with a SwinV2 backbone,
given the same MiDaS-layout weights (test-only dependency).

Known differences of this reference from MiDaS, and where they matter:
- its windows and shifts are fixed when the model is built, from `image_size`, so a reference must
  be built for the size it runs at;
- on a non-square grid it uses the height's window for both axes, and it zero-pads a grid that is
  not a multiple of the window without masking the padding out. It therefore agrees with MiDaS's
  per-axis rules only where every stage grid is square, or a multiple of the window on both axes;
- some versions add the shift mask twice (-200 instead of -100): exp(-100) is already 0 in fp32.
"""

import re

import torch
from transformers import DPTConfig, DPTForDepthEstimation, Swinv2Config

# (MiDaS regex, HF template); groups are re-used by position, `refinenet{n}` -> fusion layer 4 - n.
_BLOCK = r"pretrained\.model\.layers\.(\d+)\.blocks\.(\d+)\."
_HF_BLOCK = "backbone.encoder.layers.{0}.blocks.{1}."
_RENAMES = [
    (r"pretrained\.model\.patch_embed\.proj\.(\w+)", "backbone.embeddings.patch_embeddings.projection.{0}"),
    (r"pretrained\.model\.patch_embed\.norm\.(\w+)", "backbone.embeddings.norm.{0}"),
    (_BLOCK + r"attn\.logit_scale", _HF_BLOCK + "attention.self.logit_scale"),
    (_BLOCK + r"attn\.q_bias", _HF_BLOCK + "attention.self.query.bias"),
    (_BLOCK + r"attn\.v_bias", _HF_BLOCK + "attention.self.value.bias"),
    (_BLOCK + r"attn\.cpb_mlp\.(\d)\.(\w+)", _HF_BLOCK + "attention.self.continuous_position_bias_mlp.{2}.{3}"),
    (_BLOCK + r"attn\.proj\.(\w+)", _HF_BLOCK + "attention.output.dense.{2}"),
    (_BLOCK + r"norm1\.(\w+)", _HF_BLOCK + "layernorm_before.{2}"),
    (_BLOCK + r"norm2\.(\w+)", _HF_BLOCK + "layernorm_after.{2}"),
    (_BLOCK + r"mlp\.fc1\.(\w+)", _HF_BLOCK + "intermediate.dense.{2}"),
    (_BLOCK + r"mlp\.fc2\.(\w+)", _HF_BLOCK + "output.dense.{2}"),
    (r"pretrained\.model\.layers\.(\d+)\.downsample\.(.+)", "backbone.encoder.layers.{0}.downsample.{1}"),
    (r"scratch\.output_conv\.(\d)\.(\w+)", "head.head.{0}.{1}"),
]
_IGNORED = re.compile(r"pretrained\.model\.(head|norm)\..*|.*attn_mask|scratch\.refinenet4\.resConfUnit1\..*")


def midas_to_hf_state_dict(midas_sd: dict) -> dict:
    """MiDaS-layout tensors -> transformers DPTForDepthEstimation (SwinV2 backbone) names."""
    hf = {}
    for key, tensor in midas_sd.items():
        if _IGNORED.fullmatch(key):
            continue
        qkv = re.fullmatch(_BLOCK + r"attn\.qkv\.weight", key)
        rn = re.fullmatch(r"scratch\.layer(\d)_rn\.weight", key)
        fusion = re.fullmatch(r"scratch\.refinenet(\d)\.(resConfUnit(\d)\.conv(\d)|out_conv)\.(\w+)", key)
        if qkv:
            prefix = _HF_BLOCK.format(*qkv.groups()) + "attention.self."
            for name, part in zip(("query", "key", "value"), tensor.chunk(3, dim=0)):
                hf[prefix + name + ".weight"] = part
        elif rn:
            hf[f"neck.convs.{int(rn[1]) - 1}.weight"] = tensor
        elif fusion:
            layer = 4 - int(fusion[1])
            if fusion[2] == "out_conv":
                hf[f"neck.fusion_stage.layers.{layer}.projection.{fusion[5]}"] = tensor
            else:
                name = f"residual_layer{fusion[3]}.convolution{fusion[4]}"
                hf[f"neck.fusion_stage.layers.{layer}.{name}.{fusion[5]}"] = tensor
        else:
            for pattern, template in _RENAMES:
                match = re.fullmatch(pattern, key)
                if match:
                    hf[template.format(*match.groups())] = tensor
                    break
            else:
                raise KeyError(f"no HF name for {key}")
    return hf


def build_hf_reference(config: dict, image_hw: tuple[int, int], midas_sd: dict) -> DPTForDepthEstimation:
    """transformers model for one input size, loaded (strictly) with the MiDaS-layout weights."""
    backbone = Swinv2Config(
        image_size=list(image_hw),
        patch_size=4,
        embed_dim=config["embed_dims"][0],
        depths=list(config["depths"]),
        num_heads=list(config["num_heads"]),
        window_size=config["window"],
        pretrained_window_sizes=list(config["pretrained_windows"]),
        drop_path_rate=0.0,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    dpt_config = DPTConfig(
        backbone_config=backbone,
        neck_hidden_sizes=list(config["embed_dims"]),
        fusion_hidden_size=256,
        use_batch_norm_in_fusion_residual=False,
        add_projection=False,
        head_in_index=-1,
    )
    model = DPTForDepthEstimation(dpt_config).eval()
    hf_sd = midas_to_hf_state_dict(midas_sd)
    # Layer 0 (MiDaS refinenet4) has an unused first residual unit; keep HF's own values there.
    for key, value in model.state_dict().items():
        if key.startswith("neck.fusion_stage.layers.0.residual_layer1."):
            hf_sd[key] = value
    missing, unexpected = model.load_state_dict(hf_sd, strict=False)
    persistent_missing = [key for key in missing if "relative_" not in key]
    if persistent_missing or unexpected:
        raise KeyError(f"HF mapping incomplete: missing {persistent_missing[:5]}, unexpected {unexpected[:5]}")
    return model


@torch.no_grad()
def hf_depth(model: DPTForDepthEstimation, image_bchw: torch.Tensor) -> torch.Tensor:
    return model(pixel_values=image_bchw).predicted_depth
