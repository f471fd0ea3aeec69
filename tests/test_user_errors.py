"""One way for errors to reach a person (errors.py): every refusal is a UserError, which the command
line prints as one line with its exit code; the layers below the command line name no flag of it
(their callers say how the user knows each setting); and the gaps of issue 26 that this closed:
`bench` exits 2 for usage errors, `export`'s memory line names its own `--batch`."""

import ast
import builtins
import re
from pathlib import Path

import numpy as np
import pytest

import cv2

from muggled_swinv2.cli import main
from muggled_swinv2.errors import UserError

PACKAGE = Path(__file__).resolve().parents[1] / "muggled_swinv2"
DEMO_WEIGHTS = PACKAGE / "demo" / "demo_micro_256.safetensors"

# Exceptions of the package that never reach a person, and where they are turned into a refusal.
INTERNAL = {
    "StageError": "video/pipeline.py: carries a stage's own error to jobs/video.py, which reports it as a VideoError",
    "_Stop": "video/pipeline.py: ends the pipeline's threads",
    "ServerStopping": "web/service.py: ends a running video job, answered on the page as an UploadError",
}


def exception_classes() -> dict[str, list[str]]:
    """{class name: names of its bases} of every exception class the package defines (read from the source)."""
    classes = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                bases = [base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "") for base in node.bases]
                classes.setdefault(node.name, []).extend(bases)  # a name defined twice: the bases of both

    def is_exception(name: str, seen=()) -> bool:
        builtin = getattr(builtins, name, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            return True
        return name in classes and name not in seen and any(is_exception(base, (*seen, name)) for base in classes[name])

    return {name: bases for name, bases in classes.items() if is_exception(name)}


def test_every_exception_of_the_package_is_a_user_error_or_named_internal():
    classes = exception_classes()

    def derives_from_user_error(name: str) -> bool:
        return name == "UserError" or any(derives_from_user_error(base) for base in classes.get(name, []))

    outside = sorted(name for name in classes if not derives_from_user_error(name) and name not in INTERNAL)
    assert outside == [], f"derive these from errors.UserError (or name them in INTERNAL, with why): {outside}"
    assert set(INTERNAL) <= set(classes), "INTERNAL names a class that no longer exists"
    assert {"CheckpointError", "DeviceError", "OutputError", "VideoError", "UsageError", "TrainingError", "DataError",
            "ServeError", "UploadError", "BenchError"} <= {name for name in classes if derives_from_user_error(name)}


def test_the_package_exports_the_base_and_its_two_named_errors():
    import muggled_swinv2

    assert issubclass(muggled_swinv2.CheckpointError, muggled_swinv2.UserError)
    assert issubclass(muggled_swinv2.DeviceError, muggled_swinv2.UserError)
    assert muggled_swinv2.UserError is UserError


def test_main_prints_any_user_error_as_one_line_with_its_exit_code(capsys, monkeypatch):
    """main catches the base once: a refusal it never heard of still becomes one line, and its exit code holds."""
    from muggled_swinv2.cli import info

    class Refused(UserError):
        exit_code = 3

    def refuse(args):
        raise Refused("thing.pt: refused for a reason")

    monkeypatch.setattr(info, "run", refuse)
    assert main(["info", "thing.pt"]) == 3
    assert capsys.readouterr().err == "error: thing.pt: refused for a reason\n"


FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def string_constants(path: Path) -> list[str]:
    """The strings written in a module's code (f-string parts too), without its docstrings and comments."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


@pytest.mark.parametrize("module", ["memory.py", "training/trainer.py"])
def test_low_layers_name_no_command_line_flag(module):
    flags = [text for text in string_constants(PACKAGE / module) if FLAG.search(text)]
    assert flags == [], f"{module} names command-line flags; let the caller supply the names: {flags}"


def test_memory_refusal_speaks_in_the_callers_terms():
    from muggled_swinv2.memory import SizeOptionNames, memory_refusal
    from muggled_swinv2.model.config import RELEASES

    tiny = RELEASES["tiny"].config
    command_line = SizeOptionNames(size="--size", batch="--batch", skip_check="--no-memory-check")
    line = memory_refusal(tiny, (4096, 4096), (1, 1), command_line, batch=3, available=2**30)
    assert re.fullmatch(r"needs about \d+\.\d GiB at 4096x4096 with --batch 3, 1\.0 GiB available; "
                        r"the largest --size that fits is \d+ \(--no-memory-check to try anyway\)", line), line
    page = SizeOptionNames(size="long side", batch="batch size")
    line = memory_refusal(tiny, (4096, 4096), (1, 1), page, available=2**30)
    assert re.fullmatch(r"needs about \d+\.\d GiB at 4096x4096, 1\.0 GiB available; the largest long side that fits is \d+",
                        line), line
    assert memory_refusal(tiny, (256, 256), (1, 1), page, available=2**40) is None


def test_the_web_page_gives_the_memory_refusal_in_its_own_terms(tmp_path, monkeypatch):
    """The page has no --size and no --no-memory-check: its size field is the long side."""
    import muggled_swinv2.memory as memory
    from muggled_swinv2.build import load_model
    from muggled_swinv2.web.service import KEEP_ASPECT, DepthService, Limits, ModelInfo, UploadError

    picture = tmp_path / "room.png"
    cv2.imwrite(str(picture), np.full((48, 64, 3), 128, np.uint8))
    service = DepthService(load_model(DEMO_WEIGHTS), ModelInfo("micro", DEMO_WEIGHTS, "cpu", "float32"), Limits(),
                           tmp_path / "work")
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 64 * 2**20)
    with pytest.raises(UploadError) as refused:
        service.image(str(picture), "inferno", KEEP_ASPECT, 4096)
    message = str(refused.value)
    assert message.startswith("room.png: needs about ") and "the largest long side that fits is " in message
    assert "--" not in message


def test_training_refusals_name_the_settings_as_the_caller_does(tmp_path, capsys):
    from muggled_swinv2.training.trainer import TrainingError, TrainOptions, train

    with pytest.raises(TrainingError) as refused:  # a Python caller: its own names
        train(TrainOptions(out=str(tmp_path / "m.safetensors"), config="huge"), log=lambda line: None)
    assert str(refused.value) == "config huge: choose one of micro, nano, or init CHECKPOINT"
    with pytest.raises(TrainingError) as refused:
        train(TrainOptions(out=str(tmp_path / "m.safetensors"), config="nano"), resume=True, log=lambda line: None)
    assert str(refused.value) == f"{tmp_path / 'm.safetensors.state.pt'}: no training state to resume (run without resume first)"

    # The command line: its flags, exit code 2.
    assert main(["train", "--out", str(tmp_path / "m.safetensors"), "--config", "huge"]) == 2
    assert capsys.readouterr().err == "error: --config huge: choose one of micro, nano, or --init CHECKPOINT\n"
    assert main(["train", "--out", str(tmp_path / "m.safetensors"), "--config", "nano", "--resume"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'm.safetensors.state.pt'}: no training state to resume "
                                       "(run without --resume first)\n")


# ----------------------------------------------------------------------------- issue 26's gaps


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "huge"], "error: unknown model 'huge'; choose from tiny,base,large"),
        (["--models", ","], "error: unknown model ','; choose from tiny,base,large"),
        (["--models", "tiny", "--sizes", "100"], "error: --sizes 100: tiny needs positive multiples of 32"),
        (["--models", "tiny", "--sizes", "abc"], "error: --sizes 'abc': expected native, H or HxW"),
        (["--peers", "tvm"], "error: --peers tvm: choose from transformers,onnxruntime"),
    ],
)
def test_bench_usage_errors_exit_2(capsys, args, message):
    """The README: exit 2 is for usage errors. bench's plan errors were SystemExit("error: ..."): exit 1."""
    assert main(["bench", *args]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_export_memory_line_names_export_own_batch_option(capsys, tmp_path, monkeypatch):
    """export has --batch (not --batch-size, which image and video have)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import muggled_swinv2.memory as memory
    from muggled_swinv2.export import onnx as exporter

    traced = []
    monkeypatch.setattr(exporter, "export_into", lambda *args: traced.append(args) or 0.0)
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: 512 * 2**20)
    for batch, said in (("3", "with --batch 3"), ("dynamic", "with --batch 2")):  # dynamic is checked at batch 2
        assert main(["export", str(DEMO_WEIGHTS), str(tmp_path / "m.onnx"), "--size", "4096x4096", "--batch", batch]) == 2
        err = capsys.readouterr().err.splitlines()[-1]  # after the note that the demo model is used
        assert err.startswith("error: --size 4096x4096: the export's check needs about "), err
        assert said in err and "--batch-size" not in err and err.endswith("(--no-memory-check to try anyway)"), err
    assert traced == [] and list(tmp_path.iterdir()) == []
