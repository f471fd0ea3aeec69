#!/usr/bin/env python3
"""Live depth from a camera (or a video file), side by side with the picture.

    python scripts/webcam_demo.py                      # camera 0, a window
    python scripts/webcam_demo.py --source clip.mp4 --headless --max-frames 100 --save depth.mp4

Keys in the window: c = next colour map, s = toggle side by side, p = save a snapshot (PNG),
q or Esc = quit. Reading runs ahead and the model runs in worker threads (muggled_swinv2.video.
pipeline.LivePipeline) while this loop colours, shows and saves the frame before: each picture is
shown with its own depth. From a camera the model always takes the newest frame (frames it has no
time for are skipped, and at most one result waits for this loop, so the lag stays one frame); from
a video file every frame is shown, in order. Depth is
stabilised over time (one scale and shift for all frames; --no-stabilize for the raw values).
"""

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

import cv2
from muggled_swinv2 import CheckpointError, load_model
from muggled_swinv2.cli import UsageError, positive_int
from muggled_swinv2.errors import os_error_line
from muggled_swinv2.io.colormaps import COLORMAPS, RunningRange, colorize, normalize
from muggled_swinv2.devices import DTYPES, DeviceError, select_device, select_dtype
from muggled_swinv2.io.images import save_image, silence_opencv
from muggled_swinv2.io.outputs import OutputError, OutputRule, check_writable_folder
from muggled_swinv2.io.av_video import check_colour_video_target, open_colour_video_writer
from muggled_swinv2.io.video import VideoError, VideoReader
from muggled_swinv2.jobs.models import find_weights
from muggled_swinv2.predict import infer_prepared, prepare_input, restore_size
from muggled_swinv2.video.pipeline import LivePipeline, StageError, one_opencv_thread
from muggled_swinv2.video.stabilize import DepthStabilizer
from muggled_swinv2.formats.weights import WeightsError


class DepthError(Exception):
    """Depth estimation failed in the model thread (one-line message)."""


class TimedInfer:
    """The model stage: network inputs -> network-resolution depth, timing each pass."""

    def __init__(self, model):
        self.model = model
        self.seconds_per_depth = 0.0

    def __call__(self, inputs):
        started = time.perf_counter()
        depths = infer_prepared(self.model, inputs)
        self.seconds_per_depth = (time.perf_counter() - started) / len(inputs)
        return depths


def compose(frame, depth, colour_range, colormap, side_by_side, caption):
    """The picture shown: depth in colour, the frame beside it."""
    colored = colorize(normalize(depth, *colour_range.update(depth)), colormap)
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
    """--save: never the source video, an existing file only with --overwrite and only if this tool
    wrote it, a container we can write, a folder we can write."""
    save, source = Path(args.save), Path(args.source)
    rule = OutputRule(args.overwrite, inputs={source: "the source video"} if source.exists() else {})
    if save.is_dir() and not rule.overwritten_input(save):
        raise UsageError(f"--save {save}: is a folder; give the video file to write")
    check_colour_video_target(save)
    rule.check(save, "--save")
    check_writable_folder(save.parent, "--save folder")


def run(args) -> int:
    if args.save:
        check_save_target(args)
    camera = args.source.isdigit()
    reader = VideoReader(int(args.source) if camera else args.source)  # before the model: a missing camera or file is named at once
    try:
        device = select_device(args.device)
        model = load_model(find_weights(args.weights), device=device, dtype=select_dtype(args.dtype, device))
    except BaseException:
        reader.close()
        raise
    infer = TimedInfer(model)
    native = model.config.native_size
    # A camera keeps only its newest frame waiting for the model (no backlog, little lag); a video
    # file gives every frame, in order. Either way each picture is shown (and saved) with its own depth.
    pipeline = LivePipeline(
        reader if args.max_frames is None or camera else itertools.islice(reader, args.max_frames),
        infer=infer,
        prepare=lambda frame: prepare_input(frame, native, False, args.size),
        newest_only=camera,
    )
    stabilizer = DepthStabilizer() if args.stabilize else None
    colour_range = RunningRange()
    colormaps = list(COLORMAPS)
    colormap, side_by_side = args.colormap, True
    writer = None
    frames, started, interrupted = 0, time.perf_counter(), False
    with one_opencv_thread():  # OpenCV's idle pool would spin beside the model
        try:
            for item in pipeline:
                frame = item.frame
                depth = restore_size(item.result, frame.shape[:2])
                if stabilizer is not None:
                    depth = stabilizer(depth, frame).depth
                frames += 1
                fps = frames / max(time.perf_counter() - started, 1e-6)
                depth_rate = 1 / infer.seconds_per_depth if infer.seconds_per_depth else 0.0
                caption = f"{fps:.1f} fps, depth {depth_rate:.1f}/s, {colormap}"
                view = compose(frame, depth, colour_range, colormap, side_by_side, caption)
                if args.save:
                    if writer is None:
                        writer = open_colour_video_writer(args.save, reader.fps, (view.shape[1], view.shape[0]),
                                                          audio_source=None if camera else args.source)
                    writer.write(cv2.resize(view, writer.size_wh) if view.shape[1::-1] != writer.size_wh else view)
                if args.max_frames is not None and frames >= args.max_frames:
                    break
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
        except BaseException as error:
            if writer is not None:
                writer.abandon()  # an error: no half-written --save file
                writer = None
            if isinstance(error, StageError):
                if error.stage == "reader":
                    raise VideoError(f"{args.source}: cannot read frame {error.index + 1} ({error.reason})")
                raise DepthError(f"depth estimation failed at frame {error.index + 1} ({error.reason})")
            raise
        finally:
            pipeline.close()
            reader.close()
            if writer is not None:
                writer.finish()
                if writer.note:
                    print(f"{args.save}: {writer.note}", file=sys.stderr)
            if not args.headless:
                cv2.destroyAllWindows()
    if not frames and not interrupted:
        raise VideoError(f"{args.source}: no frames could be read (empty or corrupt video, or a busy camera)")
    print(f"{frames} frames, {frames / max(time.perf_counter() - started, 1e-6):.1f} fps", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="0",
                        help="camera index or video file (default: 0). A live camera shown on screen drops frames "
                             "to keep up (each shown with the newest depth); a video file, or any run with --save, "
                             "gets each frame's own depth")
    parser.add_argument("--weights", "-w", help="checkpoint (default: the one in weights/)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    parser.add_argument("--size", type=positive_int, help="long side fed to the network (default: native)")
    parser.add_argument("--colormap", default="inferno", choices=COLORMAPS)
    parser.add_argument("--headless", action="store_true", help="no window (for servers and tests)")
    parser.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    parser.add_argument("--save", help="also write what is shown to this video file: .mp4, .m4v, .mov or .mkv as "
                        "H.264, .webm as VP9, with a video source's sound (PyAV; without it OpenCV's MPEG-4 Part 2, "
                        "no sound), .avi as Motion JPEG; every frame with its own depth")
    parser.add_argument("--overwrite", action="store_true", help="replace the --save file if this tool wrote it")
    parser.add_argument("--stabilize", action=argparse.BooleanOptionalAction, default=True,
                        help="one depth scale and shift for all frames (default: on)")
    args = parser.parse_args(argv)
    silence_opencv()
    try:
        return run(args)
    except (CheckpointError, WeightsError, DeviceError, VideoError, UsageError, OutputError, DepthError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {os_error_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
