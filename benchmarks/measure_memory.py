#!/usr/bin/env python3
"""Peak memory of one prediction, measured against muggled_swinv2.memory's estimate.

    python benchmarks/measure_memory.py --variant tiny --sizes 256,512,1024,2048 --image 480x640

Each size runs in a fresh child process (random weights of the released configuration): the peak
RSS of the prediction above the RSS before it (model loaded and warmed up) is the measured value.
"""

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys
import numpy as np, torch
from muggled_swinv2 import SwinV2DPT
from muggled_swinv2.accelerate import accelerate_for_inference
from muggled_swinv2.model.config import RELEASES
torch.set_num_threads(2)
variant, size, height, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model = accelerate_for_inference(SwinV2DPT(RELEASES[variant].config).eval())  # as load_model gives it
model.predict(np.zeros((64, 64, 3), np.uint8), size=256)  # warm-up: caches built
page = resource.getpagesize()
before = int(open("/proc/self/statm").read().split()[1]) * page
image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
model.predict(image, size=size)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "peak": peak}))
"""


def main(argv=None):
    from muggled_swinv2.memory import estimate_bytes
    from muggled_swinv2.model.config import RELEASES
    from muggled_swinv2.predict import network_size_hw

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="tiny", choices=RELEASES)
    parser.add_argument("--sizes", default="256,512,1024", help="--size values, comma separated")
    parser.add_argument("--image", default="480x640", help="photo HEIGHTxWIDTH")
    args = parser.parse_args(argv)
    height, width = map(int, args.image.split("x"))
    config = RELEASES[args.variant].config
    print("| size | network input | estimate MiB | measured MiB | estimate / measured |")
    print("|---|---|---|---|---|")
    for size in map(int, args.sizes.split(",")):
        result = subprocess.run([sys.executable, "-c", CHILD, args.variant, str(size), str(height), str(width)],
                                capture_output=True, text=True, check=True)
        numbers = json.loads(result.stdout.strip().splitlines()[-1])
        measured = numbers["peak"] - numbers["before"]
        network_hw = network_size_hw((height, width), size)
        estimate = estimate_bytes(config, network_hw, (height, width))
        print(f"| {size} | {network_hw[1]}x{network_hw[0]} | {estimate / 2**20:.0f} | {measured / 2**20:.0f} | "
              f"{estimate / measured:.2f} |", flush=True)


if __name__ == "__main__":
    main()
