"""3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3): the same sums, 4x fewer multiplications.

Why: on a CPU the DPT decoder's 256-channel 3x3 convolutions are most of the work at 256 px,
and PyTorch's convolution kernel already runs them near the machine's matrix-multiply peak; only
doing fewer multiplications makes them faster.

How (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): the output is
cut into 4x4 tiles, each computed from a 6x6 tile d of the zero-padded input. For one input and
one output channel, with the 3x3 filter g,

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise: 36 products instead of 144)

Summed over the input channels, the elementwise product becomes 36 independent matrix products
(tiles x C_in) @ (C_in x C_out): the work, done by the GEMM kernel. The transforms are one matrix
product each, with the Kronecker products of the small matrices: (B^T kron B^T), 36 x 36, times
every tile's 36 values, and (A^T kron A^T), 16 x 36, times every tile's 36 products; G g G^T is
computed once per weight (accelerate/layers.py keeps it).

Why whole matrix products for the transforms, though they do more multiplications than weighted
sums of tile planes: every PyTorch operator on the CPU is one parallel region whose threads wait
for the slowest. On a CPU shared with another process a thread taken off its core stalls the
region, so hundreds of small operators (the weighted sums were about 100 per convolution) cost
far more than their arithmetic (benchmarks/shared_cpu.py). Here a convolution is six operators.

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
MIN_GRID = 16 * 16  # measured: on smaller grids the transforms cost about what they save
MIN_OUT_CHANNELS = 256  # measured: with fewer, the input transform (per tile: ~ C_in) costs about what
# the saved multiplications (~ C_in * C_out) save: 2x slower at 64 channels, even at 256 -> 128
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


def transform_weight(weight_oihw: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, 3, 3) filters -> (36, C_in, C_out): G g G^T, one matrix per tile position.

    One GEMM: (G kron G) (36 x 9) times the filters as (9, C_in * C_out)."""
    g = torch.tensor(_G, dtype=weight_oihw.dtype, device=weight_oihw.device)
    out_channels, in_channels = weight_oihw.shape[:2]
    taps_io = weight_oihw.permute(2, 3, 1, 0).reshape(TAPS * TAPS, in_channels * out_channels)
    return (torch.kron(g, g) @ taps_io).view(SPAN * SPAN, in_channels, out_channels)


def _kron(matrix) -> list[list[float]]:
    return [[x * y for x in row_a for y in row_b] for row_a in matrix for row_b in matrix]


_INPUT_TRANSFORM = _kron(_B_T)  # (36, 36): B^T d B of a tile, its 36 values in row-major order
_OUTPUT_TRANSFORM = _kron(_A_T)  # (16, 36): A^T m A


def winograd_conv3x3(image_bhwc: torch.Tensor, weight_tio: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Same as a 3x3 convolution with zero padding 1, on (B, H, W, C_in) -> (B, H, W, C_out).

    H and W must be multiples of 4; `weight_tio` comes from transform_weight. Works on bands of
    tile rows of one image at a time, so that the 36 tile planes stay small (in the caches).
    """
    batch, height, width, in_channels = image_bhwc.shape
    out_channels = weight_tio.shape[-1]
    tile_rows, tile_cols = height // TILE, width // TILE
    like = {"dtype": image_bhwc.dtype, "device": image_bhwc.device}
    input_transform, output_transform = torch.tensor(_INPUT_TRANSFORM, **like), torch.tensor(_OUTPUT_TRANSFORM, **like)
    padded = F.pad(image_bhwc, (0, 0, 1, 1, 1, 1))
    out = image_bhwc.new_empty(batch, height, width, out_channels)
    band_rows = max(1, TILES_PER_PASS // tile_cols)
    for image in range(batch):
        for first in range(0, tile_rows, band_rows):
            rows = min(band_rows, tile_rows - first)
            band = padded[image, TILE * first : TILE * (first + rows) + TAPS - 1]  # (4 rows + 2, W + 2, C_in)
            tiles = band.unfold(0, SPAN, TILE).unfold(1, SPAN, TILE)  # (rows, tile_cols, C_in, 6, 6), a view
            tiles_36 = tiles.permute(3, 4, 0, 1, 2).reshape(SPAN * SPAN, -1)  # (36, tiles * C_in)
            transformed = (input_transform @ tiles_36).view(SPAN * SPAN, rows * tile_cols, in_channels)
            products = torch.bmm(transformed, weight_tio)  # 36 GEMMs: (36, tiles, C_out)
            if bias is not None:
                products[SPAN + 1] += bias  # (1, 1): A^T's column for the point 1 is all ones, every output gets it once
            outputs = (output_transform @ products.view(SPAN * SPAN, -1)).view(TILE, TILE, rows, tile_cols, out_channels)
            out_band = out[image, TILE * first : TILE * (first + rows)].view(rows, TILE, tile_cols, TILE, out_channels)
            out_band.copy_(outputs.permute(2, 0, 3, 1, 4))
    return out
