"""The embedded demo model: a 3.5 M-parameter SwinV2-DPT ("micro" config) trained by this project
on its synthetic scenes (scripts/train_demo.sh; model card in weights/README.md).

It lets every command run on a fresh install with no download. It knows rooms, corridors, ground
planes and simple objects; for real photos use a MiDaS model (`muggled-swinv2 download tiny`).
"""

from pathlib import Path

DEMO_WEIGHTS = Path(__file__).resolve().parent / "demo_micro_256.safetensors"
DEMO_NOTE = (  # formats.weights.demo_note says first where no checkpoint was found
    "using the embedded demo model (micro, trained on synthetic "
    "scenes only); for real photos get a MiDaS model with `muggled-swinv2 download tiny`"
)


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["DEMO_NOTE", "DEMO_WEIGHTS"]
