"""The `eval` job: load (image, depth) samples, score a model with the MiDaS protocol, write the JSON.

    {"mean": {absrel, delta1}, "baseline": {absrel, delta1}, "images": [{name, absrel, delta1, valid}],
     "weights": path, "settings": {data, split, count, square, size, max_depth}}
"""

import json
from dataclasses import dataclass

from ..evaluation.protocol import evaluate_samples
from ..io.atomic import write_atomically
from ..io.outputs import OutputRule
from ..training.datasets import load_folder, render_split
from ..training.scenes import SYNTHETIC_MAX_DEPTH


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
    """(samples, one line per pair skipped); DataError (one line) when there is nothing to score."""
    if options.data == "synthetic":
        return render_split(options.split, options.count, options.scene_size, quiet=options.quiet), []
    return load_folder(options.data, options.gt_scale, limit=options.count)


def run_evaluation(model, weights, samples, options: EvalOptions) -> dict:
    """Scores (see the module docstring), also written to options.json (atomically) when given."""
    result = evaluate_samples(model, samples, square=options.square, size=options.size,
                              max_depth=options.effective_max_depth, batch_size=options.batch_size)
    result["weights"] = str(weights)
    result["settings"] = {
        "data": options.data, "split": options.split if options.data == "synthetic" else None,
        "count": len(samples), "square": options.square, "size": options.size,
        "max_depth": options.effective_max_depth,
    }
    if options.json:
        rule = json_rule(options, weights)
        rule.check(options.json, "--json")
        text = json.dumps(result, indent=1)
        write_atomically(options.json, lambda file: file.write(text.encode()))
        rule.record(options.json)
    return result
