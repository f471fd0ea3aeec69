"""Speed and memory benchmark: this project against transformers' DPTForDepthEstimation (SwinV2).

    muggled-swinv2 bench
    muggled-swinv2 bench --models tiny --sizes 256,256x448 --batch-sizes 1,4 --json out.json

A run, in the order of `run_bench` below: plan.py checks the options and makes the cases (the
default plan: tiny@256 and base@384 at batch 1 and 4, large@384 at batch 1, base at 384x672);
measure.py times them, counts their FLOPs and starts the memory children (memory_child.py);
report.py prints the table and writes the JSON. The implementations compared are built in
implementations.py. How each number is obtained (all in one run, on the same random weights):

- Weights: a seeded random state dict in the MiDaS v3.1 layout (`reference.random_midas_state_dict`),
  loaded into this project's model as a checkpoint file would be and into the peer by
  `reference.transformers_reference`. Both models therefore compute on identical tensors.
- Time: both models live in this process and run the same input; the runs are interleaved (ours,
  peer, peer, ours, ...) after a warm-up, so machine noise hits both alike. The tables give the
  median of `--repeats` runs; the speed-up is peer median / our median.
- FLOPs: counted on our model with `torch.utils.flop_counter` (matmuls, convolutions and the
  attention kernel; 2 per multiply-add) with its Winograd convolutions switched off: the FLOPs of
  the direct computation. The Winograd path does fewer multiplications than that, so "% roof" is
  an effective rate and could in principle pass 100%. The same count serves the peer (it does a
  little more work: its fusion 1x1 convolutions run after the upsampling).
- Roofline: the machine's fp32 GEMM rate is measured in the same run (a 2048^3 matrix product on
  the same threads, best of several, by torch.mm and by oneDNN as our linear layers run it);
  roofline time = FLOPs / rate, and "% roof" = roofline time / median time, the fraction of the
  GEMM-bound floor that a model reaches.
- Memory: each model is run again in a fresh child process (memory_child.py: so nothing of the
  other model, of this process's timing loop or of the weight building counts): on CPU the RSS
  high-water mark over one forward per batch size, minus the RSS after the imports (weights plus
  the forward's working memory; where the mark cannot be reset, the child's lifetime peak, and
  the JSON says so); on CUDA torch.cuda.max_memory_allocated().
- ONNX Runtime (`--peers transformers,onnxruntime`, CPU float32 only): our model exported at each
  size (`export/onnx.py`, dynamic batch, checked on export) and run by an ONNX Runtime CPU session
  with the same thread count, interleaved with the others; its max diff is against our output.
"""

import torch

from .measure import gemm_rate, measure_plan
from .plan import BenchOptions, make_plan
from .report import check_json_target, machine_description, print_report, rooflines_at, row_line, write_json

__all__ = ["BenchOptions", "run_bench"]


def run_bench(options: BenchOptions) -> int:
    """Measure, print the table, write --json; 0. Options that cannot be honoured are refused (a
    UserError, one line) before any measuring."""
    plan = make_plan(options)
    torch.set_num_threads(options.threads)
    machine = machine_description(plan.device, options.threads)
    print(f"machine: {machine}", flush=True)
    if options.json:
        check_json_target(options.json)
    rate = gemm_rate(plan.device, plan.dtype)
    print(f"GEMM rate ({options.dtype}, 2048^3): {rate / 1e9:.1f} GFLOP/s", flush=True)

    measured = measure_plan(plan, rate, show_row=lambda row: print(row_line(row, plan.with_peer), flush=True))

    # Measured again at the end, keeping the best: a busy moment at the start must not make the
    # roofline look slower than the machine is (which would flatter both implementations).
    rate = max(rate, gemm_rate(plan.device, plan.dtype))
    rooflines_at(measured.rows, rate)
    print_report(plan, machine, rate, measured)
    if options.json:
        write_json(plan, machine, rate, measured)
    return 0
