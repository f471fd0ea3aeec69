"""muggled_swinv2: MiDaS v3.1 SwinV2-DPT monocular depth estimation, natively in PyTorch.

    import cv2, muggled_swinv2
    model = muggled_swinv2.load_model("weights/dpt_swin2_tiny_256.pt")
    inverse_depth = model.predict(cv2.imread("photo.jpg"))  # float32 (H, W), bigger = nearer

The public names are imported on first use, so that `import muggled_swinv2` (and the command
line's `--help`) does not pay for importing PyTorch.
"""

import importlib

__version__ = "0.1.0"

# public name -> (module that defines it, relative to this package; its name there)
_PUBLIC = {
    "CheckpointError": (".formats.checkpoint", "CheckpointError"),
    "load_model": (".build", "load_model"),
    "DeviceError": (".devices", "DeviceError"),
    "DepthModel": (".predict", "DepthModel"),
    "SwinV2DPT": (".predict", "DepthModel"),  # the name load_model's class has always had here
    "SwinV2DPTConfig": (".model", "SwinV2DPTConfig"),
    "Calibration": (".geometry", "Calibration"),
    "CalibrationError": (".geometry", "CalibrationError"),
    "CameraIntrinsics": (".geometry", "CameraIntrinsics"),
    "apply_calibration": (".geometry", "apply_calibration"),
    "back_project": (".geometry", "back_project"),
    "camera_intrinsics": (".geometry", "camera_intrinsics"),
    "fit_depth_range": (".geometry", "fit_depth_range"),
    "fit_points": (".geometry", "fit_points"),
    "fit_sparse_depth": (".geometry", "fit_sparse_depth"),
    "UserError": (".errors", "UserError"),  # the base of every refusal (CheckpointError, DeviceError, ...)
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        module, defined_as = _PUBLIC[name]
        value = getattr(importlib.import_module(module, __name__), defined_as)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
