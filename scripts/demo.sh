#!/usr/bin/env bash
# The main job: sets up .venv (first run only), then describes the checkpoint found in weights/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
shopt -s nullglob
checkpoints=(weights/*.pt)
if [ ${#checkpoints[@]} -eq 0 ]; then
    echo "No checkpoint in weights/. Download one, e.g.:" >&2
    echo "  curl -L -o weights/dpt_swin2_tiny_256.pt https://github.com/isl-org/MiDaS/releases/download/v3_1/dpt_swin2_tiny_256.pt" >&2
    echo "(see weights/README.md for all three)" >&2
    exit 1
fi
muggled-swinv2 info "${checkpoints[0]}"
