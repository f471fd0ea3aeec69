"""The one table of tensor names: ours, MiDaS v3.1's and Hugging Face transformers', row by row.

Placeholders: {stage} and {block} count from 0 everywhere; {param} is weight or bias. Decoder
levels are {index} for us (0 = finest), {level} = index + 1 for MiDaS (refinenet1 = finest),
{hf_level} = 3 - index for Hugging Face (fusion layer 0 = deepest). Hugging Face keeps q, k and v
apart: a tuple there means our tensor is those tensors concatenated along dim 0.
"""

import re
from collections import defaultdict

import torch

from ..errors import UserError

OURS, MIDAS, HF = 0, 1, 2

_OB = "encoder.stages.{stage}.blocks.{block}."
_MB = "pretrained.model.layers.{stage}.blocks.{block}."
_HB = "backbone.encoder.layers.{stage}.blocks.{block}."
_HF_FUSION = "neck.fusion_stage.layers.{hf_level}."

KEY_TABLE = (
    # ours                                             MiDaS v3.1                                          Hugging Face
    ("encoder.patch_embed.proj.{param}", "pretrained.model.patch_embed.proj.{param}", "backbone.embeddings.patch_embeddings.projection.{param}"),
    ("encoder.patch_embed.norm.{param}", "pretrained.model.patch_embed.norm.{param}", "backbone.embeddings.norm.{param}"),
    (_OB + "attn.logit_scale", _MB + "attn.logit_scale", _HB + "attention.self.logit_scale"),
    (_OB + "attn.q_bias", _MB + "attn.q_bias", _HB + "attention.self.query.bias"),
    (_OB + "attn.v_bias", _MB + "attn.v_bias", _HB + "attention.self.value.bias"),
    (_OB + "attn.qkv.weight", _MB + "attn.qkv.weight",
     (_HB + "attention.self.query.weight", _HB + "attention.self.key.weight", _HB + "attention.self.value.weight")),
    (_OB + "attn.cpb_mlp.0.{param}", _MB + "attn.cpb_mlp.0.{param}", _HB + "attention.self.continuous_position_bias_mlp.0.{param}"),
    (_OB + "attn.cpb_mlp.2.weight", _MB + "attn.cpb_mlp.2.weight", _HB + "attention.self.continuous_position_bias_mlp.2.weight"),
    (_OB + "attn.proj.{param}", _MB + "attn.proj.{param}", _HB + "attention.output.dense.{param}"),
    (_OB + "norm1.{param}", _MB + "norm1.{param}", _HB + "layernorm_before.{param}"),
    (_OB + "mlp.fc1.{param}", _MB + "mlp.fc1.{param}", _HB + "intermediate.dense.{param}"),
    (_OB + "mlp.fc2.{param}", _MB + "mlp.fc2.{param}", _HB + "output.dense.{param}"),
    (_OB + "norm2.{param}", _MB + "norm2.{param}", _HB + "layernorm_after.{param}"),
    ("encoder.merges.{stage}.reduction.weight", "pretrained.model.layers.{stage}.downsample.reduction.weight",
     "backbone.encoder.layers.{stage}.downsample.reduction.weight"),
    ("encoder.merges.{stage}.norm.{param}", "pretrained.model.layers.{stage}.downsample.norm.{param}",
     "backbone.encoder.layers.{stage}.downsample.norm.{param}"),
    ("decoder.reassemble.{index}.weight", "scratch.layer{level}_rn.weight", "neck.convs.{index}.weight"),
    ("decoder.fusion.{index}.skip_unit.conv1.{param}", "scratch.refinenet{level}.resConfUnit1.conv1.{param}",
     _HF_FUSION + "residual_layer1.convolution1.{param}"),
    ("decoder.fusion.{index}.skip_unit.conv2.{param}", "scratch.refinenet{level}.resConfUnit1.conv2.{param}",
     _HF_FUSION + "residual_layer1.convolution2.{param}"),
    ("decoder.fusion.{index}.unit.conv1.{param}", "scratch.refinenet{level}.resConfUnit2.conv1.{param}",
     _HF_FUSION + "residual_layer2.convolution1.{param}"),
    ("decoder.fusion.{index}.unit.conv2.{param}", "scratch.refinenet{level}.resConfUnit2.conv2.{param}",
     _HF_FUSION + "residual_layer2.convolution2.{param}"),
    ("decoder.fusion.{index}.out_conv.{param}", "scratch.refinenet{level}.out_conv.{param}", _HF_FUSION + "projection.{param}"),
    ("decoder.head.conv1.{param}", "scratch.output_conv.0.{param}", "head.head.0.{param}"),
    ("decoder.head.conv2.{param}", "scratch.output_conv.2.{param}", "head.head.2.{param}"),
    ("decoder.head.conv3.{param}", "scratch.output_conv.4.{param}", "head.head.4.{param}"),
)

# Tensors the files hold that depth estimation does not use, and why.
UNUSED = {
    MIDAS: (
        ("pretrained.model.head.{any}", "ImageNet classifier"),
        ("pretrained.model.norm.{param}", "the classifier's final norm"),
        (_MB + "attn_mask", "shift masks, rebuilt for every input size"),
        (_MB + "attn.relative_position_index", "derived from the window size"),
        (_MB + "attn.relative_coords_table", "derived from the window size"),
        ("scratch.refinenet4.resConfUnit1.{any}", "the deepest fusion block has no skip input"),
    ),
    HF: (
        (_HB + "attention.self.relative_position_index", "derived from the window size"),
        (_HB + "attention.self.relative_coords_table", "derived from the window size"),
        ("neck.fusion_stage.layers.0.residual_layer1.{any}", "the deepest fusion block has no skip input"),
    ),
}

_PLACEHOLDERS = {
    "stage": r"\d+", "block": r"\d+", "index": r"\d+", "level": r"[1-9]", "hf_level": r"\d+",
    "param": r"weight|bias", "any": r".+",
}


class KeyMappingError(UserError):
    """Names that do not fit the table; the message lists them."""


def _regex(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, regex in _PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>{regex})")
    return re.compile(pattern)


def _fill(template: str, fields: dict) -> str:
    """Format a template, deriving each decoder-level numbering from whichever one is known."""
    fields = dict(fields)
    if "level" in fields:
        fields["index"] = int(fields["level"]) - 1
    elif "hf_level" in fields:
        fields["index"] = 3 - int(fields["hf_level"])
    if "index" in fields:
        fields["level"] = int(fields["index"]) + 1
        fields["hf_level"] = 3 - int(fields["index"])
    return template.format(**fields)


def _templates(cell) -> tuple[str, ...]:
    return cell if isinstance(cell, tuple) else (cell,)


_COMPILED = {
    column: [(row, part, _regex(template)) for row in KEY_TABLE for part, template in enumerate(_templates(row[column]))]
    for column in (OURS, MIDAS, HF)
}
_COMPILED_UNUSED = {column: [(_regex(t), reason) for t, reason in rows] for column, rows in UNUSED.items()}


def unused_reason(key: str, column: int) -> str | None:
    for regex, reason in _COMPILED_UNUSED.get(column, ()):
        if regex.fullmatch(key):
            return reason
    return None


def to_native(state_dict: dict, column: int) -> tuple[dict, dict[str, int]]:
    """External names -> ours. Returns (our state dict, {reason: count of tensors dropped})."""
    native, dropped, unknown = {}, defaultdict(int), []
    pieces = defaultdict(dict)  # our key -> {part: tensor}, for tensors split into parts
    for key, tensor in state_dict.items():
        reason = unused_reason(key, column)
        if reason:
            dropped[reason] += 1
            continue
        for row, part, regex in _COMPILED[column]:
            match = regex.fullmatch(key)
            if match:
                ours = _fill(row[OURS], match.groupdict())
                if isinstance(row[column], tuple):
                    pieces[ours][part] = tensor
                else:
                    native[ours] = tensor
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyMappingError(f"{len(unknown)} unexpected tensors: {summarize(unknown)}")
    for ours, parts in pieces.items():
        if len(parts) != 3:
            raise KeyMappingError(f"incomplete q/k/v for {ours}: found {len(parts)} of 3 parts")
        native[ours] = torch.cat([parts[index] for index in range(3)])
    return native, dict(dropped)


def from_native(native: dict, column: int) -> dict:
    """Our names -> external ones (tensors split where the format keeps them apart)."""
    external = {}
    for key, tensor in native.items():
        for row, _, regex in _COMPILED[OURS]:
            match = regex.fullmatch(key)
            if match:
                templates = _templates(row[column])
                chunks = tensor.chunk(len(templates)) if len(templates) > 1 else (tensor,)
                for template, chunk in zip(templates, chunks):
                    external[_fill(template, match.groupdict())] = chunk.contiguous()
                break
        else:
            raise KeyMappingError(f"no {('ours', 'MiDaS', 'Hugging Face')[column]} name for {key}")
    return external


def summarize(keys, limit: int = 5) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
