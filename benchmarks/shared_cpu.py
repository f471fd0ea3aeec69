"""The accelerated model against the plain one and transformers, quiet and with a second process
running the same accelerated model beside it (two commands, two Ray actors, a job beside the web
server: the CPU is shared).

    python benchmarks/shared_cpu.py                    # tiny@256, 5 rounds, about 3 minutes on 2 cores
    python benchmarks/shared_cpu.py --rounds 9 --repeats 7

Random weights (muggled_swinv2/reference.py), batch 1, float32, torch's default threads in both
processes (each believes it has the machine). Each round times the three models interleaved
(median of --repeats each), once with the competing process stopped (SIGSTOP) and once with it
running; the table gives each round and the median of the rounds. The competitor is this script
itself with --compete.
"""

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

import torch

from muggled_swinv2.accelerate import accelerate_for_inference
from muggled_swinv2.model.config import RELEASES
from muggled_swinv2.reference import native_model, random_midas_state_dict, transformers_depth, transformers_reference


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as file:
            for line in file:
                if line.lower().startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def accelerated_model(variant: str):
    return accelerate_for_inference(native_model(random_midas_state_dict(RELEASES[variant].config, seed=0)))


def compete(variant: str, size: int) -> None:
    """The competitor: the accelerated model in a loop until killed."""
    model, image = accelerated_model(variant), torch.randn(1, 3, size, size)
    with torch.inference_mode():
        model(image)
        print("ready", flush=True)
        while True:
            model(image)


def seconds(run, image: torch.Tensor) -> float:
    start = time.perf_counter()
    run(image)
    return time.perf_counter() - start


def time_interleaved(runs: dict, image: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median seconds of each run, their calls interleaved so that machine noise hits them alike."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(seconds(run, image))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="tiny", choices=sorted(RELEASES))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of each model per round and condition")
    parser.add_argument("--compete", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compete:
        return compete(args.variant, args.size)

    weights = random_midas_state_dict(RELEASES[args.variant].config, seed=0)
    plain = native_model(weights)
    accelerated = accelerate_for_inference(native_model(weights))
    peer = transformers_reference(RELEASES[args.variant].config, (args.size, args.size), weights)
    runs = {"accelerated": accelerated, "plain": plain, "transformers": lambda image: transformers_depth(peer, image)}
    image = torch.randn(1, 3, args.size, args.size)

    command = [sys.executable, __file__, "--compete", "--variant", args.variant, "--size", str(args.size)]
    competitor = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    load_before = os.getloadavg()
    rows = {"quiet": [], "shared": []}
    try:
        with torch.inference_mode():
            time_interleaved(runs, image, 1)  # warm-up: tables, allocator, oneDNN primitives
            if competitor.stdout.readline().strip() != "ready":
                sys.exit("the competing process did not start")
            for round_ in range(args.rounds):
                for condition in ("quiet", "shared"):
                    competitor.send_signal(signal.SIGSTOP if condition == "quiet" else signal.SIGCONT)
                    time.sleep(0.2)
                    rows[condition].append(time_interleaved(runs, image, args.repeats))
                print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        competitor.send_signal(signal.SIGCONT)
        competitor.kill()
        competitor.wait()
    load_after = os.getloadavg()

    cores = len(os.sched_getaffinity(0))
    print(f"{args.variant}@{args.size} b1, float32; {cpu_name()}, {cores} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads in each process; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; median of {args.repeats} calls per round\n")
    print("| condition | round | accelerated s | plain s | transformers s | plain / accelerated | transformers / accelerated |")
    print("|---|---|---|---|---|---|---|")
    for condition, timings in rows.items():
        for label, row in [*((str(i + 1), row) for i, row in enumerate(timings)), ("median", None)]:
            if row is None:  # the median of the rounds, of times and of ratios
                row = {name: statistics.median(t[name] for t in timings) for name in runs}
                ratios = [statistics.median(t[name] / t["accelerated"] for t in timings) for name in ("plain", "transformers")]
            else:
                ratios = [row[name] / row["accelerated"] for name in ("plain", "transformers")]
            print(f"| {condition} | {label} | {row['accelerated']:.3f} | {row['plain']:.3f} | {row['transformers']:.3f} "
                  f"| {ratios[0]:.2f}x | {ratios[1]:.2f}x |")


if __name__ == "__main__":
    main()
