"""Every example command in README.md and docs/*.md runs as written.

The shell lines of the fenced ```bash blocks run in a temporary folder that holds what the
examples name (photo.jpg, photos/, clip.mp4, weights/ with small random-weight checkpoints under
the released names, benchmarks/ and scripts/ of this checkout), offline, with the embedded demo
model wherever no weights are named. Lines that need the network, a GPU, a cluster, a server or
minutes are listed in NOT_RUN with the reason; their options are still checked against the
command's --help. Every `muggled-swinv2 COMMAND` named anywhere in the text must exist.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import torch

import cv2
from midas_layout import SMALL_CONFIG, make_midas_state_dict
from pictures import photo, write_video

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# (pattern matched at the start of a command line, why it is not run here). Each must match a line.
NOT_RUN = [
    (r"bash scripts/demo\.sh", "sets up .venv with pip; tests/test_promises.py runs it on a prepared venv"),
    (r"bash scripts/test\.sh", "is this test suite"),
    (r"bash scripts/train_demo\.sh", "trains the demo model: 45 minutes"),
    (r"pip install", "installs packages from the network"),
    (r"muggled-swinv2 download", "downloads a release (164-840 MiB)"),
    (r"muggled-swinv2 serve", "a server that runs until stopped; tests/test_web.py runs it"),
    (r"muggled-swinv2 bench", "measures for minutes; tests/test_bench.py runs it at small sizes"),
    (r"muggled-swinv2 convert Intel-dpt-swinv2-base-384/", "needs a Hugging Face model download"),
    (r"muggled-swinv2 convert weights/tiny\.safetensors exported-tiny/ --to hf",
     "writes a Hugging Face folder; tests/test_convert.py and test_hf_pipeline.py run it"),
    (r"muggled-swinv2 export weights/dpt_swin2_base_384\.pt", "a second export; the tiny one above runs"),
    (r"muggled-swinv2 image photos/ --out depth/ --ray", "starts a Ray instance; tests/test_ray.py runs it"),
    (r"muggled-swinv2 image /shared/", "needs a Ray cluster and a shared filesystem"),
    (r"muggled-swinv2 train --config micro", "trains for hours on a CPU"),
    (r"muggled-swinv2 train --init", "needs your own RGB-D data and the MiDaS weights"),
    (r"muggled-swinv2 eval --weights tuned", "needs the model trained by the line before"),
    (r"muggled-swinv2 eval --data synthetic --count 200", "renders and scores 200 scenes: minutes"),
    (r"python benchmarks/", "a measurement: minutes of CPU and GBs of memory"),
    (r"python -m pytest", "runs part of this suite (tiny and large exports: about 95 s and 5 GB)"),
]
RUN_ANYWAY = [r"python benchmarks/make_real_eval\.py"]  # seconds: runs although under benchmarks/


def command_lines(page: Path) -> list[str]:
    """The shell lines of the page's ```bash blocks, continuation lines joined, comments kept."""
    lines = []
    for block in FENCE.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                lines.append(line.strip())
    return lines


def reason_not_run(line: str) -> str | None:
    if any(re.match(pattern, line) for pattern in RUN_ANYWAY):
        return None
    return next((why for pattern, why in NOT_RUN if re.match(pattern, line)), None)


def all_lines() -> list[tuple[Path, str]]:
    return [(page, line) for page in PAGES for line in command_lines(page)]


def test_every_page_is_read_and_has_commands():
    names = {page.name for page in PAGES}
    assert {"README.md", "performance.md", "export-and-3d.md", "web.md", "ray.md",
            "training-and-evaluation.md", "architecture.md", "video.md"} <= names
    assert len(command_lines(REPO / "README.md")) >= 5


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_relative_links_lead_to_files():
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path = (page.parent / target).resolve()
            assert path.exists(), f"{page.name}: link to {target}: no such file"
            if path.suffix in (".png", ".jpg"):
                assert path.stat().st_size < 300 * 1024, f"{page.name}: {target} is over 300 KB"


def test_each_reason_not_to_run_matches_a_command():
    lines = [line for _, line in all_lines()]
    for pattern, why in NOT_RUN:
        assert any(re.match(pattern, line) for line in lines), f"NOT_RUN entry for nothing: {pattern} ({why})"


# Prints {program: [exit code, stdout, stderr]} of `python PROGRAM --help` for each program in argv[1]
# (a JSON list of python's arguments: ["-m", "muggled_swinv2", "image"] or ["benchmarks/x.py"]), each
# run as `python` would run it (as __main__, its arguments in sys.argv): one interpreter, and one
# import of PyTorch, for all of them instead of one each (2-4 s a program).
HELP_CHILD = """
import contextlib, io, json, runpy, sys, traceback
texts = {}
for program in json.loads(sys.argv[1]):
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if program[0] == "-m":
                sys.argv = [program[1], *program[2:], "--help"]
                runpy.run_module(program[1], run_name="__main__", alter_sys=True)
            else:
                sys.argv = [*program, "--help"]
                runpy.run_path(program[0], run_name="__main__")
        except SystemExit as end:
            code = end.code if isinstance(end.code, int) else (end.code is not None)
        except BaseException:
            code = 1
            traceback.print_exc()
    texts[" ".join(program)] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(texts))
"""


def help_programs() -> list[tuple[str, ...]]:
    """The programs whose --help the tests read: the command line's, and those of the lines not run
    that name options."""
    programs = {("-m", "muggled_swinv2")}
    programs |= {program for _, line in all_lines() if reason_not_run(line) is not None
                 and (program := program_of(line)) and options_named(line)}
    return sorted(programs)


@cache
def help_texts() -> dict[str, list]:
    result = subprocess.run([sys.executable, "-c", HELP_CHILD, json.dumps(help_programs())], capture_output=True,
                            text=True, timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def help_text(*command: str) -> str:
    code, out, err = help_texts()[" ".join(command)]
    assert code == 0, f"{' '.join(command)} --help: {err}"
    return out


def cli_commands() -> set[str]:
    text = help_text("-m", "muggled_swinv2")
    listed = re.search(r"\{([\w,-]+)\}", text)
    return set(listed.group(1).split(",")) if listed else set(re.findall(r"^    (\w+)\s", text, re.MULTILINE))


def test_every_command_named_in_the_text_exists():
    commands = cli_commands()
    assert {"image", "video", "info", "convert", "export", "train", "eval", "bench", "serve", "download"} <= commands
    for page in PAGES:
        for name in re.findall(r"muggled-swinv2 ([a-z]\w*)", page.read_text()):
            assert name in commands, f"{page.name}: muggled-swinv2 {name} is not a command"


def program_of(line: str) -> tuple[str, ...] | None:
    """The program a command line runs, as arguments to python (for its --help), or None."""
    first = line.split("&&")[-1].strip() if line.startswith("pip ") else line
    words = first.split()
    if len(words) >= 2 and words[0] == "muggled-swinv2":
        return ("-m", "muggled_swinv2", words[1])
    if len(words) >= 2 and words[0] == "python" and words[1].endswith(".py"):
        return (words[1],)
    return None


def options_named(line: str) -> list[str]:
    """The options a command line gives its program (not those of a command before `&&`)."""
    return re.findall(r"(?<![\w-])(--[a-z][\w-]*)", line.split("#")[0].split("&&")[-1])


def test_options_of_the_commands_not_run_exist():
    """A script named without options must exist (its --help is not asked for: a script without an
    argument parser, benchmarks/stereo_room.py, would run its whole measurement)."""
    for page, line in all_lines():
        if reason_not_run(line) is None or (program := program_of(line)) is None:
            continue
        if not options_named(line):
            assert program[0] == "-m" or (REPO / program[0]).is_file(), f"{page.name}: `{line}`: no such script"
            continue
        options = help_options(help_text(*program))
        for option in options_named(line):
            assert option in options, f"{page.name}: `{line}`: {option} is not an option of {' '.join(program)}"


def help_options(text: str) -> set[str]:
    """The options a --help text lists, as whole words (`--size` is not found in `--sizes`)."""
    return set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)(?![\w-])", text))


def test_options_are_matched_as_whole_words():
    assert "--size" not in help_options("  --sizes SIZES  the sizes")
    assert "--size" in help_options("  --size N, --sizes SIZES")


def make_workspace(folder: Path, weights: bool) -> Path:
    """`folder`, holding everything the runnable examples name (`weights/` only if asked: without
    it the commands run the embedded demo model)."""
    folder.mkdir()
    cv2.imwrite(str(folder / "photo.jpg"), cv2.imread(str(REPO / "muggled_swinv2" / "web" / "examples" / "corridor.png")))
    (folder / "photos" / "trip").mkdir(parents=True)
    cv2.imwrite(str(folder / "photos" / "street.jpg"), photo(60, 90, seed=1))
    cv2.imwrite(str(folder / "photos" / "trip" / "beach.png"), photo(48, 64, seed=2))
    write_video(folder / "clip.mp4", frames=4)
    for name in ("benchmarks", "scripts"):
        (folder / name).symlink_to(REPO / name)
    if not weights:
        return folder
    (folder / "weights").mkdir()
    # Small random weights under the released names (the real files are downloads of 164-840 MiB).
    for index, name in enumerate(("dpt_swin2_tiny_256.pt", "dpt_swin2_base_384.pt", "dpt_swin2_large_384.pt")):
        torch.save(make_midas_state_dict(SMALL_CONFIG, seed=20 + index), folder / "weights" / name)
    return folder


# What some pages' examples must have written (paths in the page's folder).
WRITTEN = {
    "README.md": ["depth/photo.png", "depth/street.npy", "depth/street.pfm", "depth/street_16bit.png",
                  "depth/street.tiff", "depth/trip/beach.png", "clip_depth.mp4", "clip_depth.npz"],
    "export-and-3d.md": ["weights/tiny.safetensors", "weights/large-fp16.safetensors", "tiny.onnx",
                         "depth/photo.ply", "depth/photo_mesh.ply"],
    "training-and-evaluation.md": ["nano.safetensors", "outputs/motorcycle"],
}


def runnable() -> list[tuple[str, str]]:
    return [(page.name, line) for page, line in all_lines() if reason_not_run(line) is None]


@pytest.mark.parametrize("page_name", sorted({name for name, _ in runnable()}))
def test_the_examples_run_as_written(tmp_path, page_name):
    lines = [line for name, line in runnable() if name == page_name]
    folder = make_workspace(tmp_path / "work", weights=any("weights/" in line for line in lines))
    bin_folder = tmp_path / "bin"  # `muggled-swinv2` and `python` of this test run, on this checkout
    bin_folder.mkdir()
    for name, program in (("muggled-swinv2", f'"{sys.executable}" -m muggled_swinv2'), ("python", f'"{sys.executable}"')):
        (bin_folder / name).write_text(f'#!/bin/sh\nexec {program} "$@"\n')
        (bin_folder / name).chmod(0o755)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MUGGLED_SWINV2_")}
    environment.update(
        PATH=f"{bin_folder}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO),
        HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"),
        http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",  # offline: a download fails at once
    )
    for line in lines:
        result = subprocess.run(["bash", "-c", line], cwd=folder, env=environment, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{page_name}: `{line}` exited {result.returncode}: {result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr, f"{page_name}: `{line}`: {result.stderr[-2000:]}"
    for path in WRITTEN.get(page_name, []):
        assert (folder / path).exists(), f"{page_name}: the examples did not write {path}"
