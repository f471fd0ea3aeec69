"""The independent reference, transformers' DPTForDepthEstimation (SwinV2 backbone), for the test
suite's MIDAS_CONFIGS specs; built by muggled_swinv2/reference.py (see its notes on where it
differs from MiDaS)."""

from midas_layout import as_config

from muggled_swinv2.reference import transformers_depth as hf_depth  # noqa: F401
from muggled_swinv2.reference import transformers_reference


def build_hf_reference(spec: dict, image_hw: tuple[int, int], midas_sd: dict):
    """transformers model for one input size, loaded (strictly) with the MiDaS-layout weights."""
    return transformers_reference(as_config(spec), image_hw, midas_sd)
