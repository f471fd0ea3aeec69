#!/usr/bin/env bash
# Creates .venv (once) with a pinned PyTorch and muggled_swinv2 installed in editable mode.
# Sourced by scripts/demo.sh and scripts/test.sh. Override the PyTorch build with TORCH_SPEC,
# e.g. TORCH_SPEC="torch==2.5.1" for a CUDA machine; the default is the CPU build used in CI.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MUGGLED_VENV:-$repo_root/.venv}"
extras="${1:-}"
stamp="$venv/.installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ "$repo_root/setup.cfg" -nt "$stamp" ]; then
    echo "Setting up $venv (first run only) ..." >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
    "$venv/bin/python" -m pip install -q -e "$repo_root${extras:+[$extras]}"
    touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
