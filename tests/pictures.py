"""Test pictures and videos made with numpy/OpenCV, and MiDaS's own pipeline written out."""

import numpy as np
import torch
import torch.nn.functional as F

import cv2


def photo(height=48, width=80, seed=0):
    """A BGR uint8 test picture: gradient, a disc and noise."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    cv2.circle(image, (width // 3, height // 2), max(1, min(height, width) // 4), (40, 200, 90), -1)
    return np.clip(image + rng.integers(0, 30, image.shape), 0, 255).astype(np.uint8)


def midas_square_pipeline(model, image_bgr):
    """MiDaS run.py for SwinV2, written out: float64 RGB / 255, cubic to the native square,
    (x - 0.5) / 0.5, network, bicubic back to the image size."""
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB) / 255.0
    size = model.config.native_size
    resized = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_CUBIC)
    normalized = (resized - np.array([0.5, 0.5, 0.5])) / np.array([0.5, 0.5, 0.5])
    sample = torch.from_numpy(np.ascontiguousarray(normalized.transpose(2, 0, 1)).astype(np.float32))[None]
    with torch.no_grad():
        prediction = model(sample)
    resized_back = F.interpolate(prediction.unsqueeze(1), size=image_bgr.shape[:2], mode="bicubic", align_corners=False)
    return resized_back.squeeze().numpy()


def write_video(path, frames: int = 6, size_wh=(96, 64), fps: float = 12.0, fourcc: str = "mp4v"):
    """A short synthetic clip: a disc moving over a gradient."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size_wh)
    for index in range(frames):
        frame = photo(size_wh[1], size_wh[0], seed=index)
        cv2.circle(frame, (10 + 12 * index, size_wh[1] // 2), 10, (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def read_video(path) -> tuple[list[np.ndarray], float]:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps
