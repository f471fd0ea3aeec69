#!/usr/bin/env bash
# Trains the embedded demo model (muggled_swinv2/demo/) from scratch on synthetic scenes, on the CPU.
# The exact command behind the shipped file: 45 minutes on 2 CPU cores with bfloat16 instructions
# (AVX512-BF16/AMX; about 80 without: --precision auto falls back to float32). Model card: weights/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh test
out="${1:-outputs/demo_micro_256.safetensors}"
muggled-swinv2 train --config micro --data synthetic --scenes 4000 --steps 5400 --batch-size 16 \
    --size 192 --lr 5e-4 --warmup 400 --seed 0 --val-every 1350 --val-count 48 --device cpu --precision auto --out "$out" "${@:2}"
muggled-swinv2 convert "$out" "${out%.safetensors}_float16.safetensors" --dtype float16 --overwrite  # what ships
muggled-swinv2 eval --weights "$out" --data synthetic --split test --count 200 --json "${out%.safetensors}_test.json" --overwrite
