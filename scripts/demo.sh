#!/usr/bin/env bash
# The main job: set up .venv (first run only) and write depth maps of the example pictures to
# outputs/examples/. Uses weights/dpt_swin2_tiny_256.pt, else any checkpoint in weights/, else
# whatever the commands find ($MUGGLED_SWINV2_WEIGHTS, the folder `muggled-swinv2 download` fills),
# else the embedded demo model (trained by this project on synthetic scenes). Downloads no weights.
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
muggled-swinv2 info "${weights[@]:1}"  # which model, and a line saying so when it is the demo model
muggled-swinv2 image muggled_swinv2/web/examples "${weights[@]}" --out outputs/examples --side-by-side --raw npy --overwrite
echo "Depth maps: outputs/examples/ (picture | depth, brighter = nearer; .npy = float inverse depth)"
