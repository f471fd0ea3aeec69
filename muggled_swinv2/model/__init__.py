"""Pure model code: no file I/O here."""

from .config import SwinV2DPTConfig
from .swinv2_dpt import SwinV2DPT

__all__ = ["SwinV2DPT", "SwinV2DPTConfig"]
