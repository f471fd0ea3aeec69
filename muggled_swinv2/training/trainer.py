"""Training a SwinV2-DPT depth model: from scratch (a small named config) or fine-tuning a checkpoint.

One step = `accumulate` micro-batches of `batch_size` random crops -> MiDaS loss -> AdamW, with a
linear warm-up and a cosine decay of the learning rate (a pure function of the step, so nothing
but the model, the optimizer and the step number needs saving). Batches are a function of
(seed, step) alone: on the CPU the same seed and data give the same weights, and a resumed run the
same weights as an uninterrupted one.

Files: OUT (our safetensors, written at the end and after each validation) and OUT.state.pt (the
training state: model, optimizer, step, options), written after each validation and on Ctrl-C.
"""

import math
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..build import load_model
from ..datasets import DataError, Sample, check_scene_textures, load_folder, render_split
from ..devices import dtype_warning, training_autocast_dtype
from ..errors import UserError, first_line
from ..evaluation.protocol import evaluate_samples
from ..formats.checkpoint import Checkpoint
from ..formats.convert import save_native
from ..io.outputs import OutputRule
from ..model import SwinV2DPT, SwinV2DPTConfig
from ..model.config import SMALL_CONFIGS
from ..synthetic.scenes import SYNTHETIC_MAX_DEPTH
from .batches import training_batch
from .losses import training_loss


class TrainingError(UserError):
    """Training cannot start or go on (one line)."""


# How the caller's user names a setting of `train` (a TrainOptions field, `resume` or `overwrite`) in
# a message: the command line passes its flags ("val_data" -> "--val-data").
OptionName = Callable[[str], str]


def same_name(setting: str) -> str:
    """A Python caller's name of a setting: the one it wrote."""
    return setting


@dataclass
class TrainOptions:
    out: str
    config: str | None = None  # a SMALL_CONFIGS name (from scratch) ...
    init: str | None = None  # ... or a checkpoint to fine-tune
    data: str = "synthetic"  # "synthetic" or a folder with images/ and depth/ (or disparity/)
    val_data: str | None = None  # folder for validation (default: synthetic val split, or 10% of DATA)
    gt_scale: float = 1.0
    scenes: int = 3000  # synthetic training scenes rendered (and augmented every time they are drawn)
    scene_size: int = 256
    steps: int = 1000
    batch_size: int = 8
    accumulate: int = 1
    size: int = 192  # training crop side
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup: int = 200
    seed: int = 0
    val_every: int = 250  # steps between validations; each also saves the weights and the training state
    val_count: int = 48
    device: str = "cpu"
    precision: str = "auto"  # autocast dtype of the passes: devices.training_autocast_dtype
    workers: int | None = None  # processes making batches ahead: batch_workers
    quiet: bool = False


def init_from_scratch(model: SwinV2DPT, seed: int) -> SwinV2DPT:
    """Initialisation that keeps every activation near unit scale (the decoder has no normalisation).

    Linear layers: Swin's truncated normal (std 0.02), zero biases, logit scale log(10) (cosine
    logits in [-10, 10]). Convolutions: std sqrt(2 / fan_in) where a ReLU follows, sqrt(1 / fan_in)
    where none does, and the last conv of each residual unit zero, so that every unit starts as the
    identity (with Kaiming everywhere, the fused features grew 20x by the head). The output conv
    starts small with bias 1: a raw output near 1 with a small spread, where the loss's anchor holds it.
    """
    generator = torch.Generator().manual_seed(seed)
    followed_by_relu = {model.decoder.head.conv2}
    zero = set()
    for module in model.decoder.modules():
        if hasattr(module, "conv1") and hasattr(module, "conv2") and module is not model.decoder.head:
            followed_by_relu.add(module.conv1)  # a residual unit: relu(conv1(.)) -> conv2 -> + x
            zero.add(module.conv2)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator).clamp_(-2, 2) * 0.02)
                if module.bias is not None:
                    module.bias.zero_()
        elif isinstance(module, torch.nn.Conv2d):
            gain = 0.0 if module in zero else 2.0 if module in followed_by_relu else 1.0
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * math.sqrt(gain / module.weight[0].numel()))
                if module.bias is not None:
                    module.bias.zero_()
        if hasattr(module, "logit_scale"):
            with torch.no_grad():
                module.logit_scale.fill_(math.log(10.0))
    with torch.no_grad():
        model.decoder.head.conv3.weight.mul_(0.1)
        model.decoder.head.conv3.bias.fill_(1.0)
    return model


def learning_rate(step: int, options: TrainOptions) -> float:
    """Linear warm-up to lr, then cosine decay to lr / 100 at the last step."""
    if step < options.warmup:
        return options.lr * (step + 1) / options.warmup
    progress = (step - options.warmup) / max(1, options.steps - options.warmup)
    return options.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def state_path(out) -> Path:
    return Path(str(out) + ".state.pt")


STATE_KEYS = ("model", "optimizer", "step", "options", "config")


def save_state(path: Path, model, optimizer, loss_scaler, step: int, options: TrainOptions) -> None:
    """Everything a resumed run needs to go on as if never stopped (the float16 loss scale too)."""
    state = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
        "options": asdict(options), "config": model.config.to_dict(), "loss_scaler": loss_scaler.state_dict(),
    }
    try:
        OutputRule().write_output(path, lambda file: torch.save(state, file))  # checked again at the move, recorded
    except RuntimeError as error:  # torch.save reports a failed write (a full disk) as "unexpected pos ..."
        if isinstance(error.__context__, OSError):
            raise OSError(error.__context__.errno, error.__context__.strerror, str(path)) from None
        raise


def load_state(path: Path, option_name: OptionName = same_name) -> dict:
    """The training state save_state wrote; TrainingError (one line) for any other file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated, text, pickled objects: torch.load has many ways to fail
        raise TrainingError(f"{path}: not a training state (torch.load cannot read it)") from None
    if not isinstance(state, dict):
        raise TrainingError(f"{path}: not a training state (it holds a {type(state).__name__}, not a dict)")
    if state and all(isinstance(value, torch.Tensor) for value in state.values()):
        raise TrainingError(f"{path}: not a training state but model weights (fine-tune them with {option_name('init')})")
    missing = [key for key in STATE_KEYS if key not in state]
    if missing or not isinstance(state["step"], int) or not isinstance(state["options"], dict):
        raise TrainingError(f"{path}: not a training state (no {', '.join(missing) or 'step number or options'})")
    return state


def saved_state_for(options: TrainOptions, option_name: OptionName = same_name) -> dict:
    """The training state of OUT, that this run (the same settings, as many steps or more) may go on from."""
    path = state_path(options.out)
    if not path.is_file():
        raise TrainingError(f"{path}: no training state to resume (run without {option_name('resume')} first)")
    saved = load_state(path, option_name)
    current = asdict(options)
    changed = sorted(key for key, value in saved["options"].items()  # a key no longer an option (save_every) is no setting
                     if key in current and value != current[key] and key not in ("quiet", "device", "precision", "workers", "steps"))
    if changed:
        raise TrainingError(f"{option_name('resume')} with other settings than the saved run ({', '.join(changed)} differ)")
    if options.steps < saved["step"]:
        raise TrainingError(f"{option_name('steps')} {options.steps}: the saved run is already at step {saved['step']}")
    return saved


def saved_model(saved: dict, path: Path) -> SwinV2DPT:
    try:
        model = SwinV2DPT(SwinV2DPTConfig.from_dict(saved["config"]))
        model.load_state_dict(saved["model"])
    except Exception as error:  # a dict that only looks like a state
        raise TrainingError(f"{path}: not a training state ({first_line(error)})") from None
    return model


def check_free_space(folder: Path, model: SwinV2DPT) -> None:
    """Refuse at the start a run whose first save would not fit: the weights and the state (the
    model and AdamW's two moments), all float32."""
    needed = 4 * 4 * sum(parameter.numel() for parameter in model.parameters())
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise TrainingError(f"{folder}: No space left on device for the weights and training state "
                            f"({needed / 2**20:.1f} MiB needed, {free / 2**20:.1f} MiB free)")


def save_weights(model: SwinV2DPT, path, option_name: OptionName = same_name) -> None:
    """The model in our safetensors format (float32), loadable by load_model and the CLI; a
    TrainingError, and nothing written, when the training diverged (weights that are NaN or inf)."""
    state = {key: tensor.detach().cpu().contiguous() for key, tensor in model.state_dict().items()}
    floats = [tensor for tensor in state.values() if tensor.is_floating_point()]
    broken = sum(int((~torch.isfinite(tensor)).sum()) for tensor in floats)
    if broken:
        total = sum(tensor.numel() for tensor in floats)
        raise TrainingError(f"{path}: not written: the training diverged ({broken:,} of {total:,} weights are NaN or "
                            f"infinite); try a lower {option_name('lr')}")
    save_native(Checkpoint(config=model.config, state_dict=state, format="trained"), path)


def build(options: TrainOptions, option_name: OptionName = same_name) -> SwinV2DPT:
    if options.init:
        return load_model(options.init, accelerate=False)  # the architecture of --init is kept; the plain model trains
    if options.config not in SMALL_CONFIGS:
        raise TrainingError(f"{option_name('config')} {options.config}: choose one of {', '.join(SMALL_CONFIGS)}, "
                            f"or {option_name('init')} CHECKPOINT")
    torch.manual_seed(options.seed)
    return init_from_scratch(SwinV2DPT(SMALL_CONFIGS[options.config]), options.seed)


def load_data(options: TrainOptions, log, option_name: OptionName = same_name) -> tuple[list[Sample], list[Sample]]:
    """(training samples, validation samples); TrainingError (one line) for unusable data."""
    try:
        return read_samples(options, log, option_name)
    except DataError as error:
        raise TrainingError(str(error)) from None


def read_samples(options: TrainOptions, log, option_name: OptionName = same_name) -> tuple[list[Sample], list[Sample]]:
    if options.data == "synthetic":
        train = render_split("train", options.scenes, options.scene_size, quiet=options.quiet)
    else:
        train, problems = load_folder(options.data, options.gt_scale)
        for line in problems:
            log(f"warning: {line}")
    if options.val_data:
        val, problems = load_folder(options.val_data, options.gt_scale, limit=options.val_count)
        for line in problems:
            log(f"warning: {line}")
    elif options.data == "synthetic":
        val = render_split("val", options.val_count, options.scene_size, quiet=options.quiet)
    else:  # hold out every 10th pair of the folder
        val, train = train[::10][: options.val_count], [s for i, s in enumerate(train) if i % 10]
        if not train:
            raise TrainingError(f"{options.data}: too few pairs to hold some out for validation; pass {option_name('val_data')}")
    return train, val


class StepBatches(torch.utils.data.Dataset):
    """Item i is the run's batch number `first + i` (training_batch: a function of seed and index alone).

    Served by a DataLoader, whose worker processes make the batches ahead in order: the numpy
    augmentation then overlaps the model's work (an H100 run spent about 170 ms a step waiting on
    it), and the batches, hence the weights, are those of a run without workers.
    """

    def __init__(self, samples: list[Sample], options: TrainOptions, first: int, last: int):
        self.samples, self.options, self.first, self.last = samples, options, first, last

    def __len__(self) -> int:
        return self.last - self.first

    def __getitem__(self, index: int):
        options = self.options
        return training_batch(self.samples, options.seed, self.first + index, options.batch_size, options.size)


BATCHES_AHEAD = 2  # per worker (the DataLoader's prefetch_factor)
WORKER_TIMEOUT_S = 300  # no batch from the workers for this long: stop with a one-line error


def shared_memory_free() -> int | None:
    """Bytes free in /dev/shm, through which workers hand over their batches (None: unknown)."""
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def batch_workers(options: TrainOptions, device: torch.device, log) -> int:
    """--workers, else none on a CPU (the model needs every core) and up to 8 beside a GPU.

    Fewer where their batches in flight would fill half of /dev/shm (a worker whose batch finds it
    full loses that batch, and the run would wait for it; containers often have 64 MiB), none where
    processes cannot be forked (spawned workers would each get a copy of every sample).
    """
    wanted = options.workers
    if wanted is None:
        wanted = 0 if device.type == "cpu" else min(8, max(1, (os.cpu_count() or 2) - 1))
    if wanted == 0:
        return 0
    if "fork" not in multiprocessing.get_all_start_methods():
        log("warning: batches are made in the main process (this system cannot fork worker processes)")
        return 0
    free = shared_memory_free()
    per_worker = (BATCHES_AHEAD + 1) * options.batch_size * options.size ** 2 * (3 * 4 + 4 + 1)  # images, disparity, valid
    fitting = wanted if free is None else min(wanted, free // 2 // per_worker)
    if fitting < wanted:
        log(f"warning: {fitting} batch workers instead of {wanted}: /dev/shm has {free / 2**20:.0f} MiB free "
            f"and each worker holds up to {per_worker / 2**20:.0f} MiB of batches")
    return fitting


def batch_loader(samples: list[Sample], options: TrainOptions, first_step: int, workers: int, pin: bool):
    """Batches first_step * accumulate, ... in order, as (images, disparity, valid) CPU tensors."""
    batches = StepBatches(samples, options, first_step * options.accumulate, options.steps * options.accumulate)
    return torch.utils.data.DataLoader(
        batches, batch_size=None, shuffle=False, num_workers=workers, pin_memory=pin,
        prefetch_factor=BATCHES_AHEAD if workers else None, timeout=WORKER_TIMEOUT_S if workers else 0,
        multiprocessing_context="fork" if workers else None,  # the samples are shared, not copied
    )


def next_batch(batches, workers: int, option_name: OptionName = same_name):
    try:
        return next(batches)
    except RuntimeError as error:  # the loader's own failures (a timeout, a killed worker); a batch's error keeps its type
        if not workers:
            raise
        raise TrainingError(f"the batch worker processes failed ({str(error).splitlines()[0]}); try {option_name('workers')} 0") from None


def stop_workers(batches) -> None:
    """End the worker processes now: after an exception its traceback keeps the iterator alive."""
    shutdown = getattr(batches, "_shutdown_workers", None)  # the DataLoader's own clean-up
    if shutdown is not None:
        shutdown()


def check_outputs(options: TrainOptions, resume: bool, overwrite: bool, option_name: OptionName = same_name) -> None:
    """OUT and OUT.state.pt under the output rule (io/outputs.py): never the --init checkpoint, an
    existing file only with `overwrite` and only if this tool wrote it. A resumed run goes on
    writing its own files (OUT must still be ours; the state it reads is the run it continues)."""
    out = Path(options.out)
    rule = OutputRule(overwrite or resume, inputs={options.init: f"the {option_name('init')} checkpoint"} if options.init else {})
    rule.check(out, option_name("out"))
    if not resume:
        rule.check(state_path(out), option_name("out"))


def train(options: TrainOptions, resume: bool = False, log=None, overwrite: bool = False, *,
          option_name: OptionName = same_name,
          samples: tuple[list[Sample], list[Sample]] | None = None, model: SwinV2DPT | None = None,
          schedule=learning_rate, loss=training_loss) -> dict:
    """Run (or resume) training; returns {"steps": reached, "steps_run": by this call, "seconds": ..,
    "images_per_second": .., "val": [{step, absrel, delta1}], "losses": [one per step run]}.

    OutputError (one line) before any work if OUT or OUT.state.pt may not be written (check_outputs).
    KeyboardInterrupt: the state is saved first, then the interrupt is raised again.
    For experiments that compare recipes (benchmarks/sweep_training.py): `samples` (training,
    validation) instead of reading options.data, `model` to train instead of building it from the
    options (not with `resume`), `schedule(step, options)` the learning rate, `loss(prediction,
    disparity, valid)` on the unclamped output.
    Messages name the settings as `option_name` says (the command line: its flags).
    """
    log = log or (lambda line: print(line, file=sys.stderr))
    check_outputs(options, resume, overwrite, option_name)
    if samples is None and options.data == "synthetic":  # before any folder is made or model built
        try:
            check_scene_textures()
        except DataError as error:
            raise TrainingError(str(error)) from None
    device = torch.device(options.device)
    out = Path(options.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    saved = saved_state_for(options, option_name) if resume else None
    if saved is not None and saved["step"] == options.steps:  # a finished run: nothing to do, nothing rewritten
        return {"steps": options.steps, "steps_run": 0, "seconds": 0.0, "images_per_second": float("nan"),
                "val": [], "losses": []}
    if saved is not None:
        model = saved_model(saved, state_path(out))
    elif model is None:
        model = build(options, option_name)
    check_free_space(out.parent, model)
    model.to(device).train()
    run = TrainingRun(model, adamw(model, options, saved, state_path(out)), *mixed_precision(options, device, saved, log, option_name),
                      device=device, step=saved["step"] if saved is not None else 0)
    train_samples, val_samples = samples if samples is not None else load_data(options, log, option_name)
    workers = batch_workers(options, device, log)
    log(f"training {model.config.release_name} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters) "
        f"on {len(train_samples)} samples, validating on {len(val_samples)}, steps {run.step}..{options.steps}, "
        f"{str(run.amp_dtype).removeprefix('torch.')} passes on {device}, batches made by {workers or 'no'} worker processes")
    return run_steps(run, options, train_samples, val_samples, workers, schedule, loss, log, option_name)


@dataclass
class TrainingRun:
    """What a run changes step by step, and saves (save_state) to go on from."""

    model: SwinV2DPT
    optimizer: torch.optim.Optimizer
    amp_dtype: torch.dtype  # the passes' autocast dtype (float32: none)
    scaler: torch.amp.GradScaler  # the float16 loss scale (disabled otherwise)
    device: torch.device
    step: int  # steps done

    def save(self, options: TrainOptions) -> None:
        save_state(state_path(options.out), self.model, self.optimizer, self.scaler, self.step, options)


def adamw(model: SwinV2DPT, options: TrainOptions, saved: dict | None, path: Path) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (not on norms, biases, logit scales); a resumed
    run's moments from `saved`."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": options.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=options.lr, betas=(0.9, 0.999),
    )
    if saved is not None:
        try:
            optimizer.load_state_dict(saved["optimizer"])
        except Exception as error:
            raise TrainingError(f"{path}: not a training state ({first_line(error)})") from None
    return optimizer


def mixed_precision(options: TrainOptions, device: torch.device, saved: dict | None, log,
                    option_name: OptionName = same_name) -> tuple[torch.dtype, torch.amp.GradScaler]:
    """(autocast dtype of the passes, the loss scaler: on for float16 only, at a resumed run's scale)."""
    amp_dtype = training_autocast_dtype(options.precision, device)
    if warning := dtype_warning(amp_dtype, device, option=option_name("precision")):
        log(warning)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if saved is not None and saved.get("loss_scaler") and scaler.is_enabled():
        scaler.load_state_dict(saved["loss_scaler"])  # a float16 run goes on at the scale it had reached
    return amp_dtype, scaler


def run_steps(run: TrainingRun, options: TrainOptions, train_samples, val_samples, workers: int, schedule, loss, log,
              option_name: OptionName = same_name) -> dict:
    """Steps run.step..options.steps: validating (and saving) every val_every steps; the state
    saved on Ctrl-C and at the end. The result of `train`."""
    val_max_depth = SYNTHETIC_MAX_DEPTH if options.data == "synthetic" and not options.val_data else None
    start_step, images, losses, val = run.step, 0, [], []
    started = time.perf_counter()
    batches = iter(batch_loader(train_samples, options, start_step, workers, pin=run.device.type == "cuda"))
    progress = tqdm(total=options.steps, initial=start_step, desc="training", unit="step", disable=options.quiet, file=sys.stderr)
    try:
        while run.step < options.steps:
            total_loss, step_images = optimizer_step(run, options, batches, workers, schedule(run.step, options), loss,
                                                     option_name)
            images += step_images
            run.step += 1
            losses.append(total_loss)
            if run.step % 10 == 0 or run.step == options.steps:
                rate = images / (time.perf_counter() - started)
                progress.set_postfix(loss=f"{total_loss.item():.4f}", img_s=f"{rate:.1f}", lr=f"{schedule(run.step - 1, options):.1e}")
            progress.update(1)
            if run.step % options.val_every == 0 or run.step == options.steps:
                val.append(validate(run, val_samples, val_max_depth, total_loss, log))
                save_weights(run.model, options.out, option_name)
                if run.step < options.steps:
                    run.save(options)
    except KeyboardInterrupt:
        progress.close()
        run.save(options)
        log(f"interrupted at step {run.step}: state saved to {state_path(options.out)}; continue with {option_name('resume')}")
        raise
    finally:
        stop_workers(batches)
    progress.close()
    save_weights(run.model, options.out, option_name)
    run.save(options)
    seconds = time.perf_counter() - started
    return {
        "steps": run.step, "steps_run": run.step - start_step, "seconds": seconds,
        "images_per_second": images / seconds if seconds else float("nan"),
        "val": val, "losses": torch.stack(losses).tolist() if losses else [],
    }


def optimizer_step(run: TrainingRun, options: TrainOptions, batches, workers: int, lr: float, loss,
                   option_name: OptionName = same_name) -> tuple[torch.Tensor, int]:
    """One step: `accumulate` micro-batches forward and backward, clipped gradients, AdamW at `lr`;
    (the step's loss as a tensor on the device, read back only for the display; images seen)."""
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.optimizer.zero_grad(set_to_none=True)
    total_loss = torch.zeros((), device=run.device)  # no sync per step
    images = 0
    for _ in range(options.accumulate):
        image_bchw, disparity, valid = (tensor.to(run.device, non_blocking=True) for tensor in next_batch(batches, workers, option_name))
        with torch.autocast(run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype != torch.float32):
            prediction = run.model(image_bchw, clamp_negative=False)
        micro_loss = loss(prediction.float(), disparity, valid) / options.accumulate
        run.scaler.scale(micro_loss).backward()
        total_loss += micro_loss.detach()
        images += len(image_bchw)
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    return total_loss, images


def validate(run: TrainingRun, val_samples, max_depth, total_loss: torch.Tensor, log) -> dict:
    """The MiDaS protocol's mean scores on the validation samples at this step, logged."""
    run.model.eval()
    scores = evaluate_samples(run.model, val_samples, max_depth=max_depth)
    run.model.train()
    log(f"step {run.step}: loss {total_loss.item():.4f}, val AbsRel {scores['mean']['absrel']:.4f}, "
        f"delta1 {scores['mean']['delta1']:.4f}")
    return {"step": run.step, **scores["mean"]}


def training_summary(out, result: dict, option_name: OptionName = same_name) -> str:
    """The line the `train` command ends with."""
    if not result["steps_run"]:
        return f"{out}: the saved run has done all its {result['steps']} steps; nothing to do (raise {option_name('steps')} to go on)"
    last = result["val"][-1]
    return (f"{out}: {result['steps']} steps in {result['seconds'] / 60:.1f} min "
            f"({result['images_per_second']:.1f} images/s); val AbsRel {last['absrel']:.4f}, delta1 {last['delta1']:.4f}")


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["TrainOptions", "TrainingError", "init_from_scratch", "save_weights", "state_path", "train",
           "training_summary"]
