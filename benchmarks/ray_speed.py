#!/usr/bin/env python3
"""Images per second of `muggled-swinv2 image` against `image --ray`, side by side.

    nice -n 19 python benchmarks/ray_speed.py --images 100 --rounds 2
    nice -n 19 python benchmarks/ray_speed.py --images 100 --extra "--batch-size 4"

Everything is made at run time in a temporary folder: IMAGES photos of SIZE (JPEG), cut and
varied from the example photos in muggled_swinv2/web/examples, and a random-weight checkpoint in the exact
MiDaS layout of the chosen released configuration (muggled_swinv2/reference.py, as the tests build theirs). Each round runs
the local command, then the --ray command (the order alternates between rounds), each as a fresh
process on an empty --out folder, so every time includes the whole startup: Python, PyTorch,
the model and, for --ray, a local Ray instance and its workers. Printed per command: the total
time, the time to the first output picture (startup plus one image), the rate from the first
picture to the last, the time from the last picture to the exit (teardown) and images/s over the
whole run; then the ratio --ray / local, and the largest difference between the two runs' outputs.
"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import cv2

ROOT = Path(__file__).resolve().parent.parent


def make_photos(folder: Path, count: int, width: int, height: int) -> None:
    """`count` different JPEG photos of width x height: crops, flips and exposure changes of the examples."""
    rng = np.random.default_rng(0)
    examples = sorted(p for p in (ROOT / "muggled_swinv2" / "web" / "examples").iterdir() if p.suffix in (".jpg", ".png"))
    sources = [cv2.imread(str(path), cv2.IMREAD_COLOR) for path in examples]
    for index in range(count):
        source = sources[index % len(sources)]
        scale = max(width / source.shape[1], height / source.shape[0]) * rng.uniform(1.0, 1.4)
        big = cv2.resize(source, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        top = rng.integers(0, big.shape[0] - height + 1)
        left = rng.integers(0, big.shape[1] - width + 1)
        picture = big[top : top + height, left : left + width]
        if index % 2:
            picture = picture[:, ::-1]
        picture = np.clip(picture * rng.uniform(0.8, 1.2) + rng.normal(0, 3, picture.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"photo_{index:03d}.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 92])


def make_checkpoint(path: Path, variant: str) -> None:
    import torch
    from muggled_swinv2.model.config import RELEASES
    from muggled_swinv2.reference import random_midas_state_dict

    torch.save(random_midas_state_dict(RELEASES[variant].config, seed=0), path)


def busy_seconds() -> float:
    """CPU time this machine has spent busy so far, all processes together (/proc/stat)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, open("/proc/stat").readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int, seen: dict) -> None:
    """Update seen[(pid, start time)] with the CPU seconds of `root` and all its descendants."""
    parents, times = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = open(f"/proc/{name}/stat").read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            parents[int(name)] = int(fields[1])
            times[int(name)] = ((int(name), fields[19]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    for pid in times:
        ancestor = pid
        while ancestor not in (root, 0, 1) and ancestor in parents:
            ancestor = parents[ancestor]
        if ancestor == root:
            key, seconds = times[pid]
            seen[key] = seconds


def timed_run(command: list[str], out: Path, count: int) -> dict:
    """Run the command. Seconds from its start to its first output picture (startup and one image),
    to its last one, and to its end (polled every 10 ms); and the CPUs that other processes kept
    busy meanwhile (the machine's busy time less the command's own, over the run)."""
    busy_before = busy_seconds()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = last = None
    own, polls = {}, 0
    while process.poll() is None:
        if last is None and out.is_dir():
            written = sum(1 for path in out.iterdir() if path.suffix == ".png")
            if written and first is None:
                first = time.perf_counter() - started
            if written == count:
                last = time.perf_counter() - started
        if polls % 25 == 0:
            tree_cpu_seconds(process.pid, own)
        polls += 1
        time.sleep(0.01)
    total = time.perf_counter() - started
    other = (busy_seconds() - busy_before - sum(own.values())) / total
    stderr = process.stderr.read()
    if process.returncode != 0:
        sys.exit(f"{shlex.join(command)} exited {process.returncode}: {stderr.strip().splitlines()[-1:] or ''}")
    written = sum(1 for path in out.glob("*.png"))
    if written != count:
        sys.exit(f"{shlex.join(command)} wrote {written} of {count} pictures")
    return {"total": total, "first": first or total, "last": last or total, "other": max(other, 0.0),
            "cpu": sum(own.values())}


def picture_difference(local: Path, ray: Path) -> float:
    """Largest difference between the two runs' colour pictures, in 8-bit levels of a channel."""
    worst = 0.0
    for path in sorted(local.glob("*.png")):
        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(np.int16)
        b = cv2.imread(str(ray / path.name), cv2.IMREAD_UNCHANGED).astype(np.int16)
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


def depth_difference(commands: dict, photos: Path, temp: Path, count: int = 10) -> float:
    """Both commands once more on the first `count` photos with --raw npy: the largest difference
    between their inverse depth maps, as a fraction of each map's range."""
    subset = temp / "subset"
    subset.mkdir()
    for path in sorted(photos.iterdir())[:count]:
        (subset / path.name).symlink_to(path)
    outs = {}
    for name, command in commands.items():
        outs[name] = temp / f"npy_{name}"
        command = [str(subset) if part == str(photos) else part for part in command]
        subprocess.run([*command, "--raw", "npy", "--out", str(outs[name])], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worst = 0.0
    for path in sorted(outs["local"].glob("*.npy")):
        a, b = np.load(path), np.load(outs["ray"] / path.name)
        worst = max(worst, float(np.abs(a - b).max() / (a.max() - a.min())))
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of the photos")
    parser.add_argument("--variant", default="tiny", choices=("tiny", "base", "large"))
    parser.add_argument("--rounds", type=int, default=2, help="local/--ray pairs, the order alternating")
    parser.add_argument("--extra", default="", help="options for both commands, e.g. '--batch-size 4'")
    parser.add_argument("--ray-extra", default="", help="options for the --ray command only")
    args = parser.parse_args(argv)
    width, height = map(int, args.size.lower().split("x"))

    with tempfile.TemporaryDirectory(prefix="ray_speed_") as temp:
        temp = Path(temp)
        photos, weights = temp / "photos", temp / f"dpt_swin2_{args.variant}_random.pt"
        photos.mkdir()
        make_photos(photos, args.images, width, height)
        make_checkpoint(weights, args.variant)
        base = [sys.executable, "-m", "muggled_swinv2", "image", str(photos), "-w", str(weights), "-q",
                *shlex.split(args.extra)]
        commands = {"local": base, "ray": [*base, "--ray", *shlex.split(args.ray_extra)]}
        times = {name: [] for name in commands}
        env_note = f"nice {os.nice(0)}, {len(os.sched_getaffinity(0))} CPUs"
        print(f"{args.images} photos {width}x{height}, {args.variant} (random weights), {env_note}", flush=True)
        for name, command in commands.items():
            print(f"{name}: {shlex.join(command[1:])} --out OUT".replace(str(temp), "TEMP"), flush=True)
        for round_ in range(args.rounds):
            order = ["local", "ray"] if round_ % 2 == 0 else ["ray", "local"]
            for name in order:
                out = temp / f"out_{name}_{round_}"
                result = timed_run([*commands[name], "--out", str(out)], out, args.images)
                times[name].append(result)
                print(f"round {round_ + 1} {name:5s}: {result['total']:6.1f} s, first output after "
                      f"{result['first']:5.1f} s, last {result['last']:5.1f} s, "
                      f"{args.images / result['total']:.2f} images/s; {result['cpu']:.1f} CPU s in its processes; "
                      f"other load {result['other']:.2f} CPUs", flush=True)
        pictures = picture_difference(temp / "out_local_0", temp / "out_ray_0")
        depths = depth_difference(commands, photos, temp)

    print()
    print("| command | runs (s) | median s | first output (s) | after it (images/s) | exit after last output (s) | images/s |")
    print("|---|---|---|---|---|---|---|")
    rate = {}
    for name, runs in times.items():
        total = statistics.median(run["total"] for run in runs)
        rate[name] = args.images / total
        each = ", ".join(f"{run['total']:.1f}" for run in runs)
        first = statistics.median(run["first"] for run in runs)
        steady = statistics.median((args.images - 1) / max(run["last"] - run["first"], 1e-9) for run in runs)
        teardown = statistics.median(run["total"] - run["last"] for run in runs)
        label = "local" if name == "local" else "--ray"
        print(f"| {label} | {each} | {total:.1f} | {first:.1f} | {steady:.2f} | {teardown:.1f} | {rate[name]:.2f} |")
    rounds = ", ".join(f"{local['total'] / ray['total']:.2f}" for local, ray in zip(times["local"], times["ray"]))
    print(f"\n--ray / local throughput: {rate['ray'] / rate['local']:.2f} (per round: {rounds})")
    print(f"outputs: the colour pictures differ by at most {pictures:.0f} levels (one step of the inferno map is "
          f"up to 5); the inverse depth (--raw npy, 10 photos) by at most {depths:.1e} of its range")


if __name__ == "__main__":
    main()
