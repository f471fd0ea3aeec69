"""Layers import downward only: read every module's imports (function-level ones too) and check them.

The package is a stack: a module may import its own subpackage and the layers below it, never one
above (segment-anything's modeling <- build <- predictor <- scripts is the model). The model is the
reference and imports nothing of ours but model/; training and evaluation share the synthetic scenes
(training validates with evaluation's protocol, never the other way); the package finds no file by
its install path but package data; scripts and benchmarks use public names only: those a module
lists in its `__all__` (the package root's are the documented API), and change none of them.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "muggled_swinv2"

# Lowest first. A module imports its own unit and the layers below it, never its own layer's others.
LAYERS = [
    {"model"},
    {"errors", "devices", "synthetic", "demo", "scale_shift"},
    {"geometry"},  # metric fit and camera (pure numpy), on the one scale/shift fit
    {"io"},  # files: pictures, video, sparse depth maps and EXIF (read into geometry's records)
    {"accelerate", "formats", "predict"},
    {"build"},  # a file -> a ready model: formats + predict + accelerate + devices
    {"memory", "datasets", "reference"},
    {"evaluation", "export", "video"},
    {"training"},  # validates with evaluation's protocol; evaluation never imports training
    {"jobs"},
    {"web", "distributed"},
    {"cli"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def top_unit(module: str) -> str:
    """'muggled_swinv2.formats.checkpoint' -> 'formats'; the package root -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or not node.level and target == "muggled_swinv2":
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def package_files():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_unit_has_a_layer():
    units = {top_unit(module_name(path)) for path in package_files()} - {""}
    assert units <= set(RANK), f"add these to LAYERS: {sorted(units - set(RANK))}"


@pytest.mark.parametrize("path", package_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_run_downward(path):
    unit = top_unit(module_name(path))
    if not unit:
        return  # the package root only names the public objects, imported lazily
    wrong = []
    for line, target in imported_modules(path):
        if not target.startswith("muggled_swinv2"):
            continue
        other = top_unit(target)
        if other == unit:
            continue
        if other == "__version__":
            continue  # the version string, defined at the root with nothing else imported
        if other not in RANK or RANK[other] >= RANK[unit]:
            wrong.append(f"line {line}: {target}")
    assert not wrong, f"{path.relative_to(ROOT)} ({unit}) imports upward or sideways: {wrong}"


def test_model_imports_only_model_and_torch():
    for path in (PACKAGE / "model").rglob("*.py"):
        for line, target in imported_modules(path):
            root = target.split(".")[0]
            ok = root in ("torch", "math", "dataclasses", "typing", "__future__", "collections", "functools")
            ok = ok or target.startswith("muggled_swinv2.model")
            assert ok, f"{path.relative_to(ROOT)} line {line} imports {target}"


def test_the_package_finds_no_file_by_its_install_path_but_package_data():
    users = sorted(
        str(path.relative_to(ROOT)) for path in package_files() if "__file__" in path.read_text()
    )
    assert set(users) <= ALLOWED_FILE_USERS, f"only package data may be found by __file__: {users}"


ALLOWED_FILE_USERS = {"muggled_swinv2/demo/__init__.py", "muggled_swinv2/web/app.py"}  # the demo weights, the examples


def module_file(module: str) -> Path | None:
    """The source file of 'muggled_swinv2.x.y' (a module or a package's __init__), None if there is none."""
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def public_names(module: str) -> set[str]:
    """A module's public names: its `__all__` (read from the source, nothing imported); none without one.

    The list may splice in a literal defined above it (`[*_PUBLIC, "__version__"]` at the package root)."""
    tree = ast.parse(module_file(module).read_text())
    literals = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            literals[node.targets[0].id] = node.value
    names = set()
    for element in getattr(literals.get("__all__"), "elts", []):
        if isinstance(element, ast.Starred):
            spliced = literals[element.value.id]
            names |= {key.value for key in (spliced.keys if isinstance(spliced, ast.Dict) else spliced.elts)}
        else:
            names.add(element.value)
    return names


def private_uses(source: str) -> list[str]:
    """What a script does with the package beyond its public names: a name imported that is not in
    its module's __all__, a plain `import muggled_swinv2...`, and any assignment to an attribute or
    item of something imported from it (monkeypatching a module's internals)."""
    tree = ast.parse(source)
    found, imported = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "muggled_swinv2" and not node.level:
            public = public_names(node.module)
            for alias in node.names:
                imported.add(alias.asname or alias.name)
                if alias.name not in public:
                    found.append(f"line {node.lineno}: {node.module}.{alias.name} (not in its __all__)")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {alias.name} (import the public names)"
                      for alias in node.names if alias.name.split(".")[0] == "muggled_swinv2"]
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("setattr", "delattr") and node.args:
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        for target in targets:
            root = target
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if root is not target and isinstance(root, ast.Name) and root.id in imported:
                found.append(f"line {node.lineno}: changes {ast.unparse(target)} (monkeypatching the package)")
    return found


SCRIPTS = sorted((ROOT / "scripts").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_scripts_use_public_names(path):
    private = private_uses(path.read_text())
    assert not private, f"{path.relative_to(ROOT)} uses the package beyond its public names: {private}"


def test_the_public_name_check_can_fail():
    """What the rule above catches (benchmarks/sweep_training.py once did each of these)."""
    assert private_uses("from muggled_swinv2.jobs.video import RunningRange") == [
        "line 1: muggled_swinv2.jobs.video.RunningRange (not in its __all__)"]
    assert private_uses("from muggled_swinv2.training import trainer") == [
        "line 1: muggled_swinv2.training.trainer (not in its __all__)"]
    assert private_uses("import muggled_swinv2.training.trainer") == [
        "line 1: import muggled_swinv2.training.trainer (import the public names)"]
    patched = private_uses("from muggled_swinv2.training.trainer import train, TrainOptions\n"
                           "train.__defaults__ = ()\nTrainOptions.lr = 1\nsetattr(train, 'x', 1)")
    assert [line.split(":")[0] for line in patched] == ["line 2", "line 3", "line 4"]
    assert private_uses("from muggled_swinv2 import load_model, CheckpointError, __version__") == []
