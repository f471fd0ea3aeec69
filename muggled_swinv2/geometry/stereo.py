"""A second eye from one picture and its depth: disparity, then depth-image-based rendering.

Conventions (pixels, in the source picture's columns, pixel centres at integer x):
- disparity d > 0: the point stands in front of the screen plane (crossed, negative parallax);
  between parallel cameras the right eye sees a point d pixels further left than the left eye,
  x_right = x_left - d. Larger disparity is always nearer, so it is also the depth order.
- a view is rendered at `shift` disparities from the source: x_target = x_source + shift * d
  (-1: the right eye from the left one, +1: the left eye from the right one, -1/2 and +1/2: both
  eyes from a central picture, each with half the disocclusions).

Rendering a view (depth-image-based rendering):
1. splat: every pair of neighbouring source pixels is a little line segment in the target row;
   target pixel centres inside a segment get its linearly interpolated disparity, and where
   segments overlap the nearer (larger disparity) wins. A segment stretched by more than
   `max_stretch_px` is a depth edge pulled apart: the target pixels inside it are holes
   (disocclusions), left empty here.
2. fill: a hole takes the disparity of the occluder whose edge opened it (the nearer end of the
   stretched segment that spans it). Sampled backwards with it, the hole lands beside the occluder in the source, on the
   background it hid, so background texture fills it. (The smaller, background disparity would
   land on the occluder itself and smear it into the hole.)
3. sample: every target pixel reads the source at x_target - shift * d with linear interpolation
   (rows do not move between parallel eyes): sub-pixel shifts keep fine texture, which moving
   pixels to their nearest target pixel tears.

Torch only (any device), no file I/O: images are (C, H, W) float, disparities (H, W) float pixels.
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

EYES = ("left", "right", "center")


def disparity_from_metric_depth(depth_hw: torch.Tensor, focal_px: float, baseline_m: float,
                                convergence_distance_m: float = math.inf) -> torch.Tensor:
    """Disparity in pixels between parallel eyes `baseline_m` apart, of points at depth `depth_hw`
    (metres along the optical axis; +inf: infinitely far): focal_px * baseline_m / z, minus
    focal_px * baseline_m / convergence_distance_m so that points at that distance sit on the
    screen plane (default infinity: parallel cameras, everything in front of the screen)."""
    return focal_px * baseline_m * (1.0 / depth_hw - 1.0 / convergence_distance_m)


def disparity_from_inverse_depth(inverse_depth_hw: torch.Tensor, divergence_pct: float, convergence: float,
                                 value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Disparity in pixels from a relative inverse depth (bigger = nearer, any scale and shift).

    The map is normalised to n in [0, 1] (0 farthest, 1 nearest) by its own min and max, or by
    `value_range` (low, high) where given (a video's steady range; values beyond it are clipped);
    the nearest and farthest points are `divergence_pct` % of the width apart in disparity, and
    the screen plane (zero disparity) sits at n = 1 - convergence: convergence 0 puts the nearest
    point on the screen (everything behind it), 1 the farthest (everything in front). A flat map
    gives n = 0 everywhere."""
    width = inverse_depth_hw.shape[-1]
    low, high = value_range if value_range is not None else (inverse_depth_hw.amin(), inverse_depth_hw.amax())
    spread = high - low
    normalised = ((inverse_depth_hw - low) / spread).clamp(0, 1) if spread > 0 else torch.zeros_like(inverse_depth_hw)
    return divergence_pct / 100.0 * width * (normalised - (1.0 - convergence))


def dilate_near_edges(disparity_hw: torch.Tensor, radius_px: int) -> torch.Tensor:
    """The disparity with near surfaces grown by `radius_px` pixels (a max filter): the blended
    pixels along an object's outline then move with the object instead of staying behind as a
    halo on the background."""
    if radius_px <= 0:
        return disparity_hw
    size = 2 * radius_px + 1  # separable: rows, then columns
    rows = F.max_pool2d(disparity_hw[None, None], (1, size), stride=1, padding=(0, radius_px))
    return F.max_pool2d(rows, (size, 1), stride=1, padding=(radius_px, 0))[0, 0]


class Splat(NamedTuple):
    """The disparity seen from a new view, before the holes are filled. (H, W) each.

    disparity_hw: the nearest surface's disparity at each target pixel; NaN in holes (disocclusions,
        and the strip at the frame's edge that comes into view).
    occluder_hw: in a disocclusion, the disparity of the occluder whose edge opened it (the nearer
        end of the stretched segment that spans it); NaN elsewhere.
    """

    disparity_hw: torch.Tensor
    occluder_hw: torch.Tensor


def splat_disparity(disparity_hw: torch.Tensor, shift: float, max_stretch_px: float = 2.0) -> Splat:
    """The disparity seen from the view at `shift` (see the module's conventions).

    Each pair of neighbouring source pixels spans a segment of the target row; a segment longer
    than `max_stretch_px` (a depth edge pulled apart) covers nothing but marks its pixels as a
    hole opened by its nearer end. A pixel with such edges on both sides (a thin object) still
    lands on its nearest target pixel."""
    height, width = disparity_hw.shape
    device = disparity_hw.device
    disparity_hw = disparity_hw.float()
    columns = torch.arange(width, device=device, dtype=torch.float32)
    target_x = columns + shift * disparity_hw  # (H, W): where each source pixel lands
    start_x, end_x = target_x[:, :-1], target_x[:, 1:]
    start_d, end_d = disparity_hw[:, :-1], disparity_hw[:, 1:]
    length = end_x - start_x
    surface = length <= max_stretch_px  # reversed (length < 0) segments are occluded and cover nothing
    row_offset = (torch.arange(height, device=device) * width)[:, None]

    # Scattered with "nearer wins" (amax); pixels that land nowhere go to one spare slot at the end.
    spare = height * width
    splatted = torch.full((spare + 1,), -math.inf, device=device)
    first_x = torch.ceil(start_x)
    slope = (end_d - start_d) / torch.where(length > 0, length, torch.ones_like(length))
    for step in range(int(math.ceil(max_stretch_px)) + 1):
        x = first_x + step
        covers = surface & (x <= end_x) & (x >= 0) & (x <= width - 1)
        value = start_d + (x - start_x).clamp(min=0) * slope
        index = torch.where(covers, row_offset + x.clamp(0, width - 1).long(), spare)
        splatted.scatter_reduce_(0, index.view(-1), value.view(-1), reduce="amax")

    edge = torch.ones((height, 1), dtype=torch.bool, device=device)
    isolated = torch.cat([edge, ~surface], 1) & torch.cat([~surface, edge], 1)
    nearest_x = torch.round(target_x)
    lands = isolated & (nearest_x >= 0) & (nearest_x <= width - 1)
    index = torch.where(lands, row_offset + nearest_x.clamp(0, width - 1).long(), spare)
    splatted.scatter_reduce_(0, index.view(-1), disparity_hw.reshape(-1), reduce="amax")
    splatted = splatted[:spare].view(height, width)
    splatted = torch.where(torch.isfinite(splatted), splatted, torch.full_like(splatted, math.nan))

    # Stretched segments, marked at their first target pixel; each pixel looks back to the
    # latest mark in its row and is spanned by that segment if it ends beyond the pixel.
    stretched = ~surface & (end_x >= 0) & (start_x <= width - 1)
    mark_x = first_x.clamp(min=0).long()[stretched]
    rows = torch.arange(height, device=device)[:, None].expand_as(start_x)[stretched]
    occluder_at_mark = torch.full((height * width,), -math.inf, device=device)
    occluder_at_mark.scatter_reduce_(0, rows * width + mark_x, torch.maximum(start_d, end_d)[stretched], reduce="amax")
    end_at_mark = torch.full((height * width,), -math.inf, device=device)
    end_at_mark.scatter_reduce_(0, rows * width + mark_x, end_x[stretched], reduce="amax")
    marked = torch.isfinite(occluder_at_mark.view(height, width))
    latest_mark = torch.where(marked, columns.long(), torch.full_like(marked, -1, dtype=torch.long)).cummax(dim=1).values
    at_mark = (row_offset + latest_mark.clamp(min=0)).view(-1)
    spanned = (latest_mark >= 0) & (columns <= end_at_mark[at_mark].view(height, width)) & torch.isnan(splatted)
    occluder = torch.where(spanned, occluder_at_mark[at_mark].view(height, width), torch.full_like(splatted, math.nan))
    return Splat(splatted, occluder)


def fill_disocclusions(splat: Splat) -> torch.Tensor:
    """Every hole given a disparity to sample the source with: the occluder's, where a stretched
    depth edge opened the hole (see the module's docstring); elsewhere (the strip at the frame's
    edge) the larger disparity of its nearest splatted neighbours in the row, or 0 in a row with
    nothing splatted."""
    return torch.where(torch.isnan(splat.occluder_hw), fill_from_neighbours(splat.disparity_hw, torch.maximum),
                       splat.occluder_hw)


def fill_from_neighbours(disparity_hw: torch.Tensor, choose=torch.maximum) -> torch.Tensor:
    """NaN pixels take `choose` (maximum or minimum) of the nearest known disparities to their left
    and right in the row (the one there is, at the frame's edge; 0 where the row has none)."""
    height, width = disparity_hw.shape
    known = ~torch.isnan(disparity_hw)
    columns = torch.arange(width, device=disparity_hw.device).expand(height, width)
    left_index = torch.where(known, columns, torch.full_like(columns, -1)).cummax(dim=1).values
    right_index = torch.where(known, columns, torch.full_like(columns, width)).flip(1).cummin(dim=1).values.flip(1)
    left_value = disparity_hw.gather(1, left_index.clamp(0, width - 1))
    right_value = disparity_hw.gather(1, right_index.clamp(0, width - 1))
    left_value = torch.where(left_index >= 0, left_value, right_value)
    right_value = torch.where(right_index < width, right_value, left_value)
    value = torch.nan_to_num(choose(left_value, right_value), nan=0.0)
    return torch.where(known, disparity_hw, value)


def sample_view(image_chw: torch.Tensor, target_disparity_hw: torch.Tensor, shift: float) -> torch.Tensor:
    """The view at `shift`: each target pixel reads the source row at x - shift * d, linearly
    interpolated between the two nearest source pixels (clamped to the frame). (C, H, W)."""
    channels, height, width = image_chw.shape
    columns = torch.arange(width, device=image_chw.device, dtype=torch.float32)
    source_x = (columns - shift * target_disparity_hw).clamp(0, width - 1)
    left = source_x.floor().clamp(max=width - 2).long() if width > 1 else source_x.long()
    right = (left + 1).clamp(max=width - 1)
    weight = (source_x - left).to(image_chw.dtype)
    left_colour = image_chw.gather(2, left.expand(channels, height, width))
    right_colour = image_chw.gather(2, right.expand(channels, height, width))
    return left_colour + weight * (right_colour - left_colour)


def render_view(image_chw: torch.Tensor, disparity_hw: torch.Tensor, shift: float,
                dilation_px: int = 0) -> torch.Tensor:
    """The picture seen from the view at `shift` disparities (see the module's conventions):
    splat, fill the disocclusions, sample. (C, H, W) like `image_chw`, every pixel filled."""
    disparity_hw = dilate_near_edges(disparity_hw, dilation_px)
    target_disparity_hw = fill_disocclusions(splat_disparity(disparity_hw, shift))
    return sample_view(image_chw, target_disparity_hw, shift)


def render_stereo(image_chw: torch.Tensor, disparity_hw: torch.Tensor, eye: str = "left",
                  dilation_px: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(left, right) eyes for a picture that is the `eye` view ('left', 'right', or 'center':
    both eyes rendered half the disparity away each way); the input eye is returned as is."""
    if eye == "left":
        return image_chw, render_view(image_chw, disparity_hw, -1.0, dilation_px)
    if eye == "right":
        return render_view(image_chw, disparity_hw, 1.0, dilation_px), image_chw
    if eye == "center":
        return (render_view(image_chw, disparity_hw, 0.5, dilation_px),
                render_view(image_chw, disparity_hw, -0.5, dilation_px))
    raise ValueError(f"eye must be one of {', '.join(EYES)}, not {eye!r}")


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["EYES", "Splat", "dilate_near_edges", "disparity_from_inverse_depth", "disparity_from_metric_depth",
           "fill_disocclusions", "fill_from_neighbours", "render_stereo", "render_view", "sample_view", "splat_disparity"]
