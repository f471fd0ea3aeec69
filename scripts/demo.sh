#!/usr/bin/env bash
# The main job: set up .venv (first run only) and write depth maps of the example pictures to
# outputs/examples/. Uses weights/dpt_swin2_tiny_256.pt, else any checkpoint in weights/, else the
# embedded demo model (no download: trained by this project on synthetic scenes).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
shopt -s nullglob
# what the command line reads: checkpoint files, and Hugging Face model folders (with config.json)
found=(weights/*.pt weights/*.pth weights/*.bin weights/*.safetensors weights/*/config.json)
weights=()
if [ -f weights/dpt_swin2_tiny_256.pt ]; then
    weights=(--weights weights/dpt_swin2_tiny_256.pt)
elif [ ${#found[@]} -gt 0 ]; then
    weights=(--weights "${found[0]%/config.json}")
fi
muggled-swinv2 info "${weights[@]:1}"
muggled-swinv2 image muggled_swinv2/web/examples "${weights[@]}" --out outputs/examples --side-by-side --raw npy --overwrite
echo "Depth maps: outputs/examples/ (picture | depth, brighter = nearer; .npy = float inverse depth)"
[ ${#weights[@]} -gt 0 ] || echo "For real photos: muggled-swinv2 download tiny (164 MiB), then run this again."
