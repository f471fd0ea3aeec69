"""muggled_swinv2: MiDaS v3.1 SwinV2-DPT monocular depth estimation, natively in PyTorch.

    import cv2, muggled_swinv2
    model = muggled_swinv2.load_model("weights/dpt_swin2_tiny_256.pt")
    inverse_depth = model.predict(cv2.imread("photo.jpg"))  # float32 (H, W), bigger = nearer

The public names are imported on first use, so that `import muggled_swinv2` (and the command
line's `--help`) does not pay for importing PyTorch.
"""

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (relative to this package)
_PUBLIC = {
    "CheckpointError": ".formats.checkpoint",
    "load_model": ".build",
    "DeviceError": ".devices",
    "SwinV2DPT": ".predict",
    "SwinV2DPTConfig": ".model",
    "Calibration": ".geometry",
    "CalibrationError": ".geometry",
    "CameraIntrinsics": ".geometry",
    "apply_calibration": ".geometry",
    "back_project": ".geometry",
    "camera_intrinsics": ".geometry",
    "fit_depth_range": ".geometry",
    "fit_points": ".geometry",
    "fit_sparse_depth": ".geometry",
    "UserError": ".errors",  # the base of every refusal (CheckpointError, DeviceError, ...)
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
