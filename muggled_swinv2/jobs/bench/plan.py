"""What a bench run measures: its options, checked before any measuring, turned into cases.

The default plan comes from the release registry (model/config.py): each release at its native
square, at batch 1 and 4 where the release is quick (weights under QUICK_FILE_MIB; the largest one's
batch 4 takes minutes on 2 cores), and the largest quick release also at a wide photo's shape, 7:4
at its native height (base: 384x672), where the peer lays out its windows differently. `--models`,
`--sizes` and `--batch-sizes` replace it with their full product.
"""

from dataclasses import dataclass, replace

import torch

from ...devices import select_device, select_dtype
from ...errors import UserError
from ...io.outputs import OutputRule
from ...model.config import RELEASES
from ...predict import fits_network, parse_size_hw

PEERS = ("transformers", "onnxruntime")
PEER_MISSING = "the peer needs transformers: pip install 'muggled_swinv2[test]' (or run with --no-peer)"
QUICK_FILE_MIB = 500  # releases with smaller weights also run at batch 4 in the default plan
WIDE_HW = (4, 7)  # the default plan's non-square shape (height : width), at the native height
QUICK_BATCHES, BATCHES = [1, 4], [1]


class BenchError(UserError):
    """Options the benchmark cannot run with (one line)."""


@dataclass(frozen=True)
class BenchOptions:
    """What to measure (the `bench` command's options)."""

    models: str = ",".join(RELEASES)  # comma-separated release variants
    sizes: str | None = None  # comma-separated HxW, H or 'native'; None: the default plan
    batch_sizes: list[int] | None = None  # None: the default plan's
    repeats: int = 3
    threads: int = torch.get_num_threads()
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool = False
    peers: str = "transformers"  # comma-separated: transformers, onnxruntime
    no_peer: bool = False
    plain: bool = False  # also time our model with Winograd off
    no_memory: bool = False
    seed: int = 0
    json: str | None = None
    overwrite: bool = False  # replace a --json file this tool wrote


@dataclass(frozen=True)
class Case:
    model: str  # a release variant: tiny, base or large
    size_hw: tuple[int, int]
    batch: int

    @property
    def label(self) -> str:
        return f"{self.model}@{self.size_hw[0]}x{self.size_hw[1]} b{self.batch}"


@dataclass(frozen=True)
class Plan:
    """The checked options (device as chosen; no_peer where transformers is not a peer) and the cases."""

    options: BenchOptions
    device: torch.device
    dtype: torch.dtype
    with_onnxruntime: bool
    cases: list[Case]

    @property
    def with_peer(self) -> bool:
        return not self.options.no_peer

    def models(self) -> list[str]:
        return list(dict.fromkeys(case.model for case in self.cases))

    def sizes(self, model: str) -> list[tuple[int, int]]:
        return list(dict.fromkeys(case.size_hw for case in self.cases if case.model == model))

    def cases_at(self, model: str, size_hw: tuple[int, int]) -> list[Case]:
        return [case for case in self.cases if case.model == model and case.size_hw == size_hw]


def make_plan(options: BenchOptions) -> Plan:
    """The plan, or a UserError (one line) for the first option that cannot be honoured: --json
    (io/outputs.py), the device and dtype, the peers, then the models and sizes."""
    if options.json:
        OutputRule(options.overwrite).check(options.json, "--json")
    device = select_device(options.device)
    dtype = select_dtype(options.dtype, device)
    peers = check_peers(options, device)
    options = replace(options, device=str(device), no_peer="transformers" not in peers)  # recorded in the JSON as resolved
    return Plan(options, device, dtype, "onnxruntime" in peers, plan_cases(options))


def check_peers(options: BenchOptions, device: torch.device) -> list[str]:
    """The peers to run, each installed and able to run with these options."""
    peers = [] if options.no_peer else [name.strip() for name in options.peers.split(",") if name.strip()]
    unknown = [name for name in peers if name not in PEERS]
    if unknown:
        raise BenchError(f"--peers {','.join(unknown)}: choose from {','.join(PEERS)}")
    if "transformers" in peers:
        try:
            import transformers  # noqa: F401
        except ImportError:
            raise BenchError(PEER_MISSING) from None
    if "onnxruntime" in peers:
        from ...export.onnx import ExportError, require_onnx

        try:
            require_onnx()
        except ExportError as error:
            raise BenchError(f"the onnxruntime peer: {error}") from None
        if device.type != "cpu" or options.dtype != "float32" or options.compile:
            raise BenchError("the onnxruntime peer runs on CPU in float32, uncompiled")
    return peers


def plan_cases(options: BenchOptions) -> list[Case]:
    models = [name.strip() for name in options.models.split(",") if name.strip()]
    unknown = [name for name in models if name not in RELEASES]
    if unknown or not models:
        raise BenchError(f"unknown model {','.join(unknown) or options.models!r}; choose from {','.join(RELEASES)}")
    cases = []
    for model in models:
        if options.sizes:
            sizes = [(case_size(text.strip(), model), BATCHES) for text in options.sizes.split(",") if text.strip()]
        else:
            sizes = default_sizes(model)
        for size_hw, batches in sizes:
            cases.extend(Case(model, size_hw, batch) for batch in options.batch_sizes or batches)
    return cases


def default_sizes(model: str) -> list[tuple[tuple[int, int], list[int]]]:
    """[(size_hw, batches)] of the default plan for a release (the module docstring)."""
    release = RELEASES[model]
    quick = [other for other in RELEASES.values() if other.file_mib < QUICK_FILE_MIB]
    native = release.native_size
    sizes = [((native, native), QUICK_BATCHES if release in quick else BATCHES)]
    if release == max(quick, key=lambda other: other.file_mib):
        sizes.append(((native, native * WIDE_HW[1] // WIDE_HW[0]), BATCHES))
    return sizes


def case_size(text: str, model: str) -> tuple[int, int]:
    """A --sizes entry, 'native', 'H' (square) or 'HxW' -> (H, W), positive multiples of the model's stride."""
    config = RELEASES[model].config
    if text == "native":
        return (config.native_size,) * 2
    if (size_hw := parse_size_hw(text)) is None:
        raise BenchError(f"--sizes {text!r}: expected native, H or HxW")
    if not fits_network(size_hw, config.stride):
        raise BenchError(f"--sizes {text}: {model} needs positive multiples of {config.stride}")
    return size_hw
