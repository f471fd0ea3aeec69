"""The `export` job: a checkpoint's network as an ONNX file, written under the output rule."""

from dataclasses import dataclass
from pathlib import Path

from ..build import load_model
from ..formats.checkpoint import check_checkpoint_path
from ..io.outputs import OutputRule
from ..memory import SizeOptionNames
from .models import find_weights


@dataclass
class ExportOptions:
    size: str | None = None  # "HxW"; None: the native square
    batch: str = "1"  # N or "dynamic"
    opset: int = 18
    dtype: str = "float32"
    overwrite: bool = False
    memory_check: bool = True  # refuse a size whose check run would not fit in memory
    memory_names: SizeOptionNames = SizeOptionNames(size="size", batch="batch", skip_check="memory_check=False")


def run_export(weights, output, options: ExportOptions):
    """Check OUT (never the checkpoint, an existing file only with overwrite and if ours) and that
    ONNX is installed before minutes of loading and tracing; export; publish OUT under the rule
    checked again (a file someone put there meanwhile is kept) and record it as ours."""
    from ..export.onnx import export_onnx, parse_export_size, require_onnx  # the [onnx] extra

    weights, output = find_weights(weights), Path(output)
    check_checkpoint_path(weights)  # a wrong checkpoint named as such, not as the output it would contain
    rule = OutputRule(options.overwrite, inputs={weights: "the checkpoint"})
    rule.check(output, "OUT")
    require_onnx()
    size_hw = parse_export_size(options.size) if options.size else None
    return export_onnx(load_model(weights), output, size_hw=size_hw, batch=options.batch, opset=options.opset,
                       dtype=options.dtype, overwrite=True, memory_check=options.memory_check,  # the rule above has decided
                       memory_names=options.memory_names,
                       publish_with=lambda temp, path: rule.publish_output(temp, path, "OUT"))  # and decides again
