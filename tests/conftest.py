import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite runs as 2 xdist workers on 2 cores: more than one intra-op thread per worker
# oversubscribes the cores and OpenMP's spinning slows torch tests down ~10x. Children
# (CLI subprocesses, DDP ranks) inherit the variable.
os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402

torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long tests first: the codebook-health runs (minutes each), then the other ``slow``
    ones. With ``--dist worksteal`` (Makefile) each worker starts on half the list and the
    one that runs dry takes the other's queued short tests, so neither ends alone on a
    minutes-long test while the other core idles."""

    def order(item: pytest.Item) -> int:
        if "test_codebook_health" in item.nodeid:
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=order)


@pytest.fixture(autouse=True)
def _single_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start as one process unless they set RANK/WORLD_SIZE themselves."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _sigint_handler_restored() -> Iterator[None]:
    """Whatever a test (or the code it runs) does with SIGINT, it leaves the handler it
    found: a leaked handler swallows the Ctrl-C of whatever runs next in the process."""
    before, ignored = signal.getsignal(signal.SIGINT), _sigint_ignored()
    yield
    after, ignored_after = signal.getsignal(signal.SIGINT), _sigint_ignored()
    signal.signal(signal.SIGINT, before)  # also undoes an "ignore" set below Python
    assert after is before, f"the SIGINT handler was left as {after!r} (was {before!r})"
    assert ignored_after == ignored, "SIGINT was left ignored (set below Python's signal module)"


def _sigint_ignored() -> bool:
    """Whether the kernel ignores SIGINT for this process (Linux: SigIgn in /proc): a C
    library can set that without Python's ``signal.getsignal`` knowing."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return False
    mask = next((line.split()[1] for line in status.splitlines() if line.startswith("SigIgn")), "0")
    return bool(int(mask, 16) & (1 << (signal.SIGINT - 1)))
