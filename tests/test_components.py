"""Each encoder piece against a direct, loop-by-loop re-derivation of the reference facts."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from muggled_swinv2.model.swinv2_encoder import PatchMerging, SwinV2Block, cosine_window_attention
from muggled_swinv2.model.windows import (
    attention_mask,
    merge_windows,
    partition_windows,
    relative_coords_table,
    window_layout,
)


def randomize_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.named_parameters():
            if name.endswith("logit_scale"):
                tensor.copy_(math.log(10) + torch.randn(tensor.shape, generator=generator))
            elif tensor.ndim == 1 and "norm" in name and name.endswith("weight"):
                tensor.copy_(1 + 0.2 * torch.randn(tensor.shape, generator=generator))
            else:
                fan_in = tensor.shape[-1] if tensor.ndim > 1 else 16
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / math.sqrt(fan_in))
    return module


# ----------------------------------------------------------------------------- window layout


@pytest.mark.parametrize(
    "grid_hw, window, shifted, expected_window, expected_shift, expected_padded",
    [
        ((64, 64), 16, True, (16, 16), (8, 8), (64, 64)),
        ((64, 64), 16, False, (16, 16), (0, 0), (64, 64)),
        ((8, 8), 16, True, (8, 8), (0, 0), (8, 8)),  # grid smaller than window: shrink, no shift
        ((16, 16), 16, True, (16, 16), (0, 0), (16, 16)),  # equal: one window, no shift
        ((12, 21), 24, True, (12, 21), (0, 0), (12, 21)),
        ((24, 42), 24, True, (24, 24), (0, 12), (24, 48)),  # per axis: only the long axis shifts
        ((120, 160), 16, True, (16, 16), (8, 8), (128, 160)),  # padded to a multiple of the window
        ((1, 2), 16, True, (1, 2), (0, 0), (1, 2)),
    ],
)
def test_window_layout_rules(grid_hw, window, shifted, expected_window, expected_shift, expected_padded):
    layout = window_layout(grid_hw, window, shifted)
    assert layout.window_hw == expected_window
    assert layout.shift_hw == expected_shift
    assert layout.padded_hw == expected_padded


def test_partition_and_merge_are_inverse_and_row_major():
    grid = torch.arange(2 * 6 * 8 * 3, dtype=torch.float32).view(2, 6, 8, 3)
    windows = partition_windows(grid, (3, 4))
    assert windows.shape == (2, 4, 12, 3)
    # Window 1 is the top-right tile; its token 5 is row 1, column 1 inside the tile.
    assert torch.equal(windows[1, 1, 5], grid[1, 1, 5])
    assert torch.equal(merge_windows(windows, (3, 4), (6, 8)), grid)


def reference_shift_mask(grid: int, window: int, shift: int) -> torch.Tensor:
    """Swin's region mask, written with explicit slices and loops."""
    region = torch.zeros(grid, grid)
    slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for count, (rows, cols) in enumerate(itertools.product(slices, slices)):
        region[rows, cols] = count
    tiles = []
    for tile_row in range(grid // window):
        for tile_col in range(grid // window):
            tile = region[tile_row * window : (tile_row + 1) * window, tile_col * window : (tile_col + 1) * window]
            tiles.append(tile.reshape(-1))
    tiles = torch.stack(tiles)
    differs = tiles[:, None, :] != tiles[:, :, None]
    return differs.float() * -100.0


@pytest.mark.parametrize("grid, window", [(64, 16), (96, 24), (48, 24), (8, 4)])
def test_shift_mask_matches_loop_reference(grid, window):
    layout = window_layout((grid, grid), window, shifted=True)
    assert torch.equal(attention_mask(layout), reference_shift_mask(grid, window, window // 2))


def test_unshifted_unpadded_blocks_need_no_mask():
    assert attention_mask(window_layout((64, 64), 16, shifted=False)) is None
    assert attention_mask(window_layout((8, 8), 16, shifted=True)) is None


# ----------------------------------------------------------------------------- position bias


@pytest.mark.parametrize("window_hw, pretrained", [((16, 16), 0), ((24, 24), 12), ((12, 12), 6), ((3, 5), 0), ((1, 4), 0)])
def test_relative_coords_table_formula(window_hw, pretrained):
    table = relative_coords_table(window_hw, pretrained)
    rows = []
    for dy in range(-(window_hw[0] - 1), window_hw[0]):
        for dx in range(-(window_hw[1] - 1), window_hw[1]):
            values = []
            for offset, side in ((dy, window_hw[0]), (dx, window_hw[1])):
                divisor = pretrained - 1 if pretrained else max(side - 1, 1)
                scaled = offset / divisor * 8
                values.append(math.copysign(math.log2(1 + abs(scaled)) / 3, scaled) if scaled else 0.0)
            rows.append(values)
    assert torch.allclose(table, torch.tensor(rows), atol=1e-6)


def test_position_bias_per_token_pair():
    block = randomize_(SwinV2Block(dim=16, num_heads=2, mlp_hidden_dim=64, pretrained_window=0), seed=1)
    window_hw = (3, 4)
    bias = block.attn.position_bias(window_hw)
    assert bias.shape == (2, 12, 12)
    table = relative_coords_table(window_hw, 0)
    for query, key in [(0, 0), (0, 11), (11, 0), (5, 6), (7, 2)]:
        dy = query // 4 - key // 4
        dx = query % 4 - key % 4
        row = (dy + 2) * 7 + (dx + 3)
        expected = 16 * torch.sigmoid(block.attn.cpb_mlp(table[row]))
        assert torch.allclose(bias[:, query, key], expected, atol=1e-6)


# ----------------------------------------------------------------------------- attention maths


def test_cosine_attention_formula():
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, 3, 5, 8, generator=generator) for _ in range(3))  # (B, windows, heads, N, d)
    logit_scale = torch.tensor([1.0, 2.0, 6.0]).view(3, 1, 1)  # 6 > ln 100: clamped
    cosine = (q / q.norm(dim=-1, keepdim=True)) @ (k / k.norm(dim=-1, keepdim=True)).transpose(-1, -2)
    temperature = torch.tensor([math.e, math.e**2, 100.0]).view(3, 1, 1)
    for bias in (torch.randn(3, 5, 5, generator=generator), torch.randn(4, 3, 5, 5, generator=generator)):
        expected = torch.softmax(cosine * temperature + bias, dim=-1) @ v
        assert torch.allclose(cosine_window_attention(q, k, v, logit_scale, bias), expected, atol=1e-5)


def brute_force_window_attention(block: SwinV2Block, tokens_hwc: torch.Tensor, window: int, shifted: bool):
    """One image, token by token: which keys each query sees, from the layout rules alone."""
    grid_h, grid_w, channels = tokens_hwc.shape
    heads = block.attn.num_heads
    window_hw = [min(side, window) for side in (grid_h, grid_w)]
    shift_hw = [window // 2 if shifted and side > window else 0 for side in (grid_h, grid_w)]
    padded_hw = [math.ceil(side / w) * w for side, w in zip((grid_h, grid_w), window_hw)]

    def rolled_position(row, col):  # where a real token sits on the rolled, padded grid
        return (row - shift_hw[0]) % padded_hw[0], (col - shift_hw[1]) % padded_hw[1]

    def region(position, axis):
        size, w, s = padded_hw[axis], window_hw[axis], shift_hw[axis]
        return 0 if not s or position < size - w else (1 if position < size - s else 2)

    attn = block.attn
    qkv_bias = torch.cat((attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias))
    q, k, v = F.linear(tokens_hwc, attn.qkv.weight, qkv_bias).view(grid_h, grid_w, 3, heads, -1).unbind(2)
    temperature = attn.logit_scale.clamp(max=math.log(100)).exp().view(heads)
    bias = attn.position_bias(tuple(window_hw))  # checked against the formula above
    output = torch.zeros(grid_h, grid_w, channels)
    real = [(row, col) for row in range(grid_h) for col in range(grid_w)]
    for query in real:
        query_pos = rolled_position(*query)
        logits, values = [], []
        for key in real:  # padding tokens are never keys
            key_pos = rolled_position(*key)
            if any(query_pos[a] // window_hw[a] != key_pos[a] // window_hw[a] for a in (0, 1)):
                continue  # different window
            query_index = (query_pos[0] % window_hw[0]) * window_hw[1] + query_pos[1] % window_hw[1]
            key_index = (key_pos[0] % window_hw[0]) * window_hw[1] + key_pos[1] % window_hw[1]
            cosine = F.cosine_similarity(q[query], k[key], dim=-1)
            different_region = any(region(query_pos[a], a) != region(key_pos[a], a) for a in (0, 1))
            logits.append(cosine * temperature + bias[:, query_index, key_index] - 100.0 * different_region)
            values.append(v[key])
        weights = torch.softmax(torch.stack(logits), dim=0)  # (keys, heads)
        output[query] = attn.proj((weights[:, :, None] * torch.stack(values)).sum(0).reshape(-1))
    return output


@pytest.mark.parametrize(
    "grid_hw, window, shifted",
    [
        ((8, 8), 4, True),  # plain shifted windows
        ((6, 10), 4, False),  # padding only
        ((6, 10), 4, True),  # padding and shift
        ((3, 9), 4, True),  # short axis shrinks, long axis shifts and pads
    ],
)
def test_window_attention_matches_brute_force(grid_hw, window, shifted):
    block = randomize_(SwinV2Block(dim=8, num_heads=2, mlp_hidden_dim=16, pretrained_window=0), seed=3).eval()
    tokens = torch.randn(1, *grid_hw, 8, generator=torch.Generator().manual_seed(4))
    layout = window_layout(grid_hw, window, shifted)
    with torch.no_grad():
        ours = block.attend_in_windows(tokens, layout, attention_mask(layout))[0]
        expected = brute_force_window_attention(block, tokens[0], window, shifted)
    assert torch.allclose(ours, expected, atol=1e-5), (ours - expected).abs().max()


def test_padding_tokens_never_leak():
    """A real token's output must not depend on what lies in the padded area."""
    block = randomize_(SwinV2Block(dim=8, num_heads=2, mlp_hidden_dim=16, pretrained_window=0), seed=5).eval()
    layout = window_layout((6, 10), 4, shifted=True)
    tokens = torch.randn(1, 8, 12, 8)  # already padded by hand
    other = tokens.clone()
    other[:, 6:] = 1e3
    other[:, :, 10:] = -1e3
    with torch.no_grad():
        mask = attention_mask(layout)
        padded_layout = window_layout((8, 12), 4, shifted=True)
        # Run the windows directly on the padded grid with the padded layout's mask added.
        first = block.attn(partition_windows(torch.roll(tokens, (-2, -2), (1, 2)), (4, 4)), layout, mask)
        second = block.attn(partition_windows(torch.roll(other, (-2, -2), (1, 2)), (4, 4)), layout, mask)
    real = torch.roll(merge_windows(first - second, (4, 4), (8, 12)), (2, 2), (1, 2))[:, :6, :10]
    assert padded_layout.padded_hw == (8, 12)
    assert real.abs().max() < 1e-4


# ----------------------------------------------------------------------------- patch merging


def test_patch_merging_matches_strided_slices():
    merge = randomize_(PatchMerging(dim=6), seed=2)
    tokens = torch.randn(2, 4, 6, 6)
    gathered = torch.cat(
        [tokens[:, 0::2, 0::2], tokens[:, 1::2, 0::2], tokens[:, 0::2, 1::2], tokens[:, 1::2, 1::2]], dim=-1
    )
    expected = F.layer_norm(gathered @ merge.reduction.weight.T, (12,), merge.norm.weight, merge.norm.bias)
    assert torch.allclose(merge(tokens), expected, atol=1e-6)


# ----------------------------------------------------------------------------- the accelerated model's tables


def accelerated_model(seed: int):
    from midas_layout import SMALL_CONFIG, make_midas_state_dict, native_model

    from muggled_swinv2.accelerate import accelerate_for_inference

    return accelerate_for_inference(native_model(make_midas_state_dict(SMALL_CONFIG, seed=seed)))


def forget_bias_tables(blocks) -> None:
    from muggled_swinv2.accelerate.layers import TableCache

    for block in blocks:
        block.attn.tables = TableCache()  # recomputed from the current weights


def test_position_bias_cache_follows_new_weights():
    """The cached bias table must be recomputed when weights are replaced, cast or changed in place."""
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    model = accelerated_model(seed=1)
    other = accelerated_model(seed=2)
    with torch.inference_mode():
        model(image)  # fills the caches
        expected = other(image)
    model.load_state_dict(other.state_dict(), assign=True)  # fresh tensors, version 0 again
    with torch.inference_mode():
        assert torch.equal(model(image), expected)
    with torch.no_grad():
        for block in model.encoder.stages[0].blocks:
            block.attn.cpb_mlp[0].bias.add_(0.5)
    with torch.inference_mode():
        changed = model(image)
    forget_bias_tables(model.encoder.stages[0].blocks)
    with torch.inference_mode():
        assert torch.equal(changed, model(image)) and not torch.equal(changed, expected)


@pytest.mark.usefixtures("winograd_at_any_width")
def test_caches_are_forgotten_on_train_and_eval():
    """Fused optimizer steps and edits through .data change weights without a trace in their
    version counter: switching train()/eval() must drop the cached transforms."""
    from muggled_swinv2.accelerate import speed_paths_off

    model = accelerated_model(seed=1)
    image = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))  # Winograd at 32x32 and 16x16
    with torch.inference_mode():
        before = model(image)  # fills the caches
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, fused=True)
    model(image).mean().backward()
    optimizer.step()
    with torch.no_grad():
        model.encoder.stages[0].blocks[0].attn.cpb_mlp[0].weight.data.mul_(1.5)
    model.eval()
    with torch.inference_mode():
        after = model(image)
        with speed_paths_off(model, "winograd"):
            reference = model(image)
    assert not torch.allclose(after, before)
    assert ((after - reference).abs().max() / reference.abs().max()).item() < 1e-5
    forget_bias_tables(model.encoder.stages[0].blocks)
    with torch.inference_mode():
        assert torch.equal(model(image), after)


def test_training_pass_after_inference_and_autocast_after_plain():
    """Cached tables made under inference_mode serve training passes; an autocast pass does not
    leave a half-precision bias behind for a float32 one."""
    import pickle

    model = accelerated_model(seed=3)
    image = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        plain = model(image)
    model(image).mean().backward()  # windows' cached index tables are ordinary tensors
    assert model.encoder.stages[0].blocks[0].attn.cpb_mlp[0].weight.grad is not None
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(model(image)).all()
    with torch.no_grad():
        assert torch.allclose(model(image), plain, atol=1e-5 * plain.abs().max().item())
    restored = pickle.loads(pickle.dumps(model))  # whole-model pickling works (no lambdas in hooks)
    with torch.no_grad():
        assert torch.equal(restored(image), model(image))
