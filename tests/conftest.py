import os
import signal
from collections.abc import Iterator

import pytest

# The suite runs as 2 xdist workers on 2 cores: more than one intra-op thread per worker
# oversubscribes the cores and OpenMP's spinning slows torch tests down ~10x. Children
# (CLI subprocesses, DDP ranks) inherit the variable.
os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _single_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start as one process unless they set RANK/WORLD_SIZE themselves."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _sigint_handler_restored() -> Iterator[None]:
    """Whatever a test (or the code it runs) does with SIGINT, it leaves the handler it
    found: a leaked handler swallows the Ctrl-C of whatever runs next in the process."""
    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, before)
    assert after is before, f"the SIGINT handler was left as {after!r} (was {before!r})"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: the two workers start them at once instead of one worker
    finishing a 2-minute test alone at the end (the suite's wall time is its budget)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
