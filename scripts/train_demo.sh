#!/usr/bin/env bash
# Trains the embedded demo model (muggled_swinv2/demo/) from scratch on synthetic scenes, on the CPU.
# The exact command behind the shipped file; about 60 minutes on 2 CPU cores. Model card: weights/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh test
out="${1:-outputs/demo_micro_256.safetensors}"
muggled-swinv2 train --config micro --data synthetic --scenes 3000 --steps 2700 --batch-size 16 \
    --size 192 --lr 1e-3 --warmup 200 --seed 0 --val-every 900 --val-count 48 --device cpu --out "$out" "${@:2}"
muggled-swinv2 convert "$out" "${out%.safetensors}_float16.safetensors" --dtype float16 --overwrite  # what ships
muggled-swinv2 eval --weights "$out" --data synthetic --split test --count 200 --json "${out%.safetensors}_test.json"
