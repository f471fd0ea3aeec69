"""muggled_swinv2: MiDaS v3.1 SwinV2-DPT monocular depth estimation, natively in PyTorch.

    import cv2, muggled_swinv2
    model = muggled_swinv2.load_model("weights/dpt_swin2_tiny_256.pt")
    inverse_depth = model.predict(cv2.imread("photo.jpg"))  # float32 (H, W), bigger = nearer
"""

from .formats.checkpoint import CheckpointError, load_model
from .devices import DeviceError
from .model import SwinV2DPT, SwinV2DPTConfig

__version__ = "0.1.0"
__all__ = ["CheckpointError", "DeviceError", "SwinV2DPT", "SwinV2DPTConfig", "load_model", "__version__"]
