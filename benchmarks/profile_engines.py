#!/usr/bin/env python3
"""Where the time goes: our PyTorch forward against our exported graph in ONNX Runtime, per part
of the model and per operator, on the same random weights, input and threads.

    python benchmarks/profile_engines.py --model tiny --size 256
    python benchmarks/profile_engines.py --model base --size 384 --rounds 3 --threads 2

- PyTorch: torch.profiler over ROUNDS forwards; each part of the model (patch embedding, each
  encoder stage and patch merging, the decoder's reassembly, each fusion block, the head) is a
  record_function range opened and closed by module hooks, so its time is its wall time with
  everything inside it.
- ONNX Runtime: the session's own profiler (SessionOptions.enable_profiling) over ROUNDS runs;
  each node's kernel time goes to the part of the model it was exported from (the exporter's
  `pkg.torch.onnx.name_scopes` metadata; nodes that ONNX Runtime fused or renamed are traced back
  through their names). Its operator names are ONNX Runtime's kernels after its own graph
  rewrites (Conv with a fused Relu, FusedMatMul, ...).
- Plain timings (no profiler) of both, interleaved, come first: the profilers add their own cost.
- --undone: the PyTorch side with its CPU speed paths off: the plain model (see --compare).
- The rates of a 2048^3 float32 matrix product by torch.mm (MKL), oneDNN and ONNX Runtime come first.
- --compare: instead of profiling, times interleaved (no profiler) our model as it is, with each of
  its CPU speed paths off in turn (muggled_swinv2.accelerate.SPEED_PATHS: oneDNN linear layers,
  Winograd convolutions, the cached-bias fused attention, the banded head, in-place updates), all
  of them off (the plain model), and ONNX Runtime; with the CPU time of all threads (on a machine busy with other
  work, --threads 1 and the CPU time measure the work done better than the wall time) and the
  page faults (fresh memory touched) per forward.

Prints one table per view (milliseconds per forward); --json writes them too.
"""

import argparse
import ast
import collections
import contextlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from muggled_swinv2.export.onnx import ExportError, export_onnx, require_onnx, session
from muggled_swinv2.model.config import RELEASES
from muggled_swinv2.accelerate import SPEED_PATHS, accelerate_for_inference, speed_paths_off
from muggled_swinv2.reference import native_model, random_midas_state_dict


def model_parts(model) -> dict[str, torch.nn.Module]:
    """Name (as the exporter's name scopes write it) -> module, for the parts timed separately."""
    parts = {"encoder.patch_embed": model.encoder.patch_embed}
    for index, stage in enumerate(model.encoder.stages):
        parts[f"encoder.stages.{index}"] = stage
    for index, merge in enumerate(model.encoder.merges):
        parts[f"encoder.merges.{index}"] = merge
    for index, conv in enumerate(model.decoder.reassemble):
        parts[f"decoder.reassemble.{index}"] = conv
    for index, block in enumerate(model.decoder.fusion):
        parts[f"decoder.fusion.{index}"] = block
    parts["decoder.head"] = model.decoder.head
    return parts


@contextlib.contextmanager
def part_ranges(model):
    """Each part's forward inside a profiler range named 'part:NAME'."""
    open_ranges, handles = {}, []
    for name, module in model_parts(model).items():
        def enter(module, inputs, name=name):
            open_ranges[name] = torch.profiler.record_function(f"part:{name}")
            open_ranges[name].__enter__()

        def leave(module, inputs, output, name=name):
            open_ranges.pop(name).__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def profile_torch(model, image, rounds: int, undone: bool = False) -> tuple[dict, dict]:
    """({part: ms per forward}, {aten op: self ms per forward}); `undone`: with the CPU speed paths off."""
    with torch.inference_mode(), part_ranges(model), (speed_paths_off(model) if undone else contextlib.nullcontext()):
        model(image)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            for _ in range(rounds):
                model(image)
    parts, ops = {}, {}
    for event in profiler.key_averages():
        if event.key.startswith("part:"):
            parts[event.key[5:]] = event.cpu_time_total / 1e3 / rounds
        elif not event.key.startswith(("ProfilerStep", "[")):
            ops[event.key] = event.self_cpu_time_total / 1e3 / rounds
    return parts, ops


def node_parts(onnx_path) -> dict[str, str]:
    """ONNX node name -> the model part it was exported from ('' where none is recorded)."""
    import onnx

    parts = {}
    for node in onnx.load(str(onnx_path), load_external_data=False).graph.node:
        meta = {entry.key: entry.value for entry in node.metadata_props}
        scopes = ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        deep = [scope for scope in scopes if scope.count(".") >= 1 and scope.split(".")[0] in ("encoder", "decoder")]
        parts[node.name] = ".".join(deep[0].split(".")[:3]) if deep else ""
    return parts


def part_of(node_name: str, parts: dict[str, str]) -> str:
    """The part of an ONNX Runtime kernel's node: its own name, or the name of the node it was made
    from ('node_MatMul_83/MatMulAddFusion', 'conv2d_23_nchwc', 'relu_25_nchwc', ...)."""
    base = node_name.split("/")[0].removesuffix("_nchwc")
    for candidate in (base, f"node_{base}"):
        if candidate in parts:
            return parts[candidate] or "(other)"
    return "(other)"


def profile_onnxruntime(onnx_path, image: np.ndarray, rounds: int, threads: int) -> tuple[dict, dict]:
    """({part: ms per run}, {kernel: ms per run}) from ONNX Runtime's own profiler."""
    _, onnxruntime = require_onnx()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = str(Path(folder) / "ort")
        runner = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        runner.run(None, {"image": image})  # the first run (memory planning, weight packing) is not counted
        for _ in range(rounds):
            runner.run(None, {"image": image})
        events = json.loads(Path(runner.end_profiling()).read_text())
    names = node_parts(onnx_path)
    nodes = [event for event in events if event.get("cat") == "Node" and event["name"].endswith("_kernel_time")]
    per_run = len(nodes) // (rounds + 1)
    parts, ops = collections.Counter(), collections.Counter()
    for event in nodes[per_run:]:  # without the first run
        node = event["name"].removesuffix("_kernel_time")
        parts[part_of(node, names)] += event["dur"] / 1e3 / rounds
        ops[event["args"]["op_name"]] += event["dur"] / 1e3 / rounds
    return dict(parts), dict(ops)


SETTLE_SECONDS = 0.1  # pause before each timed run: the last run's idle threads (ONNX Runtime's, OpenMP's) stop spinning


def plain_timings(model, runner, image, rounds: int) -> dict[str, float]:
    """Median seconds of each engine, interleaved, no profiler."""
    times = {"pytorch": [], "onnxruntime": []}
    numpy_image = image.numpy()
    with torch.inference_mode():
        model(image), runner.run(None, {"image": numpy_image})
        for _ in range(rounds):
            time.sleep(SETTLE_SECONDS)
            started = time.perf_counter()
            model(image)
            times["pytorch"].append(time.perf_counter() - started)
            time.sleep(SETTLE_SECONDS)
            started = time.perf_counter()
            runner.run(None, {"image": numpy_image})
            times["onnxruntime"].append(time.perf_counter() - started)
    return {engine: statistics.median(values) for engine, values in times.items()}


def compare(model, runner, image, rounds: int) -> dict[str, tuple[float, float]]:
    """{variant: (median seconds, MiB of page faults per forward)}, interleaved, no profiler."""
    variants = {"as it is": contextlib.nullcontext}
    for path in SPEED_PATHS:
        variants[f"{path} path off"] = lambda path=path: speed_paths_off(model, path)
    variants["all off (the plain model)"] = lambda: speed_paths_off(model)
    numpy_image = image.numpy()
    forwards = {name: (lambda variant=variant: run_in(variant, model, image)) for name, variant in variants.items()}
    forwards["ONNX Runtime"] = lambda: runner.run(None, {"image": numpy_image})
    times, cpu_times, faults = {name: [] for name in forwards}, {name: [] for name in forwards}, dict.fromkeys(forwards, 0)
    for forward in forwards.values():
        forward()
    for _ in range(rounds):
        for name, forward in forwards.items():
            time.sleep(SETTLE_SECONDS)
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started, cpu_started = time.perf_counter(), time.process_time()
            forward()
            times[name].append(time.perf_counter() - started)
            cpu_times[name].append(time.process_time() - cpu_started)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    page_mib = resource.getpagesize() / 2**20
    return {name: (statistics.median(times[name]), statistics.median(cpu_times[name]), faults[name] * page_mib / rounds)
            for name in forwards}


def run_in(variant, model, image):
    with torch.inference_mode(), variant():
        return model(image)


def matrix_product_rates(threads: int, side: int = 2048, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of a side^3 float32 matrix product by torch.mm (the BLAS: MKL on x86), by oneDNN (our
    linear layers' path) and by ONNX Runtime (MLAS), best of `repeats`, interleaved."""
    import onnx
    from onnx import helper, numpy_helper

    from muggled_swinv2.accelerate.onednn import linear

    _, onnxruntime = require_onnx()
    a, b = torch.randn(side, side), torch.randn(side, side)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])], "product",
        [helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [side, side])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [side, side])], [numpy_helper.from_array(b.numpy(), "b")],
    )
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    product = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    runner = onnxruntime.InferenceSession(product.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a_numpy = a.numpy()
    products = {"torch.mm (MKL)": lambda: torch.mm(a, b), "oneDNN (our linear layers)": lambda: linear(a, b),
                "ONNX Runtime (MLAS)": lambda: runner.run(None, {"a": a_numpy})}
    best = dict.fromkeys(products, float("inf"))
    with torch.inference_mode():
        for _ in range(repeats + 1):
            for name, run in products.items():
                time.sleep(SETTLE_SECONDS)
                started = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - started)
    return {name: 2 * side**3 / seconds / 1e9 for name, seconds in best.items()}


def print_table(title: str, rows: list[tuple], header: tuple):
    print(f"\n{title}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", choices=sorted(RELEASES))
    parser.add_argument("--size", type=int, help="square input side (default: the model's native size)")
    parser.add_argument("--rounds", type=int, default=5, help="forwards per measurement (default 5)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--onnx", help="an exported file of this model and size to reuse (default: export now)")
    parser.add_argument("--top", type=int, default=12, help="operators listed per engine (default 12)")
    parser.add_argument("--compare", action="store_true", help="time what each CPU speed-up buys instead of profiling")
    parser.add_argument("--undone", action="store_true",
                        help="profile PyTorch with its CPU speed paths off (the plain model)")
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)
    try:
        require_onnx()
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    config = RELEASES[args.model].config
    size = args.size or config.native_size
    model = accelerate_for_inference(native_model(random_midas_state_dict(config)))
    image = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32))

    with tempfile.TemporaryDirectory() as folder:
        onnx_path = args.onnx or str(Path(folder) / "model.onnx")
        if not args.onnx:
            print(f"exporting {args.model}@{size} ...", file=sys.stderr, flush=True)
            export_onnx(model, onnx_path, size_hw=(size, size))
        if args.compare:
            return print_comparison(args, size, compare(model, session(onnx_path, args.threads), image, args.rounds))
        rates = matrix_product_rates(args.threads)
        with speed_paths_off(model) if args.undone else contextlib.nullcontext():
            plain = plain_timings(model, session(onnx_path, args.threads), image, args.rounds)
        torch_parts, torch_ops = profile_torch(model, image, args.rounds, args.undone)
        ort_parts, ort_ops = profile_onnxruntime(onnx_path, image.numpy(), args.rounds, args.threads)

    state = " with the CPU speed paths off" if args.undone else ""
    print(f"{args.model}@{size}x{size} batch 1, {args.threads} threads, torch {torch.__version__}, "
          f"median of {args.rounds}: PyTorch{state} {plain['pytorch'] * 1e3:.1f} ms, ONNX Runtime "
          f"{plain['onnxruntime'] * 1e3:.1f} ms ({plain['onnxruntime'] / plain['pytorch']:.2f}x)")
    print("2048^3 float32 matrix product: " + ", ".join(f"{name} {rate:.0f} GFLOP/s" for name, rate in rates.items()))
    names = list(model_parts(model)) + sorted(set(ort_parts) - set(model_parts(model)))
    rows = []
    for name in names:
        ours, theirs = torch_parts.get(name), ort_parts.get(name)
        ratio = f"{theirs / ours:.2f}x" if ours and theirs else "-"
        rows.append((name, f"{ours:.1f}" if ours is not None else "-", f"{theirs:.1f}" if theirs is not None else "-", ratio))
    rows.append(("sum of the parts", f"{sum(torch_parts.values()):.1f}", f"{sum(ort_parts.values()):.1f}",
                 f"{sum(ort_parts.values()) / sum(torch_parts.values()):.2f}x"))
    print_table("Per part (ms per forward, under each engine's profiler)", rows,
                ("part", "PyTorch", "ONNX Runtime", "ORT / PyTorch"))
    top_torch = sorted(torch_ops.items(), key=lambda item: -item[1])[: args.top]
    top_ort = sorted(ort_ops.items(), key=lambda item: -item[1])[: args.top]
    print_table("Per operator (self ms per forward)",
                [(a, f"{x:.1f}", b, f"{y:.1f}") for (a, x), (b, y) in zip(top_torch, top_ort)],
                ("PyTorch op", "ms", "ONNX Runtime kernel", "ms"))
    if args.json:
        result = dict(model=args.model, size=size, threads=args.threads, rounds=args.rounds, undone=args.undone,
                      plain_seconds=plain, matrix_product_gflops=rates,
                      torch_parts=torch_parts, onnxruntime_parts=ort_parts, torch_ops=torch_ops, onnxruntime_ops=ort_ops)
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def print_comparison(args, size: int, results: dict) -> int:
    reference, cpu_reference = results["as it is"][:2]
    print(f"{args.model}@{size}x{size} batch 1, {args.threads} threads, torch {torch.__version__}, "
          f"median of {args.rounds}, interleaved")
    rows = [(name, f"{seconds * 1e3:.1f}", f"{seconds / reference:.2f}x", f"{cpu * 1e3:.1f}", f"{cpu / cpu_reference:.2f}x",
             f"{fault_mib:.0f}") for name, (seconds, cpu, fault_mib) in results.items()]
    print_table("PyTorch with each speed path off, and ONNX Runtime (wall time; CPU time of all threads)", rows,
                ("variant", "ms", "/ as it is", "CPU ms", "/ as it is", "page faults MiB"))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(model=args.model, size=size, threads=args.threads, rounds=args.rounds,
                                                   results=results), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
