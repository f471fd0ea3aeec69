"""A test run fails when tests were skipped because something they need is not installed.

Where an optional extra (onnxruntime, gradio, ray, ...) or the browser for the web page test is
missing, its tests skip; a run that looks green but tested less than it says would hide that.
The same holds for the tests that need a full or a read-only disk, made by mounting a tmpfs (root)
or by the folder's mode (other users): where neither can be had, they skip, and the run fails.
So the run fails, naming what is missing, unless MUGGLED_SWINV2_ALLOW_MISSING=1 says that a
partial run is meant. Loaded by conftest.py (and as `-p strict_skips` by its own test).
"""

import os
import re

import pytest

ALLOW_VARIABLE = "MUGGLED_SWINV2_ALLOW_MISSING"
# What pytest.importorskip and the suite's own skip reasons say when something is not installed.
MISSING = re.compile(r"could not import|No module named|not installed|chromium|chromedriver|cannot mount|"
                     r"cannot make a read-only folder", re.IGNORECASE)
_missing: dict[str, int] = {}  # skip reason -> number of tests


def _note(report) -> None:
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if MISSING.search(reason):
            _missing[reason] = _missing.get(reason, 0) + 1


def pytest_runtest_logreport(report) -> None:
    _note(report)


def pytest_collectreport(report) -> None:
    _note(report)  # a module-level importorskip skips the whole file at collection


def pytest_sessionfinish(session) -> None:
    if _missing and os.environ.get(ALLOW_VARIABLE) != "1" and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if not _missing:
        return
    allowed = os.environ.get(ALLOW_VARIABLE) == "1"
    terminalreporter.section("skipped for something missing", sep="=", red=not allowed, yellow=allowed)
    for reason, count in sorted(_missing.items()):
        terminalreporter.line(f"{count} skipped: {reason}")
    if allowed:
        terminalreporter.line(f"allowed by {ALLOW_VARIABLE}=1")
    else:
        terminalreporter.line(
            "the run FAILS: install what is missing (pip install -e '.[test]'; for the browser test "
            "Debian's chromium and chromium-driver, as .ci/run does), or set "
            f"{ALLOW_VARIABLE}=1 to accept a partial run"
        )
