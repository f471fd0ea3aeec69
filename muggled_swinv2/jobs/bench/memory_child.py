"""The memory child of a bench run: `python -m muggled_swinv2.jobs.bench.memory_child SPEC`.

A fresh process per implementation and size (measure.measure_memory starts it), so that nothing of
the other models, of the timing loop or of building the weights counts. SPEC is JSON: impl ("ours",
"peer" or "onnxruntime"), model, size_hw, batches, device, dtype, threads, compile, seed and
onnx_path. It prints one JSON line: {"peak_mib": {batch: MiB}, "method": how it was measured}.

On CPU the child imports everything, notes its RSS, builds the model, frees the building garbage
(glibc malloc_trim), resets the kernel's RSS high-water mark (/proc/self/clear_refs) and runs one
forward per batch size; the peak is that high-water mark minus the RSS after the imports: weights
plus the forward's working memory. Where the mark cannot be reset, the lifetime peak (ru_maxrss,
which then includes building the weights) is used instead. On CUDA it is
torch.cuda.max_memory_allocated(): weights plus activations.
"""

import json
import resource
import sys

import torch

from ...devices import DTYPES
from ...errors import UserError
from ...model.config import RELEASES
from .implementations import build_ours, build_peer, make_input, onnxruntime_forward, prepare, random_weights
from .measure import timed
from .plan import Case


def rss_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Free unused heap, then make the RSS high-water mark the current RSS. False where unsupported."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def peak_memory(spec: dict) -> dict:
    """Peak memory of one implementation at one size, per batch size (the module docstring)."""
    device, dtype = torch.device(spec["device"]), DTYPES[spec["dtype"]]
    torch.set_num_threads(spec["threads"])
    config, size_hw, is_ours = RELEASES[spec["model"]].config, tuple(spec["size_hw"]), spec["impl"] == "ours"
    if spec["impl"] == "onnxruntime":
        import onnxruntime  # noqa: F401  (its import is not the model's memory)
    elif not is_ours:
        import transformers  # noqa: F401
    rss_after_imports = rss_bytes("VmRSS") if device.type == "cpu" else 0
    if spec["impl"] == "onnxruntime":
        forward = onnxruntime_forward(spec["onnx_path"], spec["threads"])
    else:
        weights = random_weights(config, spec["seed"])
        model = build_ours(weights) if is_ours else build_peer(config, size_hw, weights)
        del weights
        forward = prepare(model, device, dtype, spec["compile"], is_ours)
    peaks, method = {}, "cuda max_memory_allocated"
    for batch in sorted(spec["batches"]):
        image = make_input(Case(spec["model"], size_hw, batch), device, dtype)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            timed(forward, image, device)
            peak = torch.cuda.max_memory_allocated(device)
        else:
            if reset_peak_rss():
                method = "RSS high-water mark over the forward (reset before it), minus RSS after imports"
                timed(forward, image, device)
                peak = rss_bytes("VmHWM")
            else:
                method = "lifetime peak RSS (ru_maxrss: includes building the weights), minus RSS after imports"
                timed(forward, image, device)
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            peak -= rss_after_imports
        peaks[batch] = peak / 2**20
        del image
    return {"peak_mib": peaks, "method": method}


if __name__ == "__main__":
    try:
        print(json.dumps(peak_memory(json.loads(sys.argv[1]))))
    except UserError as error:
        sys.exit(f"error: {error}")
