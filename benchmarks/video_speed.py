#!/usr/bin/env python3
"""Frames per second of the `video` job against the model alone, at the same size and batch.

    python benchmarks/video_speed.py --config tiny --size 256 --batch-size 1 --frames 24
    python benchmarks/video_speed.py --weights weights/dpt_swin2_tiny_256.pt --device cuda

In one process, on one synthetic clip of SIZE x SIZE frames (so that the network sees exactly
SIZE x SIZE, as `bench` does), it interleaves rounds of:
- model: the bare forward pass on prepared batches (what `bench` times), frames / seconds;
- video: the whole `video` job (decode, preprocess, model, resize back, stabilise, colour, encode,
  npz off, the read-back check of the written file), pipelined;
- serial: the same work one step after the other in one thread (the job before the pipeline),
and prints the median rates and video / model. With --config the weights are random (same cost).
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import cv2
from muggled_swinv2.cli import positive_int
from muggled_swinv2.devices import select_device
from muggled_swinv2 import load_model
from muggled_swinv2.io.colormaps import RunningRange, colorize, normalize
from muggled_swinv2.io.video import AtomicVideoWriter, VideoReader
from muggled_swinv2.jobs.video import VideoJobOptions, run_video_job
from muggled_swinv2.model.config import RELEASES, SMALL_CONFIGS
from muggled_swinv2.accelerate import accelerate_for_inference
from muggled_swinv2.model.swinv2_dpt import SwinV2DPT
from muggled_swinv2.predict import predict_batch, prepare_input
from muggled_swinv2.video.stabilize import DepthStabilizer

CONFIGS = {**{name: release.config for name, release in RELEASES.items()}, **SMALL_CONFIGS}


def make_clip(path: Path, frames: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (size, size))
    base = np.zeros((size, size, 3), np.uint8)
    base[:] = np.linspace(0, 255, size, dtype=np.uint8)[None, :, None]
    for index in range(frames):
        frame = base.copy()
        cv2.circle(frame, (size // 4 + 3 * index, size // 2), size // 6, (40, 200, 90), -1)
        writer.write(np.clip(frame + rng.integers(0, 20, frame.shape), 0, 255).astype(np.uint8))
    writer.release()
    return path


@torch.inference_mode()
def model_rate(model, clip: Path, size: int, batch_size: int) -> float:
    """Frames/s of the forward pass alone on the clip's frames, prepared beforehand."""
    reader = VideoReader(str(clip))
    inputs = [prepare_input(frame, model.config.native_size, False, size) for frame in reader]
    reader.close()
    device = next(model.parameters()).device
    batches = [torch.from_numpy(np.stack(inputs[start:start + batch_size])).to(device)
               for start in range(0, len(inputs), batch_size)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    for batch in batches:
        model(batch)
    sync()
    return len(inputs) / (time.perf_counter() - started)


def serial_rate(model, clip: Path, target: Path, size: int, batch_size: int) -> float:
    """The job's work one step after the other in one thread: read, predict, stabilise, colour, write."""
    started = time.perf_counter()
    reader = VideoReader(str(clip))
    writer = AtomicVideoWriter(target, reader.fps, (size, size))
    stabilizer, colour_range = DepthStabilizer(), RunningRange()
    frames = []
    while True:
        frame = reader.read()
        if frame is not None:
            frames.append(frame)
        if frames and (len(frames) == batch_size or frame is None):
            for picture, depth in zip(frames, predict_batch(model, frames, size=size)):
                depth = stabilizer(depth, picture).depth
                writer.write(colorize(normalize(depth, *colour_range.update(depth))))
            frames = []
        if frame is None:
            break
    count = writer.frames
    writer.finish()
    reader.close()
    return count / (time.perf_counter() - started)


def video_rate(model, clip: Path, target: Path, size: int, batch_size: int) -> float:
    options = VideoJobOptions(size=size, batch_size=batch_size)
    started = time.perf_counter()
    summary = run_video_job(model, clip, target, options, quiet=True)
    return summary.frames / (time.perf_counter() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="tiny", choices=CONFIGS, help="random weights of this configuration")
    parser.add_argument("--weights", "-w", help="a checkpoint instead of --config")
    parser.add_argument("--size", type=positive_int, default=256, help="frame and network size (default 256)")
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--frames", type=positive_int, default=24, help="frames in the clip (default 24)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=positive_int, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-serial", action="store_true", help="skip the one-thread comparison")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    if args.weights:
        model = load_model(args.weights, device=device)
        name = Path(args.weights).name
    else:
        torch.manual_seed(0)
        model = SwinV2DPT(CONFIGS[args.config]).to(device).eval()
        if device.type == "cpu":  # as load_model gives it
            model = accelerate_for_inference(model)
        name = f"{args.config} (random weights)"
    with tempfile.TemporaryDirectory() as folder:
        clip = make_clip(Path(folder) / "clip.avi", args.frames, args.size)
        model_rate(model, clip, args.size, args.batch_size)  # warm-up: caches, allocator
        rates = {"model": [], "video": [], "serial": []}
        for _ in range(args.repeats):
            rates["model"].append(model_rate(model, clip, args.size, args.batch_size))
            rates["video"].append(video_rate(model, clip, Path(folder) / "depth.avi", args.size, args.batch_size))
            if not args.no_serial:
                rates["serial"].append(serial_rate(model, clip, Path(folder) / "serial.avi", args.size, args.batch_size))
    median = {key: statistics.median(values) for key, values in rates.items() if values}
    print(f"{name} at {args.size}x{args.size}, batch {args.batch_size}, {args.frames} frames, {device}, "
          f"{torch.get_num_threads()} threads, median of {args.repeats} interleaved rounds")
    for key, value in median.items():
        print(f"  {key:>6}: {value:7.2f} frames/s   (rounds: {', '.join(f'{rate:.2f}' for rate in rates[key])})")
    print(f"  video / model = {median['video'] / median['model']:.1%}"
          + (f", serial / model = {median['serial'] / median['model']:.1%}" if "serial" in median else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
