import os

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
