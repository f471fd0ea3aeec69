#!/usr/bin/env python3
"""Live depth from a camera (or a video file), side by side with the picture.

    python scripts/webcam_demo.py                      # camera 0, a window
    python scripts/webcam_demo.py --source clip.mp4 --headless --max-frames 100 --save depth.mp4

Keys in the window: c = next colour map, s = toggle side by side, p = save a snapshot (PNG),
q or Esc = quit. Depth runs in a worker thread: the window keeps showing camera frames at their
own rate and picks up each new depth map when it is ready, so inference never holds the display
loop for longer than one frame.
"""

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

import cv2
from muggled_swinv2.formats.checkpoint import CheckpointError, load_model
from muggled_swinv2.cli import UsageError, make_writable_folder, os_error_line, positive_int, weights_path
from muggled_swinv2.io.colormaps import COLORMAPS, colorize, normalize
from muggled_swinv2.devices import DTYPES, DeviceError, select_device, select_dtype
from muggled_swinv2.io.images import save_image, silence_opencv
from muggled_swinv2.io.video import AtomicVideoWriter, VideoError, VideoReader
from muggled_swinv2.jobs.video import RunningRange
from muggled_swinv2.formats.weights import WeightsError


class DepthError(Exception):
    """Depth estimation failed in the worker thread (one-line message)."""


class DepthWorker:
    """Runs model.predict on the newest frame handed to it, one at a time, off the display loop."""

    def __init__(self, model, size):
        self.model, self.size = model, size
        self.lock = threading.Lock()
        self.waiting_frame = None
        self.depth = None  # latest result
        self.seconds_per_depth = 0.0
        self.error = None
        self.wake = threading.Event()
        self.stopped = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def submit(self, frame: np.ndarray):
        """Replace the waiting frame: when the worker is free it takes the newest one."""
        with self.lock:
            self.waiting_frame = frame
        self.wake.set()

    def latest(self):
        if self.error:
            reason = (str(self.error).splitlines() or [type(self.error).__name__])[0][:200]
            raise DepthError(f"depth estimation failed ({reason})")
        with self.lock:
            return self.depth

    def wait_first(self):
        while self.latest() is None:
            time.sleep(0.005)
        return self.latest()

    def _loop(self):
        while not self.stopped:
            self.wake.wait()
            self.wake.clear()
            with self.lock:
                frame, self.waiting_frame = self.waiting_frame, None
            if frame is None:
                continue
            started = time.perf_counter()
            try:
                depth = self.model.predict(frame, size=self.size)
            except Exception as error:  # re-raised in the display loop by latest()
                self.error = error
                return
            with self.lock:
                self.depth = depth
                self.seconds_per_depth = time.perf_counter() - started

    def stop(self):
        self.stopped = True
        self.wake.set()
        self.thread.join(timeout=10)


def compose(frame, depth, colour_range, colormap, side_by_side, caption):
    """The picture shown: depth in colour (black until the first map), the frame beside it."""
    if depth is None:
        colored = np.zeros_like(frame)
    else:
        colored = colorize(normalize(depth, *colour_range.update(depth)), colormap)
        if colored.shape[:2] != frame.shape[:2]:  # a frame of another size arrived meanwhile
            colored = cv2.resize(colored, (frame.shape[1], frame.shape[0]))
    view = np.hstack([frame, colored]) if side_by_side else colored
    cv2.putText(view, caption, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return view


def save_snapshot(view: np.ndarray) -> None:
    """The picture shown, as depth_snapshot_<time>.png in the current folder (never replacing one)."""
    stamp = time.strftime("%Y%m%d_%H%M%S")
    path, number = Path(f"depth_snapshot_{stamp}.png"), 1
    while path.exists():
        number += 1
        path = Path(f"depth_snapshot_{stamp}_{number}.png")
    try:
        save_image(path, view)
    except OSError as error:
        print(f"cannot save {path} in the current folder ({error.strerror or error})", file=sys.stderr)
        return
    print(f"saved {path}", file=sys.stderr)


def check_save_target(args):
    """--save: never the source video, an existing file only with --overwrite, a folder we can write."""
    save, source = Path(args.save), Path(args.source)
    if source.exists() and save.resolve() == source.resolve():
        raise UsageError(f"--save {save}: would overwrite the source video")
    if save.is_dir():
        raise UsageError(f"--save {save}: is a folder; give the video file to write")
    if save.exists() and not args.overwrite:
        raise UsageError(f"--save {save}: exists; pass --overwrite to replace it")
    make_writable_folder(save.parent, "--save folder")


def run(args) -> int:
    if args.save:
        check_save_target(args)
    device = select_device(args.device)
    model = load_model(weights_path(args.weights), device=device, dtype=select_dtype(args.dtype, device))
    reader = VideoReader(int(args.source) if args.source.isdigit() else args.source)
    worker = DepthWorker(model, args.size)
    colour_range = RunningRange()
    colormaps = list(COLORMAPS)
    colormap, side_by_side = args.colormap, True
    writer = None
    frames, started, interrupted = 0, time.perf_counter(), False
    try:
        while args.max_frames is None or frames < args.max_frames:
            frame = reader.read()
            if frame is None:
                break
            worker.submit(frame)
            depth = worker.latest()
            if depth is None and args.headless:
                depth = worker.wait_first()  # nobody is watching: wait for the first depth map
            frames += 1
            fps = frames / max(time.perf_counter() - started, 1e-6)
            depth_rate = 1 / worker.seconds_per_depth if worker.seconds_per_depth else 0.0
            caption = f"{fps:.1f} fps, depth {depth_rate:.1f}/s, {colormap}"
            view = compose(frame, depth, colour_range, colormap, side_by_side, caption)
            if args.save:
                if writer is None:
                    writer = AtomicVideoWriter(args.save, reader.fps, (view.shape[1], view.shape[0]))
                writer.write(cv2.resize(view, writer.size_wh) if view.shape[1::-1] != writer.size_wh else view)
            if args.headless:
                continue
            cv2.imshow("muggled_swinv2 depth", view)
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27):
                break
            if key == ord("c"):
                colormap = colormaps[(colormaps.index(colormap) + 1) % len(colormaps)]
            elif key == ord("s"):
                side_by_side = not side_by_side
            elif key == ord("p"):
                save_snapshot(view)
    except KeyboardInterrupt:
        interrupted = True  # finish the --save file below so what was written plays
    except BaseException:
        if writer is not None:
            writer.abandon()  # an error: no half-written --save file
            writer = None
        raise
    finally:
        worker.stop()
        reader.close()
        if writer is not None:
            writer.finish()
        if not args.headless:
            cv2.destroyAllWindows()
    if not frames and not interrupted:
        raise VideoError(f"{args.source}: no frames could be read (empty or corrupt video, or a busy camera)")
    print(f"{frames} frames, {frames / max(time.perf_counter() - started, 1e-6):.1f} fps", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="0", help="camera index or video file (default: 0)")
    parser.add_argument("--weights", "-w", help="checkpoint (default: the one in weights/)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    parser.add_argument("--size", type=positive_int, help="long side fed to the network (default: native)")
    parser.add_argument("--colormap", default="inferno", choices=COLORMAPS)
    parser.add_argument("--headless", action="store_true", help="no window (for servers and tests)")
    parser.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    parser.add_argument("--save", help="also write what is shown to this video file")
    parser.add_argument("--overwrite", action="store_true", help="replace the --save file if it exists")
    args = parser.parse_args(argv)
    silence_opencv()
    try:
        return run(args)
    except (CheckpointError, WeightsError, DeviceError, VideoError, UsageError, DepthError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {os_error_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
