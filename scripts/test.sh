#!/usr/bin/env bash
# The test command: sets up .venv with the test extras (first run only), then runs the suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k loader -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh test
python -m pytest "$@"
