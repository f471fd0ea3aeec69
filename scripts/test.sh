#!/usr/bin/env bash
# The test command: sets up .venv with the [test] extra (first run only), installs Debian's chromium
# and chromium-driver for the web page's browser test when they are missing (apt-get, through sudo
# when not root), then runs the suite. Extra arguments go to pytest, e.g.
# `bash scripts/test.sh -k loader -x`. Tests skipped because something they need is missing make the
# run fail, naming what to install (tests/strict_skips.py); MUGGLED_SWINV2_ALLOW_MISSING=1 accepts
# such a partial run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh test
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if command -v apt-get > /dev/null; then
        sudo=$([ "$(id -u)" -eq 0 ] || echo sudo)
        echo "Installing Debian's chromium and chromium-driver (for the web page's browser test) ..." >&2
        { $sudo apt-get update -q && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; } \
            > /dev/null || echo "Could not install chromium and chromium-driver: the browser test will name them." >&2
    else
        echo "No apt-get here: install Chromium and ChromeDriver yourself for the web page's browser test." >&2
    fi
fi
python -m pytest "$@"
