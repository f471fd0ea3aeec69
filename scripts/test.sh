#!/usr/bin/env bash
# The test command: sets up .venv with the [test] extra (first run only), then runs the suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k loader -x`. Tests skipped because a
# package or the browser (Debian's chromium and chromium-driver; .ci/run installs them) is missing
# make the run fail, naming what to install (tests/strict_skips.py); MUGGLED_SWINV2_ALLOW_MISSING=1
# accepts such a partial run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh test
python -m pytest "$@"
