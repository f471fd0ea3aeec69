import pytest
import torch

from midas_layout import SMALL_CONFIG, make_midas_state_dict

from muggled_swinv2 import load_model
from strict_skips import (  # noqa: F401  (hooks: a run with tests skipped for a missing package fails)
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)


@pytest.fixture(scope="session", autouse=True)
def private_cache_folder(tmp_path_factory):
    """The suite never reads or fills the user's cache folder (downloads, ONNX exports)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        patch.delenv("MUGGLED_SWINV2_CACHE", raising=False)
        yield


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory):
    """A random-weight checkpoint file in the MiDaS layout (small config, native 64x64)."""
    path = tmp_path_factory.mktemp("weights") / "dpt_swin2_small_64.pt"
    torch.save(make_midas_state_dict(SMALL_CONFIG, seed=11), path)
    return path


@pytest.fixture(scope="session")
def small_model(small_checkpoint):
    return load_model(small_checkpoint)
