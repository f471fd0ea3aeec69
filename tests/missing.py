"""Pretending that optional packages are not installed, to test the one-line "pip install" messages."""

import builtins


def without_packages(monkeypatch, *roots: str) -> None:
    """Until the test ends, importing any module of these top-level packages raises
    ModuleNotFoundError, as it would where they are not installed."""
    real_import = builtins.__import__

    def refusing_import(name, *args, **kwargs):
        if name.split(".")[0] in roots:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refusing_import)
