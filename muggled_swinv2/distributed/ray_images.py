"""The image job as a Ray Data pipeline: the same planning, reading, prediction and writing
functions as the local command (jobs/images.py), spread over a Ray cluster.

    file list (driver: planned, existing outputs skipped before any work is sent)
      -> read + preprocess        Ray tasks on CPU workers (read_image, prepare_input)
      -> the model                an actor pool, one model load per actor, batches of --batch-size
      -> resize back + write      Ray tasks (restore_size, depth_picture, write_outputs: atomic)
      -> (name, error) per image  back to the driver, which counts them and prints the summary

Every path a worker opens is absolute: inputs, outputs and weights must be on a filesystem every
node sees at the same path. Messages name the inputs as the user gave them, as the local command
does.
"""

import json
import logging
import os
import socket
import time
from pathlib import Path

import numpy as np
import ray
import ray.data
from ray._private import services as ray_services
import torch

import cv2

from ..devices import select_device, select_dtype
from ..io.images import ImageReadError, display_bgr, read_image, silence_opencv
from ..jobs.images import (
    ImageJobOptions, ImageTask, JobSummary, depth_picture, each_alone_on_failure, one_line,
    prediction_failed, report_error, select_pending, write_outputs,
)
from ..io.colormaps import unit_depth
from ..predict import infer_prepared, prepare_input, restore_size
from ..formats.checkpoint import load_model, read_checkpoint
from . import RayError, RayOptions

# Stand-ins in the columns of images that failed, so that every row has the same columns.
NO_INPUT = np.zeros((3, 1, 1), np.float32)
NO_PICTURE = np.zeros((1, 1, 3), np.uint8)
NO_DEPTH = np.zeros((1, 1), np.float32)

# CPUs reserved by a reading or a writing task, and by default by a model actor (which runs
# PyTorch on all its node's cores whatever it reserves). Unlike reservations keep Ray Data from
# fusing the reading into the actors; on 2 CPUs, one reading or writing task runs beside the model.
IO_TASK_CPUS = 1
ACTOR_CPUS = 0.5


# ----------------------------------------------------------------------------- on the workers


def read_and_prepare(row: dict, native_size: int, options: ImageJobOptions) -> dict:
    """Read one image and make its network input (or record why it cannot be used)."""
    silence_opencv()
    try:
        image = read_image(row["source"])
    except ImageReadError as error:
        return failed_row(row, named(str(error), row))
    try:
        network_input = prepare_input(image, native_size, options.square, options.size)
    except (ValueError, cv2.error) as error:
        return failed_row(row, prediction_failed(row["name"], one_line(error)))
    shown = display_bgr(image) if options.side_by_side else NO_PICTURE
    return {**row, "input": network_input, "height": image.shape[0], "width": image.shape[1], "shown": shown}


def failed_row(row: dict, message: str) -> dict:
    return {**row, "error": message, "input": NO_INPUT, "height": 0, "width": 0, "shown": NO_PICTURE}


def named(message: str, row: dict) -> str:
    """A message about the absolute path a worker opened, naming the input as the user gave it."""
    return row["name"] + message[len(row["source"]):] if message.startswith(row["source"]) else message


class DepthPredictor:
    """An actor of the pool: loads the model once, then predicts batches of prepared inputs."""

    def __init__(self, weights: str, device: str, dtype: str, threads: int | None):
        torch.set_num_threads(threads or len(os.sched_getaffinity(0)))
        device = select_device(device)
        self.model = load_model(weights, device=device, dtype=select_dtype(dtype, device))

    def __call__(self, batch: dict) -> dict:
        errors = [str(error) for error in batch["error"]]
        todo = [index for index, error in enumerate(errors) if not error]
        results = each_alone_on_failure(
            lambda inputs: [depth.float().cpu().numpy() for depth in infer_prepared(self.model, inputs)],
            [np.asarray(batch["input"][index], np.float32) for index in todo],
        )
        depths = [NO_DEPTH] * len(errors)
        for index, (depth, reason) in zip(todo, results):
            if reason:
                errors[index] = prediction_failed(batch["name"][index], reason)
            else:
                depths[index] = depth
        kept = {key: batch[key] for key in ("name", "outputs", "height", "width", "shown")}
        return {**kept, "depth": depths, "error": errors}


def resize_and_write(row: dict, options: ImageJobOptions) -> dict:
    """The image's outputs, written as the local command writes them; (name, error) back."""
    if not row["error"]:
        outputs = {kind: Path(path) for kind, path in json.loads(row["outputs"]).items()}
        depth = restore_size(torch.from_numpy(np.asarray(row["depth"])), (int(row["height"]), int(row["width"])))
        shown = np.asarray(row["shown"])
        unit = unit_depth(depth, options.value_range, options.invert)
        picture = depth_picture(shown, depth, options.colormap, options.side_by_side, unit=unit)
        error = write_outputs(ImageTask(Path(row["name"]), outputs), depth, picture, options.overwrite, unit,
                              image=shown, options=options)
        return {"name": row["name"], "error": error or ""}
    return {"name": row["name"], "error": row["error"]}


# ----------------------------------------------------------------------------- on the driver


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """RayError unless something answers at a cluster's address: ray.init would wait for minutes."""
    target = address.removeprefix("ray://")
    try:
        if not address.startswith("ray://"):
            target = ray_services.canonicalize_bootstrap_address_or_die(address)  # 'auto', names -> host:port
        host, _, port = target.rpartition(":")
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as error:  # ConnectionError is an OSError
        raise RayError(f"--ray {address}: cannot reach a Ray cluster there ({one_line(error)})") from None


def connect(ray_options: RayOptions) -> bool:
    """ray.init for a local instance or an existing cluster; True if we started it (and stop it).
    A process already connected to Ray (a library caller, the tests) keeps its connection."""
    if ray_options.address is not None:
        check_reachable(ray_options.address)
    if ray.is_initialized():
        return False
    settings = dict(log_to_driver=False, logging_level=logging.WARNING)
    try:
        if ray_options.address is None:
            # Ray lowers its workers' priority (nice 15) by default; on this machine, the workers
            # are the command's own work, at the priority it was started with, as the local command.
            ray.init(num_cpus=ray_options.num_cpus, include_dashboard=False,
                     _system_config={"worker_niceness": 0}, **settings)
        else:
            ray.init(address=ray_options.address, **settings)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as error:
        where = f"at {ray_options.address}" if ray_options.address else "on this machine"
        raise RayError(f"--ray: cannot connect to a Ray cluster {where} ({one_line(error)})") from None
    return ray_options.address is None


def configure_data_context(quiet: bool):
    """Ray Data's own progress display unless --quiet; no statistics dump at the end."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = not quiet
    context.enable_operator_progress_bars = not quiet
    context.enable_auto_log_stats = False


def build_pipeline(weights: Path, tasks: list[ImageTask], native_size: int, options: ImageJobOptions, ray_options: RayOptions):
    rows = [
        {
            "name": str(task.source),
            "source": str(task.source.absolute()),
            "outputs": json.dumps({kind: str(path.absolute()) for kind, path in task.outputs.items()}),
            "error": "",
        }
        for task in tasks
    ]
    device = ray_options.device
    if device == "auto":
        device = "cuda" if ray_options.gpus_per_actor > 0 else "cpu"
    threads = max(1, int(ray_options.cpus_per_actor)) if ray_options.cpus_per_actor else None
    return (
        ray.data.from_items(rows)
        .map(read_and_prepare, fn_args=(native_size, options), num_cpus=IO_TASK_CPUS)
        .map_batches(
            DepthPredictor,
            fn_constructor_args=(str(weights.absolute()), device, ray_options.dtype, threads),
            batch_size=options.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=ray_options.actors),
            num_cpus=ray_options.cpus_per_actor or ACTOR_CPUS,
            num_gpus=ray_options.gpus_per_actor or None,
        )
        .map(resize_and_write, fn_args=(options,), num_cpus=IO_TASK_CPUS)
    )


def innermost(error: BaseException) -> BaseException:
    """The user-code exception inside Ray's wrappers (RayTaskError.cause, __cause__ chains)."""
    while True:
        inner = getattr(error, "cause", None) or error.__cause__
        if inner is None or inner is error:
            return error
        error = inner


def run_image_job_on_ray(weights: Path, tasks: list[ImageTask], options: ImageJobOptions, ray_options: RayOptions,
                         quiet: bool = False) -> JobSummary:
    """run_image_job's contract on a Ray cluster: the same outputs, skip rule, messages and summary.

    The checkpoint is read here only to check it and learn its native size (the workers
    preprocess); each actor loads the model itself from the same path."""
    summary = JobSummary()
    pending = select_pending(tasks, options, summary)
    for message in summary.failed:
        report_error(message)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    if not pending:  # nothing left to do: no cluster needed
        return summary
    native_size = read_checkpoint(weights).config.native_size
    started_here = connect(ray_options)
    configure_data_context(quiet)
    started = time.perf_counter()
    try:
        for row in build_pipeline(weights, pending, native_size, options, ray_options).iter_rows():
            if row["error"]:
                summary.failed.append(row["error"])
                report_error(row["error"])
            else:
                summary.processed += 1
    except KeyboardInterrupt:
        summary.interrupted = True  # every file written so far is complete (written atomically)
    except Exception as error:  # noqa: BLE001  a pipeline that could not run (e.g. no actor could load the model)
        cause = innermost(error)
        raise RayError(f"--ray: the pipeline stopped: {type(cause).__name__}: {one_line(cause)}") from None
    finally:
        summary.seconds = time.perf_counter() - started
        if started_here:
            ray.shutdown()
    return summary
