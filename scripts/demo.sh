#!/usr/bin/env bash
# The main job: set up .venv (first run only), get the tiny checkpoint if weights/ has none,
# and write depth maps of the example pictures to outputs/examples/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
shopt -s nullglob
# what the command line reads: checkpoint files, and Hugging Face model folders (with config.json)
found=(weights/*.pt weights/*.pth weights/*.bin weights/*.safetensors weights/*/config.json)
if [ -f weights/dpt_swin2_tiny_256.pt ]; then
    checkpoint=weights/dpt_swin2_tiny_256.pt
elif [ ${#found[@]} -gt 0 ]; then
    checkpoint=${found[0]%/config.json}
else
    echo "No checkpoint in weights/: downloading the tiny model (164 MiB) ..." >&2
    muggled-swinv2 download tiny --dir weights || exit 1
    checkpoint=weights/dpt_swin2_tiny_256.pt
fi
muggled-swinv2 info "$checkpoint"
muggled-swinv2 image scripts/examples --weights "$checkpoint" --out outputs/examples --side-by-side --raw npy --overwrite
echo "Depth maps: outputs/examples/ (picture | depth, brighter = nearer; .npy = float inverse depth)"
