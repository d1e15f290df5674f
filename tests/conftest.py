import os

import pytest


@pytest.fixture(autouse=True)
def _single_process_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start as one process unless they set RANK/WORLD_SIZE themselves."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
