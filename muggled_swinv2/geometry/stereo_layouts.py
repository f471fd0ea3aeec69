"""Two eyes packed into the frames people view, and how comfortable they are to look at.

Images are (3, H, W) float RGB in [0, 1] (sRGB-encoded, as read from a file); every layout keeps
the left eye on the left (or top) but `cross`, which swaps them for cross-eyed free viewing.
Torch only, no file I/O.
"""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

FORMATS = ("sbs", "half-sbs", "tb", "half-tb", "anaglyph", "cross", "vr180", "wiggle", "pair")

# Eric Dubois's least-squares red-cyan anaglyph matrices (rows: the anaglyph's R, G, B; columns: the
# eye's R, G, B), for linear RGB. Coefficients as published in E. Dubois, "Conversion of a stereo
# pair to anaglyph with the least-squares projection method" (March 2009,
# www.site.uottawa.ca/~edubois/anaglyph/LeastSquaresHowToPhotoshop.pdf), checked against the same
# numbers in dolphin-emu/dolphin Data/Sys/Shaders/Stereoscopy/Anaglyph/dubois.glsl and
# hx2A/Camera3D src/camera3D/generators/AnaglyphConstants.java (the latter applies them to linear RGB).
DUBOIS_RED_CYAN_LEFT = ((0.437, 0.449, 0.164), (-0.062, -0.062, -0.024), (-0.048, -0.050, -0.017))
DUBOIS_RED_CYAN_RIGHT = ((-0.011, -0.032, -0.007), (0.377, 0.761, 0.009), (-0.026, -0.093, 1.234))

# Comfort: on-screen parallax within 1 degree of visual angle (the usual guide), for a screen whose
# width fills 30 degrees of view (e.g. a 65" TV seen from 2.7 m; SMPTE's minimum for cinema seats).
COMFORT_PARALLAX_DEG = 1.0
SCREEN_WIDTH_DEG = 30.0
COMFORT_LIMIT_PCT = 100 * math.tan(math.radians(COMFORT_PARALLAX_DEG)) / (2 * math.tan(math.radians(SCREEN_WIDTH_DEG / 2)))


def side_by_side(left_chw: torch.Tensor, right_chw: torch.Tensor, half: bool = False) -> torch.Tensor:
    """Left | right, (3, H, 2W); half: each eye squeezed to W // 2 columns first, (3, H, 2 (W // 2))."""
    if half:
        left_chw, right_chw = resized(left_chw, width=max(1, left_chw.shape[2] // 2)), resized(right_chw, width=max(1, right_chw.shape[2] // 2))
    return torch.cat([left_chw, right_chw], dim=2)


def top_bottom(left_chw: torch.Tensor, right_chw: torch.Tensor, half: bool = False) -> torch.Tensor:
    """Left over right, (3, 2H, W); half: each eye squeezed to H // 2 rows first."""
    if half:
        left_chw, right_chw = resized(left_chw, height=max(1, left_chw.shape[1] // 2)), resized(right_chw, height=max(1, right_chw.shape[1] // 2))
    return torch.cat([left_chw, right_chw], dim=1)


def resized(image_chw: torch.Tensor, height: int | None = None, width: int | None = None) -> torch.Tensor:
    """Area-like (antialiased bilinear) resize of one side."""
    size = (height or image_chw.shape[1], width or image_chw.shape[2])
    return F.interpolate(image_chw[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def srgb_to_linear(image: torch.Tensor) -> torch.Tensor:
    return torch.where(image <= 0.04045, image / 12.92, ((image + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(image: torch.Tensor) -> torch.Tensor:
    image = image.clamp(0, 1)
    return torch.where(image <= 0.0031308, image * 12.92, 1.055 * image ** (1 / 2.4) - 0.055)


def anaglyph(left_chw: torch.Tensor, right_chw: torch.Tensor) -> torch.Tensor:
    """Red-cyan anaglyph by Dubois's matrices, applied in linear light (the sRGB curve undone and
    redone around them), clipped to the displayable range. (3, H, W)."""
    left_matrix = torch.tensor(DUBOIS_RED_CYAN_LEFT, dtype=left_chw.dtype, device=left_chw.device)
    right_matrix = torch.tensor(DUBOIS_RED_CYAN_RIGHT, dtype=left_chw.dtype, device=left_chw.device)
    mixed = (torch.einsum("oc,chw->ohw", left_matrix, srgb_to_linear(left_chw))
             + torch.einsum("oc,chw->ohw", right_matrix, srgb_to_linear(right_chw)))
    return linear_to_srgb(mixed)


def vr180_size_px(focal_px: float) -> int:
    """The side of one eye's 180x180 degree equirectangular square that keeps the picture's own
    angular resolution at its centre (pi * focal pixels per 180 degrees), rounded to even."""
    return max(2, 2 * round(math.pi * focal_px / 2))


def equirectangular_180(image_chw: torch.Tensor, focal_px: float, size_px: int | None = None) -> torch.Tensor:
    """One eye's pinhole picture (principal point at its centre, square pixels) on a 180x180 degree
    equirectangular square (3, S, S): longitude and latitude from -90 to 90 degrees across and
    down; black where the picture does not reach."""
    _, height, width = image_chw.shape
    size = size_px or vr180_size_px(focal_px)
    angles = ((torch.arange(size, dtype=torch.float32, device=image_chw.device) + 0.5) / size - 0.5) * math.pi
    latitude, longitude = torch.meshgrid(angles, angles, indexing="ij")
    x, y, z = torch.cos(latitude) * torch.sin(longitude), torch.sin(latitude), torch.cos(latitude) * torch.cos(longitude)
    z = z.clamp(min=1e-6)  # the rim of the half sphere: far outside any picture
    column, row = focal_px * x / z + width / 2, focal_px * y / z + height / 2  # pixel-edge coordinates
    grid = torch.stack([column / width * 2 - 1, row / height * 2 - 1], dim=-1)[None].to(image_chw.dtype)
    return F.grid_sample(image_chw[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def vr180(left_chw: torch.Tensor, right_chw: torch.Tensor, focal_px: float) -> torch.Tensor:
    """VR180: each eye on its 180-degree equirectangular square, left | right, (3, S, 2S)."""
    return torch.cat([equirectangular_180(left_chw, focal_px), equirectangular_180(right_chw, focal_px)], dim=2)


def layout_frames(left_chw: torch.Tensor, right_chw: torch.Tensor, format: str,
                  focal_px: float | None = None) -> list[torch.Tensor]:
    """The frames of `format` (see FORMATS): one frame, except 'pair' (left, right: two files) and
    'wiggle' (left, right: an animation that alternates them). vr180 needs the focal length."""
    if format in ("sbs", "half-sbs"):
        return [side_by_side(left_chw, right_chw, half=format == "half-sbs")]
    if format in ("tb", "half-tb"):
        return [top_bottom(left_chw, right_chw, half=format == "half-tb")]
    if format == "cross":
        return [side_by_side(right_chw, left_chw)]
    if format == "anaglyph":
        return [anaglyph(left_chw, right_chw)]
    if format == "vr180":
        if focal_px is None:
            raise ValueError("vr180 needs the camera's focal length")
        return [vr180(left_chw, right_chw, focal_px)]
    if format in ("wiggle", "pair"):
        return [left_chw, right_chw]
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")


@dataclass(frozen=True)
class ComfortReport:
    """How a stereo picture sits around the screen plane, disparities in % of the width
    (positive: in front of the screen, crossed; negative: behind it)."""

    nearest_pct: float  # the largest disparity
    farthest_pct: float  # the smallest disparity
    beyond_comfort_share: float  # share of pixels with |disparity| over comfort_limit_pct
    window_violation_left: float  # share of rows whose pixel on the left edge stands in front of the screen
    window_violation_right: float  # the same on the right edge
    comfort_limit_pct: float  # COMFORT_PARALLAX_DEG on a screen SCREEN_WIDTH_DEG wide, unless given

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for the command's summary."""
        windows = max(self.window_violation_left, self.window_violation_right)
        return (f"disparity {self.farthest_pct:+.2f}% .. {self.nearest_pct:+.2f}% of the width, "
                f"{100 * self.beyond_comfort_share:.1f}% of pixels beyond {self.comfort_limit_pct:.2f}%, "
                f"window violations on {100 * windows:.1f}% of an edge's rows")


def comfort_report(disparity_hw: torch.Tensor, limit_pct: float = COMFORT_LIMIT_PCT) -> ComfortReport:
    """The comfort of a stereo picture from the disparity between its eyes (pixels, (H, W))."""
    disparity_pct = 100 * disparity_hw.double() / disparity_hw.shape[1]
    return ComfortReport(
        nearest_pct=float(disparity_pct.max()),
        farthest_pct=float(disparity_pct.min()),
        beyond_comfort_share=float((disparity_pct.abs() > limit_pct * (1 + 1e-6)).double().mean()),  # float32 rounding aside
        window_violation_left=float((disparity_pct[:, 0] > 0).double().mean()),
        window_violation_right=float((disparity_pct[:, -1] > 0).double().mean()),
        comfort_limit_pct=limit_pct,
    )


def auto_strength(inverse_depth_hw: torch.Tensor, limit_pct: float = COMFORT_LIMIT_PCT) -> tuple[float, float]:
    """(divergence_pct, convergence) for a relative inverse depth within comfort: the screen plane
    at the nearest thing the left and right edges cut (no window violation), and the strongest divergence that keeps every disparity within limit_pct."""
    low, high = inverse_depth_hw.amin(), inverse_depth_hw.amax()
    if not high > low:
        return limit_pct, 0.0
    edges = torch.cat([inverse_depth_hw[:, 0], inverse_depth_hw[:, -1]])
    convergence = float(1 - (edges.amax() - low) / (high - low))
    divergence = limit_pct / max(convergence, 1 - convergence)
    return divergence, convergence

