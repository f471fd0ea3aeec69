"""Train several demo-model recipes side by side on one device and compare them on the test split.

The scenes are rendered once (all cores), then each recipe trains in its own process on the same
samples (so a GPU runs several small models at once) until it ends or the deadline passes. Every
validation line and the final test-split scores go to one log; each finished recipe's weights to
OUT/NAME.safetensors.

    python benchmarks/sweep_training.py --out outputs/sweep --device cuda --deadline 300 \
        --recipe "base:steps=4000,batch_size=8,size=192,lr=5e-4" --recipe "small:size=128,steps=8000"

A recipe is NAME:key=value,... over the fields of TrainOptions, and of the micro config
(`embed_dims=48/96/192/384`: a larger model, to see what capacity buys). `seconds=S` trains for S
seconds instead of a number of steps (the cosine decay follows the clock; the weights reached are
scored), so that recipes of different speeds get the same time on a device. `old_loss=1` trains
with the MiDaS loss on the ReLU output and no anchor (the first demo model's recipe), for comparison.
"""

import argparse
import dataclasses
import json
import math
import multiprocessing
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from muggled_swinv2.model import SwinV2DPTConfig  # noqa: E402
from muggled_swinv2 import datasets  # noqa: E402
from muggled_swinv2.synthetic.scenes import SYNTHETIC_MAX_DEPTH  # noqa: E402
from muggled_swinv2.training import trainer  # noqa: E402

CONFIG_KEYS = {field.name for field in fields(SwinV2DPTConfig)}  # recipe keys that change the micro config


def parse_recipe(text: str) -> tuple[str, dict]:
    name, _, settings = text.partition(":")
    types = {field.name: field.type for field in fields(trainer.TrainOptions)}
    values = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        if key == "old_loss":
            values[key] = bool(int(value))
        elif key in CONFIG_KEYS:
            numbers = tuple(int(part) for part in value.split("/"))
            values[key] = numbers if "/" in value else numbers[0]
        elif key == "seconds":
            values[key] = float(value)
        elif key == "workers":
            values[key] = int(value)
        elif types.get(key) in (int, "int"):
            values[key] = int(value)
        elif types.get(key) in (float, "float"):
            values[key] = float(value)
        else:
            values[key] = value
    return name, values


class TimeUp(KeyboardInterrupt):
    """The time of a `seconds=` recipe is up (the trainer saves its state as on Ctrl-C)."""


def timed_learning_rate(seconds: float) -> None:
    """The trainer's schedule with the cosine decay over `seconds` from the first step, not over steps."""
    clock = {}

    def learning_rate(step, options):
        elapsed = time.perf_counter() - clock.setdefault("start", time.perf_counter())
        if elapsed >= seconds:
            raise TimeUp
        cosine = options.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * elapsed / seconds)))
        return min(cosine, options.lr * (step + 1) / max(1, options.warmup))

    trainer.learning_rate = learning_rate


def run_recipe(name, settings, train_samples, val_samples, test_samples, args, log_path):
    import torch

    from muggled_swinv2.evaluation.protocol import evaluate_samples
    from muggled_swinv2.training import losses

    def log(line):
        with open(log_path, "a") as file:
            file.write(f"[{name} {time.strftime('%H:%M:%S')}] {line}\n")

    torch.set_num_threads(2)  # several recipes share the cores
    settings = dict(settings)
    changes = {key: settings.pop(key) for key in list(settings) if key in CONFIG_KEYS}
    trainer.SMALL_CONFIGS["micro"] = dataclasses.replace(trainer.SMALL_CONFIGS["micro"], **changes)
    seconds = settings.pop("seconds", None)
    if seconds:
        settings["steps"] = 10**8
        timed_learning_rate(seconds)
    if settings.pop("old_loss", False):
        real_forward = trainer.SwinV2DPT.forward
        trainer.SwinV2DPT.forward = lambda self, image, clamp_negative=True: real_forward(self, image)
        trainer.training_loss = losses.midas_loss
    trainer.load_data = lambda options, log, option_name=None: (train_samples, val_samples)
    options = trainer.TrainOptions(out=str(Path(args.out) / f"{name}.safetensors"), config="micro",
                                   device=args.device, quiet=True, save_every=10**9,
                                   scenes=args.scenes, val_count=args.val_count, **settings)
    device_name = torch.cuda.get_device_name() if torch.device(args.device).type == "cuda" else "cpu"
    log(f"options {options} on {device_name}, torch {torch.__version__}")
    started = time.perf_counter()
    try:
        result = trainer.train(options, log=log)
        log(f"trained {result['steps']} steps in {result['seconds']:.0f} s, {result['images_per_second']:.0f} img/s")
    except TimeUp:  # the trainer saved its state: score the weights reached
        state = torch.load(trainer.state_path(options.out), map_location="cpu", weights_only=True)
        model = trainer.SwinV2DPT(trainer.SMALL_CONFIGS["micro"])
        model.load_state_dict(state["model"])
        trainer.save_weights(model, options.out)
        seconds_taken = time.perf_counter() - started
        images = state["step"] * options.batch_size * options.accumulate
        log(f"trained {state['step']} steps ({images} images) in {seconds_taken:.0f} s, {images / seconds_taken:.0f} img/s")
        result = {"val": []}
    except Exception as error:  # one recipe failing must not stop the others
        log(f"failed: {type(error).__name__}: {error}")
        return
    model = trainer.load_model(options.out).to(args.device).eval()
    scores = evaluate_samples(model, test_samples, max_depth=SYNTHETIC_MAX_DEPTH)
    log("TEST " + json.dumps({"absrel": scores["mean"]["absrel"], "delta1": scores["mean"]["delta1"],
                             "baseline": scores["baseline"], "val": result["val"]}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--scenes", type=int, default=4000)
    parser.add_argument("--val-count", type=int, default=100)
    parser.add_argument("--test-count", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--deadline", type=float, default=600, help="seconds from start; unfinished recipes are stopped")
    parser.add_argument("--recipe", action="append", required=True)
    args = parser.parse_args()
    started = time.time()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    log_path = Path(args.out) / "sweep.log"
    recipes = [parse_recipe(text) for text in args.recipe]
    train_samples = datasets.render_split("train", args.scenes, 256, quiet=True, workers=args.workers)
    val_samples = datasets.render_split("val", args.val_count, 256, quiet=True, workers=args.workers)
    test_samples = datasets.render_split("test", args.test_count, 256, quiet=True, workers=args.workers)
    with open(log_path, "a") as file:
        file.write(f"rendered {len(train_samples)} + {len(val_samples)} + {len(test_samples)} scenes "
                   f"in {time.time() - started:.0f} s\n")
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=run_recipe, args=(name, settings, train_samples, val_samples, test_samples, args, log_path))
                 for name, settings in recipes]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=max(0.0, started + args.deadline - time.time()))
    for process, (name, _) in zip(processes, recipes):
        if process.is_alive():
            process.kill()
            with open(log_path, "a") as file:
                file.write(f"[{name}] stopped at the deadline\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
