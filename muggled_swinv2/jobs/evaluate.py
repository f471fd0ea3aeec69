"""The `eval` job: load (image, depth) samples, score a model with the MiDaS protocol, write the JSON.

    {"mean": {absrel, delta1}, "baseline": {absrel, delta1}, "scored": N, "images": [{name, absrel,
     delta1, valid}], "weights": path, "settings": {data, split, count, square, size, max_depth}}

A score that does not exist (an image with no pixel to score) is null in the JSON, never NaN
(which is not JSON).
"""

import json
import math
from dataclasses import dataclass

from ..datasets import DataError, check_split_count, load_folder, render_processes, render_split
from ..evaluation.protocol import evaluate_samples
from ..io.outputs import OutputRule
from ..memory import scene_refusal
from ..synthetic.scenes import SYNTHETIC_MAX_DEPTH


@dataclass
class EvalOptions:
    data: str = "synthetic"  # "synthetic" or a folder with images/ and depth/ (or disparity/)
    split: str = "test"
    count: int | None = 200
    scene_size: int = 256
    gt_scale: float = 1.0
    square: bool = False
    size: int | None = None
    max_depth: float | None = None  # None: 80 m for synthetic scenes, else each image's farthest depth
    batch_size: int = 4
    json: str | None = None
    overwrite: bool = False  # replace a --json file this tool wrote
    quiet: bool = False

    @property
    def effective_max_depth(self) -> float | None:
        if self.max_depth is None and self.data == "synthetic":
            return SYNTHETIC_MAX_DEPTH
        return self.max_depth


def json_rule(options: EvalOptions, weights) -> OutputRule:
    """The output rule (io/outputs.py) for --json: never the weights, only a file this tool wrote."""
    return OutputRule(options.overwrite, inputs={weights: "the --weights checkpoint"})


def check_outputs(options: EvalOptions, weights) -> None:
    """Before any work: OutputError (one line) if --json may not be written."""
    if options.json:
        json_rule(options, weights).check(options.json, "--json")


def load_samples(options: EvalOptions):
    """(samples, one line per pair skipped); DataError (one line) when there is nothing to score, or
    when the synthetic scenes asked for would not fit in memory (memory.py; checked before rendering)."""
    if options.data == "synthetic":
        check_split_count(options.split, options.count)
        refusal = scene_refusal(options.scene_size, options.count, render_processes(options.count))
        if refusal:
            raise DataError(f"--scene-size {options.scene_size}: {refusal}")
        return render_split(options.split, options.count, options.scene_size, quiet=options.quiet), []
    return load_folder(options.data, options.gt_scale, limit=options.count)


def json_safe(value):
    """NaN and infinities (in nested dicts and lists) -> None, so that the JSON is JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def run_evaluation(model, weights, samples, options: EvalOptions) -> dict:
    """Scores (see the module docstring), also written to options.json (atomically) when given.

    DataError (one line) when no image could be scored: nothing is written then.
    """
    result = evaluate_samples(model, samples, square=options.square, size=options.size,
                              max_depth=options.effective_max_depth, batch_size=options.batch_size)
    if not result["scored"]:
        raise DataError(f"none of the {len(samples)} images could be scored: the model's predictions are not "
                        "finite on any pixel with ground truth")
    result["weights"] = str(weights)
    result["settings"] = {
        "data": options.data, "split": options.split if options.data == "synthetic" else None,
        "count": len(samples), "square": options.square, "size": options.size,
        "max_depth": options.effective_max_depth,
    }
    if options.json:
        rule = json_rule(options, weights)
        rule.check(options.json, "--json")
        text = json.dumps(json_safe(result), indent=1, allow_nan=False)
        rule.write_output(options.json, lambda file: file.write(text.encode()), "--json")
    return result


def summary_line(result: dict) -> str:
    """The line the `eval` command prints: the images scored, the model's and the baseline's means."""
    mean, baseline, total = result["mean"], result["baseline"], len(result["images"])
    count = f"{result['scored']} images" if result["scored"] == total else f"{result['scored']} of {total} images scored"
    return (f"{count}: AbsRel {mean['absrel']:.4f}, delta1 {mean['delta1']:.4f} "
            f"(row-gradient baseline: AbsRel {baseline['absrel']:.4f}, delta1 {baseline['delta1']:.4f})")
