"""How much memory a prediction needs, and whether this machine has it (before running it).

The estimate counts the largest tensors alive at each phase of one forward pass, from the
configuration and the network input size (h, w), and takes the largest phase:
- encoder stage i (N = h*w / (16 * 4**i) tokens, C channels): the block's tokens, q/k/v and their
  normalised copies, the attention output and the MLP's hidden layer (about 10 C + 2 hidden floats a
  token), plus the position bias with the shift mask (heads * window**2 floats a token), plus the
  outputs of the stages before, which the decoder keeps;
- decoder: the reassembled maps and fusion results (fusion width at each stage's grid, the last
  at twice the finest grid);
- head (the peak at large sizes): conv1's output upsampled to h x w with 128 channels, conv2's
  output (32 channels) and the layout copies around the convolutions;
and the image side at the photo's own size: the RGB float copy, the depth map, its resize and the
picture written. Calibrated against the peak RSS measured on this project's CPU build (see
docs/performance.md, "Memory"); it errs on the high side. No PyTorch needed here.
"""

from dataclasses import dataclass
from pathlib import Path

from .model.config import SwinV2DPTConfig

FLOAT_BYTES = 4  # activations are float32 unless the whole model runs in half precision
HEAD_COPIES = 1.5  # layout copies around the head's convolutions (measured)
IMAGE_BYTES_PER_PIXEL = 32  # photo side: uint8 BGR, float RGB, depth, [0, 1] copy, picture, encoding (measured: ~15 in predict)


def encoder_bytes(config: SwinV2DPTConfig, height: int, width: int) -> int:
    stage_outputs, peak = 0, 0
    for stage, (channels, hidden, heads) in enumerate(zip(config.embed_dims, config.mlp_hidden_dims, config.num_heads)):
        scale = config.patch_size * 2**stage
        grid_h, grid_w = -(-height // scale), -(-width // scale)
        tokens = grid_h * grid_w
        window_area = min(config.window_size, grid_h) * min(config.window_size, grid_w)
        block = tokens * (10 * channels + 2 * hidden + heads * window_area)
        peak = max(peak, stage_outputs + block)
        stage_outputs += tokens * channels
    return peak * FLOAT_BYTES


def decoder_bytes(config: SwinV2DPTConfig, height: int, width: int) -> int:
    stride = config.patch_size
    finest = (height // stride) * (width // stride)
    stage_outputs = sum(finest // 4**stage * dim for stage, dim in enumerate(config.embed_dims))
    reassembled = sum(finest // 4**stage for stage in range(len(config.embed_dims))) * config.fusion_channels
    fusion = 3 * 4 * finest * config.fusion_channels  # the last fusion block at twice the finest grid
    mid, last = config.head_channels
    pixels = height * width
    head = 4 * finest * config.fusion_channels + pixels * (HEAD_COPIES * mid + 2 * last)  # its input, then h x w maps
    return int(max(stage_outputs + reassembled + fusion, head)) * FLOAT_BYTES


def estimate_bytes(config: SwinV2DPTConfig, network_hw, image_hw, batch: int = 1) -> int:
    """Peak memory (bytes) above the loaded model for predicting `batch` images of `image_hw`
    pixels at network input `network_hw`. The depth head runs one image at a time on a CPU; the
    encoder takes the whole batch."""
    height, width = network_hw
    network = max(batch * encoder_bytes(config, height, width), decoder_bytes(config, height, width)
                  + (batch - 1) * encoder_bytes(config, height, width) // 4)
    return int(network + batch * IMAGE_BYTES_PER_PIXEL * image_hw[0] * image_hw[1])


# Synthetic scenes (synthetic/scenes.py), as `eval` renders and scores them at their own size:
SCENE_BYTES_PER_PIXEL = 180  # peak of rendering one scene, or of scoring it (measured: 172 and 133 at 2048x2048)
SAMPLE_BYTES_PER_PIXEL = 7  # each rendered scene kept until it is scored: uint8 BGR and float32 depth


def scene_bytes(side: int, count: int, processes: int = 1) -> int:
    """Peak memory (bytes) of rendering `count` square scenes of `side` pixels in `processes`
    processes at once, keeping them all, and scoring them one by one."""
    return side * side * (SCENE_BYTES_PER_PIXEL * processes + SAMPLE_BYTES_PER_PIXEL * count)


def scene_refusal(side: int, count: int, processes: int = 1, available: int | None = None) -> str | None:
    """None if `count` scenes of `side` pixels can be rendered and scored in the memory available,
    else a one-line reason that gives the largest side that fits."""
    available = available_bytes() if available is None else available
    if available is None:
        return None  # cannot tell: do not stand in the way
    needed = scene_bytes(side, count, processes)
    if needed <= available:
        return None
    largest = int((available / scene_bytes(1, count, processes)) ** 0.5)
    advice = f"the largest scene side that fits is {largest}" if largest else "even the smallest scenes do not fit"
    scenes = f"{count} scenes of {side}x{side} pixels need" if count != 1 else f"a scene of {side}x{side} pixels needs"
    return (f"{scenes} about {needed / 2**30:.1f} GiB, "
            f"{available / 2**30:.1f} GiB available; {advice}")


def available_bytes(device=None) -> int | None:
    """Memory this process can still take: MemAvailable, or the cgroup limit's headroom if lower;
    on a CUDA device, the GPU's free memory."""
    if device is not None and getattr(device, "type", device) == "cuda":
        import torch

        return torch.cuda.mem_get_info(device)[0]
    candidates = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            candidates.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return min(candidates) if candidates else None


def largest_fitting_size(config: SwinV2DPTConfig, image_hw, budget: int, batch: int = 1) -> int | None:
    """The largest long side (a multiple of 32) whose estimate fits `budget`, or None."""
    from .predict import network_size_hw  # numpy/OpenCV only

    best, size = None, config.stride
    while size <= 65536:
        if estimate_bytes(config, network_size_hw(image_hw, size), image_hw, batch) > budget:
            break
        best, size = size, size + config.stride
    return best


def network_hw_for(config: SwinV2DPTConfig, image_hw, square: bool = False, size: int | None = None):
    """The network input size predict uses for an image (predict.network_input_hw, the one rule)."""
    from .predict import network_input_hw  # numpy/OpenCV only

    return network_input_hw(image_hw, config.native_size, square, size)


@dataclass(frozen=True)
class SizeOptionNames:
    """How the caller's user names the settings that a memory refusal advises on: the long side
    fed to the network (`size`), the batch size, and the way to run anyway (None: there is none).
    The command line passes its flags, the web page the names of its fields."""

    size: str
    batch: str
    skip_check: str | None = None


# The names a Python caller wrote: the fields of the image and video jobs' options.
JOB_OPTION_NAMES = SizeOptionNames(size="size", batch="batch_size", skip_check="memory_check=False")


def memory_refusal(config: SwinV2DPTConfig, network_hw, image_hw, names: SizeOptionNames, batch: int = 1,
                   available: int | None = None, device=None) -> str | None:
    """None if the prediction fits in the memory available, else a one-line reason that gives the
    largest size that fits (each setting named as `names` says)."""
    available = available_bytes(device) if available is None else available
    if available is None:
        return None  # cannot tell: do not stand in the way
    needed = estimate_bytes(config, network_hw, image_hw, batch)
    if needed <= available:
        return None
    gib = 2**30
    largest = largest_fitting_size(config, image_hw, available, batch)
    advice = f"the largest {names.size} that fits is {largest}" if largest else f"even the smallest {names.size} does not fit"
    batch_note = f" with {names.batch} {batch}" if batch > 1 else ""
    anyway = f" ({names.skip_check} to try anyway)" if names.skip_check else ""
    return (f"needs about {needed / gib:.1f} GiB at {network_hw[1]}x{network_hw[0]}{batch_note}, "
            f"{available / gib:.1f} GiB available; {advice}{anyway}")


# the names meant for other modules, scripts and benchmarks (scripts' use is checked by tests/test_layers.py)
__all__ = ["JOB_OPTION_NAMES", "SizeOptionNames", "available_bytes", "estimate_bytes", "memory_refusal",
           "network_hw_for"]
