"""The image job as a Ray Data pipeline: the local command's planning and its per-batch work
(jobs/images.py: run_batch reads, predicts and writes), spread over a Ray cluster.

    file list (driver: planned, existing outputs skipped before any work is sent)
      -> an actor pool of model actors    one model load per actor; each batch of --batch-size
                                          paths is read, predicted and written by the actor
                                          (run_batch: the local command's own code, atomic writes)
      -> (index, error, notes) per image  streamed back to the driver, which reports and counts

Only paths and one-line messages travel between processes: decoded pictures and depth maps stay
in the actor that made them (on a 2-core machine, moving them between processes cost more CPU
than reading and writing them). Every path an actor opens is absolute, so inputs, outputs and
weights must be on a filesystem every node sees at the same path; messages are translated back
to the names the user gave, as the local command prints them.
"""

import json
import logging
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import ray
import ray.data
import torch

from ..build import load_model
from ..devices import DTYPES, cpu_threads, select_device, select_dtype
from ..errors import one_line
from ..formats.checkpoint import read_checkpoint
from ..io.ledger import OutputLedger
from ..jobs.images import ImageJobOptions, ImageTask, JobSummary, report_error, run_batch, select_pending
from ..memory import available_bytes
from . import RayError, RayOptions
from .cluster import ray_session

# ----------------------------------------------------------------------------- on the workers


class ImageJobActor:
    """A model actor of the pool: loads the model once, then runs the image job on each batch of
    tasks it is given (run_batch: read, predict, write) and returns one row per image."""

    def __init__(self, weights: str, device: str, dtype: str, threads: int, options: ImageJobOptions):
        torch.set_num_threads(min(threads, cpu_threads()))  # the CPUs this actor holds, no more than it may run on
        device = select_device(device)
        self.model = load_model(weights, device=device, dtype=select_dtype(dtype, device))
        self.options = options
        self.ledger = OutputLedger()

    def __call__(self, batch: dict) -> dict:
        tasks = [ImageTask(Path(source), {kind: Path(path) for kind, path in json.loads(outputs).items()})
                 for source, outputs in zip(batch["source"], batch["outputs"])]
        results = {id(result.task): result for result in run_batch(self.model, tasks, self.options, self.ledger)}
        ordered = [results[id(task)] for task in tasks]
        return {
            "index": batch["index"],
            "error": [result.error or "" for result in ordered],
            "notes": [json.dumps(result.notes) for result in ordered],
            "info": [json.dumps(result.info) for result in ordered],  # shown unless --quiet
        }


# ----------------------------------------------------------------------------- on the driver


def actor_layout(ray_options: RayOptions, model_bytes: int) -> tuple[int, float]:
    """(model actors, CPUs each reserves); an actor runs PyTorch on the whole CPUs it holds.

    Unless given: with GPUs, 1 actor holding 1 CPU. On a local instance, one single-threaded
    actor per CPU, as many as the memory available holds at four times the model's weights each
    (the weights, the decoder's caches and a prediction's working memory): on this project's
    2-core machine two models on one thread each outran one model on two threads (PyTorch gains
    about 1.7x from a second thread, a second process nearly 2x). On a cluster, 1 actor. Given
    --actors alone, the CPUs are shared out between them (at most a node's each)."""
    if ray_options.gpus_per_actor:
        return ray_options.actors or 1, ray_options.cpus_per_actor or 1.0
    node_cpus = [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")] or [1.0]
    actors = ray_options.actors
    if actors is None and ray_options.address is None:
        cpus = ray_options.cpus_per_actor or 1.0
        fitting = (available_bytes() or 0) // max(1, 4 * model_bytes)
        return max(1, min(math.floor(sum(node_cpus) / cpus), fitting)), cpus
    actors = actors or 1
    if ray_options.cpus_per_actor:
        return actors, ray_options.cpus_per_actor
    share = sum(node_cpus) / actors
    if share >= 1:
        return actors, float(min(math.floor(share), math.floor(max(node_cpus))))
    return actors, 1.0 / math.ceil(1.0 / share)  # more actors than CPUs: an equal fraction each


def check_resources(cpus_per_actor: float, gpus_per_actor: float) -> None:
    """RayError unless some node of the cluster can hold one actor: Ray would wait for one forever."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if any(node.get("CPU", 0.0) >= cpus_per_actor and node.get("GPU", 0.0) >= gpus_per_actor for node in nodes):
        return
    cpus = max((node.get("CPU", 0.0) for node in nodes), default=0.0)
    gpus = max((node.get("GPU", 0.0) for node in nodes), default=0.0)
    asked = f"{cpus_per_actor:g} CPU" + (f" and {gpus_per_actor:g} GPU" if gpus_per_actor else "")
    raise RayError(f"--ray: no node of the Ray cluster has {asked} for an actor (the most on one node: "
                   f"{cpus:g} CPU, {gpus:g} GPU); lower --gpus-per-actor/--cpus-per-actor or add such a node")


def configure_data_context(quiet: bool):
    """Ray Data's own progress bars on a terminal, unless --quiet; never its INFO log lines (the
    execution plan, and where stdout or stderr is not a terminal, the progress it then logs as a
    block of lines every 10 s instead of bars); no statistics dump at the end."""
    context = ray.data.DataContext.get_current()
    bars = not quiet and sys.stderr.isatty() and sys.stdout.isatty()  # Ray Data logs instead unless stdout is one
    context.enable_progress_bars = bars
    context.enable_operator_progress_bars = bars
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.WARNING if bars else logging.ERROR)  # no "progress bars disabled"


def build_pipeline(weights: Path, tasks: list[ImageTask], options: ImageJobOptions, ray_options: RayOptions,
                   model_bytes: int):
    rows = [
        {
            "index": index,
            "source": str(task.source.absolute()),
            "outputs": json.dumps({kind: str(path.absolute()) for kind, path in task.outputs.items()}),
        }
        for index, task in enumerate(tasks)
    ]
    device = ray_options.device
    if device == "auto":
        device = "cuda" if ray_options.gpus_per_actor > 0 else "cpu"
    actors, cpus = actor_layout(ray_options, model_bytes)
    check_resources(cpus, ray_options.gpus_per_actor)
    actors = min(actors, len(rows))  # an actor with no paths to work on would only load the model
    actor_options = replace(options, out_dir=options.out_dir.absolute())
    # Blocks of paths: Ray Data's default for a short list is one block per path, and on a small
    # machine each block's scheduling took CPU time from the actors (measured on 2 cores, 100
    # photos: 1 s of 23). A few blocks per actor keep them evenly loaded; at most
    # ROWS_PER_BLOCK paths each keep progress and results streaming on a long list.
    blocks = min(len(rows), max(BLOCKS_PER_ACTOR * actors, math.ceil(len(rows) / ROWS_PER_BLOCK)))
    return ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
        ImageJobActor,
        fn_constructor_args=(str(weights.absolute()), device, ray_options.dtype, max(1, math.floor(cpus)), actor_options),
        batch_size=options.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus,
        num_gpus=ray_options.gpus_per_actor or None,
    )


BLOCKS_PER_ACTOR = 4
ROWS_PER_BLOCK = 64


def as_given(message: str, task: ImageTask) -> str:
    """A message about the absolute paths an actor opened, naming them as the user gave them."""
    pairs = [(task.source.absolute(), task.source), *((path.absolute(), path) for path in task.outputs.values())]
    for absolute, given in sorted(pairs, key=lambda pair: -len(str(pair[0]))):
        message = message.replace(str(absolute), str(given))
    return message


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

    The checkpoint is read here only to check it before any cluster work; each actor loads the
    model itself from the same path."""
    summary = JobSummary()
    pending = select_pending(tasks, options, summary)
    for message in summary.failed:
        report_error(message)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    if not pending:  # nothing left to do: no cluster needed
        return summary
    state_dict = read_checkpoint(weights).state_dict
    model_bytes = sum(tensor.numel() for tensor in state_dict.values()) * DTYPES[ray_options.dtype].itemsize
    outputs_before = output_states(pending)
    started = time.perf_counter()
    with ray_session(ray_options, quiet):
        try:
            configure_data_context(quiet)
            started = time.perf_counter()
            rows = iter(build_pipeline(weights, pending, options, ray_options, model_bytes).iter_rows())
            try:
                for row in rows:
                    task = pending[int(row["index"])]
                    for note in json.loads(row["notes"]) + ([] if quiet else json.loads(row["info"])):
                        report_error(as_given(note, task))
                    if row["error"]:
                        message = as_given(str(row["error"]), task)
                        summary.failed.append(message)
                        report_error(message)
                    else:
                        summary.processed += 1
            finally:
                rows.close()  # stops Ray Data's executor (its threads, its actors) before Ray is shut down
        except KeyboardInterrupt:
            summary.interrupted = True  # every file written so far is complete (written atomically)
        except RayError:
            raise
        except Exception as error:  # noqa: BLE001  a pipeline that could not run (e.g. no actor could load the model)
            cause = innermost(error)
            raise RayError(f"--ray: the pipeline stopped: {type(cause).__name__}: {one_line(cause)}") from None
        finally:
            summary.seconds = time.perf_counter() - started
    if summary.interrupted:
        # The actors went on writing until Ray stopped them: what they finished had not all been
        # reported. With the instance stopped, the outputs on disk are the count.
        summary.processed = sum(all_written(task, outputs_before) for task in pending)
    return summary


def output_states(tasks: list[ImageTask]) -> dict[Path, tuple | None]:
    """Each output's (inode, modification time, size) before the run, None if missing."""
    states = {}
    for task in tasks:
        for path in task.outputs.values():
            try:
                status = path.stat()
                states[path] = (status.st_ino, status.st_mtime_ns, status.st_size)
            except OSError:
                states[path] = None
    return states


def all_written(task: ImageTask, before: dict[Path, tuple | None]) -> bool:
    """Whether every output of `task` was written since `before` (output_states): each is written
    to a temp file and renamed into place, so a new one is a new inode."""
    return all(state is not None and state != before[path] for path, state in output_states([task]).items())
