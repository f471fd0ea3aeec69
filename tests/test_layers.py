"""Layers import downward only: read every module's imports (function-level ones too) and check them.

The package is a stack: a module may import its own subpackage and the layers below it, never one
above (segment-anything's modeling <- build <- predictor <- scripts is the model). The model is the
reference and imports nothing of ours but model/; training and evaluation share the synthetic scenes
(training validates with evaluation's protocol, never the other way); the package finds no file by
its install path but package data; scripts and benchmarks use public names only.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "muggled_swinv2"

# Lowest first. A module may import from its own layer's other entries only where ALLOWED_SIDEWAYS says.
LAYERS = [
    {"model"},
    {"errors", "devices", "synthetic", "demo", "scale_shift", "geometry"},
    {"io", "accelerate", "formats", "predict"},
    {"memory", "datasets", "reference"},
    {"evaluation", "export", "video"},
    {"training"},  # validates with evaluation's protocol; evaluation never imports training
    {"jobs"},
    {"web", "distributed"},
    {"cli", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ALLOWED_SIDEWAYS = {
    ("formats", "io"), ("accelerate", "io"), ("predict", "io"), ("formats", "accelerate"), ("formats", "predict"),
    ("__main__", "cli"),
}
FORBIDDEN = {("evaluation", "training")}


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
        allowed = (
            other in RANK
            and (RANK[other] < RANK[unit] or (unit, other) in ALLOWED_SIDEWAYS)
            and (unit, other) not in FORBIDDEN
        )
        if not allowed:
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


@pytest.mark.parametrize(
    "path", sorted((ROOT / "scripts").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")),
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_scripts_use_public_names(path):
    private = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("muggled_swinv2"):
            private += [alias.name for alias in node.names if alias.name.startswith("_")]
    assert not private, f"{path.relative_to(ROOT)} imports private names {private}"
