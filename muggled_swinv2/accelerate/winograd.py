"""3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3): the same sums, 4x fewer multiplications.

Why: on a CPU the DPT decoder's 256-channel 3x3 convolutions are most of the work at 256 px,
and PyTorch's convolution kernel already runs them near the machine's matrix-multiply peak; only
doing fewer multiplications makes them faster.

How (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): the output is
cut into 4x4 tiles, each computed from a 6x6 tile d of the zero-padded input. For one input and
one output channel, with the 3x3 filter g,

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise: 36 products instead of 144)

Summed over the input channels, the elementwise product becomes 36 independent matrix products
(tiles x C_in) @ (C_in x C_out): the work, done by the GEMM kernel. The transforms B^T . B and
A^T . A are weighted sums of whole tile planes with small constant weights; G g G^T is computed
once per weight (accelerate/layers.py keeps it).

The matrices come from polynomial multiplication by evaluation and interpolation at the points
0, 1, -1, 2, -2 and infinity (the algorithm is exact in exact arithmetic). In float32 the result
differs from direct convolution by a few 1e-6 of the output scale (direct itself: ~1e-6).
"""

from fractions import Fraction

import torch
import torch.nn.functional as F

TILE = 4  # output tile side m
TAPS = 3  # filter side r
SPAN = TILE + TAPS - 1  # input tile side: 6
POINTS = (0, 1, -1, 2, -2)  # finite interpolation points; one more point is infinity
MIN_GRID = 32 * 32  # measured: on smaller grids the transforms cost about what they save
TILES_PER_PASS = 24 * 24  # tiles transformed at once: keeps the 36 tile planes in the caches


def _polynomial(roots) -> list[Fraction]:
    """Coefficients (lowest power first) of prod (x - root)."""
    coefficients = [Fraction(1)]
    for root in roots:
        shifted = [Fraction(0)] + coefficients  # x * p(x)
        coefficients = [high - root * low for high, low in zip(shifted, coefficients + [Fraction(0)])]
    return coefficients


def winograd_matrices(points=POINTS, tile: int = TILE, taps: int = TAPS):
    """(A^T, G, B^T) of F(tile, taps) as exact fractions, rows of lists.

    A 1-D correlation y_i = sum_k g_k d_(i+k) is the transpose of the polynomial product
    s = g * h (h of degree tile - 1). That product is computed by evaluating g and h at the
    points (A^T columns: powers p^i of each point; at infinity, the leading coefficient) and
    interpolating s from the values (B^T rows: Lagrange numerators prod_(l != j) (x - p_l);
    at infinity, prod_l (x - p_l)); the Lagrange denominators are moved into G.
    """
    points = [Fraction(point) for point in points]
    a_t = [[point**i for point in points] + [Fraction(int(i == tile - 1))] for i in range(tile)]
    g, b_t = [], []
    for j, point in enumerate(points):
        others = points[:j] + points[j + 1 :]
        denominator = Fraction(1)
        for other in others:
            denominator *= point - other
        g.append([point**k / denominator for k in range(taps)])
        b_t.append(_polynomial(others) + [Fraction(0)])
    g.append([Fraction(int(k == taps - 1)) for k in range(taps)])
    b_t.append(_polynomial(points))
    return a_t, g, b_t


_A_T, _G, _B_T = ([[float(value) for value in row] for row in matrix] for matrix in winograd_matrices())


def _weighted_sum(weights, planes, out: torch.Tensor) -> torch.Tensor:
    """out = sum_i weights[i] * planes[i], skipping zero weights (few kernel calls, no temporaries)."""
    terms = [(weight, plane) for weight, plane in zip(weights, planes) if weight]
    (first_weight, first), rest = terms[0], terms[1:]
    if first_weight == 1 and rest:
        (weight, plane), rest = rest[0], rest[1:]
        torch.add(first, plane, alpha=weight, out=out)
    else:
        torch.mul(first, first_weight, out=out)
    for weight, plane in rest:
        out.add_(plane, alpha=weight)
    return out


def transform_weight(weight_oihw: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, 3, 3) filters -> (36, C_in, C_out): G g G^T, one matrix per tile position.

    One GEMM: (G kron G) (36 x 9) times the filters as (9, C_in * C_out)."""
    g = torch.tensor(_G, dtype=weight_oihw.dtype, device=weight_oihw.device)
    out_channels, in_channels = weight_oihw.shape[:2]
    taps_io = weight_oihw.permute(2, 3, 1, 0).reshape(TAPS * TAPS, in_channels * out_channels)
    return (torch.kron(g, g) @ taps_io).view(SPAN * SPAN, in_channels, out_channels)


def _input_tiles(band_hwc: torch.Tensor, tile_rows: int, tile_cols: int) -> torch.Tensor:
    """B^T d B of every 6x6 input tile of a band of (4 tile_rows + 2, 4 tile_cols + 2, C) pixels
    -> (36, tiles, C): along the rows of the tiles, then along their columns."""
    row_planes = [band_hwc[offset::TILE][:tile_rows] for offset in range(SPAN)]  # (tile_rows, W + 2, C) each
    by_rows = band_hwc.new_empty(SPAN, *row_planes[0].shape)
    for i in range(SPAN):
        _weighted_sum(_B_T[i], row_planes, out=by_rows[i])
    column_planes = [by_rows[:, :, offset::TILE][:, :, :tile_cols] for offset in range(SPAN)]
    tiles = band_hwc.new_empty(SPAN, SPAN, tile_rows, tile_cols, band_hwc.shape[-1])
    for j in range(SPAN):
        _weighted_sum(_B_T[j], column_planes, out=tiles[:, j])
    return tiles.view(SPAN * SPAN, tile_rows * tile_cols, -1)


def _output_tiles(products: torch.Tensor, out_hwc: torch.Tensor) -> None:
    """A^T m A of the (6, 6, tile_rows, tile_cols, C) products, written into the 4x4 tiles of out."""
    _, _, tile_rows, tile_cols, channels = products.shape
    by_rows = products.new_empty(TILE, SPAN, tile_rows, tile_cols, channels)
    for i in range(TILE):
        _weighted_sum(_A_T[i], products, out=by_rows[i])
    out_tiles = out_hwc.view(tile_rows, TILE, tile_cols, TILE, channels).permute(1, 3, 0, 2, 4)
    for j in range(TILE):  # out_tiles[:, j]: output pixel (i, j) of every tile, for all i
        _weighted_sum(_A_T[j], by_rows.unbind(1), out=out_tiles[:, j])


def winograd_conv3x3(image_bhwc: torch.Tensor, weight_tio: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Same as a 3x3 convolution with zero padding 1, on (B, H, W, C_in) -> (B, H, W, C_out).

    H and W must be multiples of 4; `weight_tio` comes from transform_weight. Works on bands of
    tile rows of one image at a time, so that the 36 tile planes stay small (in the caches).
    """
    batch, height, width, _ = image_bhwc.shape
    out_channels = weight_tio.shape[-1]
    tile_rows, tile_cols = height // TILE, width // TILE
    padded = F.pad(image_bhwc, (0, 0, 1, 1, 1, 1))
    out = image_bhwc.new_empty(batch, height, width, out_channels)
    band_rows = max(1, TILES_PER_PASS // tile_cols)
    for image in range(batch):
        for first in range(0, tile_rows, band_rows):
            rows = min(band_rows, tile_rows - first)
            band = padded[image, TILE * first : TILE * (first + rows) + TAPS - 1]
            products = torch.bmm(_input_tiles(band, rows, tile_cols), weight_tio)  # 36 GEMMs
            products = products.view(SPAN, SPAN, rows, tile_cols, out_channels)
            if bias is not None:
                products[1, 1] += bias  # A^T's column for the point 1 is all ones: every output gets it once
            _output_tiles(products, out[image, TILE * first : TILE * (first + rows)])
    return out
