"""What a checkpoint holds (one dataclass), written atomically, read without unpickling code.

``torch.load(weights_only=True)`` accepts only tensors and plain containers, so RNG states
are stored as tensors and lists, never as numpy objects.
"""

from __future__ import annotations

import logging
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from academicodec.errors import UserError
from academicodec.files import atomic_path

LOG = logging.getLogger(__name__)
LAST = "last.pt"
# Under this much free space a failed write is taken for a full disk.
FULL_DISK_BYTES = 256 * 2**20


@dataclass
class TrainState:
    """Everything needed to continue a run exactly where it stopped."""

    step: int
    epoch: int
    batches_in_epoch: int  # data-stream position inside the epoch
    generator: dict[str, Any]
    discriminator: dict[str, Any]
    optimizer_g: dict[str, Any]
    optimizer_d: dict[str, Any]
    scheduler_g: dict[str, Any]
    scheduler_d: dict[str, Any]
    scaler: dict[str, Any]
    config: dict[str, Any]  # the resolved preset
    rng: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # RunOptions.settings()
    upkeep: dict[str, Any] = field(default_factory=dict)  # CodebookUpkeep.state_dict()
    balancer: dict[str, Any] = field(default_factory=dict)  # LossBalancer.state_dict()
    # What the run trains on (``data_provenance``): an export carries it, eval checks it.
    data: dict[str, Any] = field(default_factory=dict)
    # Steps skipped for non-finite losses or gradients: {"total", "consecutive"}.
    bad_steps: dict[str, int] = field(default_factory=lambda: {"total": 0, "consecutive": 0})


def capture_rng() -> dict[str, Any]:
    version, python_state, gauss = random.getstate()
    _, keys, position, has_gauss, numpy_gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": [version, list(python_state), gauss],
        "numpy": [torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(position)],
        "numpy_gauss": [int(has_gauss), float(numpy_gauss)],
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def capture_rng_all_ranks() -> dict[str, Any]:
    """Every rank's RNG states (``{"ranks": [...]}``), gathered so rank 0 can save them."""
    from academicodec import distrib

    mine = capture_rng()
    if not distrib.is_distributed():
        return {"ranks": [mine]}
    import torch.distributed as dist

    gathered: list[Any] = [None] * distrib.world_size()
    dist.all_gather_object(gathered, mine)
    return {"ranks": gathered}


def restore_rng(states: dict[str, Any], rank: int = 0) -> None:
    """This rank's RNG states from a checkpoint (rank 0's if the world grew)."""
    ranks = states["ranks"]
    state = ranks[rank] if rank < len(ranks) else ranks[0]
    torch.set_rng_state(state["torch"])
    version, python_state, gauss = state["python"]
    random.setstate((version, tuple(python_state), gauss))
    keys, position = state["numpy"]
    has_gauss, numpy_gauss = state["numpy_gauss"]
    np.random.set_state(
        ("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, numpy_gauss)
    )
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(state: TrainState, folder: Path, keep: int) -> Path:
    """``step_XXXXXXXX.pt`` and ``last.pt`` via temporary files; keep the newest ``keep``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{state.step:08d}.pt"
    _atomic_save(asdict(state), path)
    _atomic_save(asdict(state), folder / LAST)
    steps = sorted(folder.glob("step_*.pt"))
    for old in steps[: max(0, len(steps) - keep)]:
        old.unlink()
    return path


def _atomic_save(data: dict[str, Any], path: Path) -> None:
    try:
        with atomic_path(path) as tmp:
            torch.save(data, tmp)
    except RuntimeError as exc:  # torch's zip writer says "unexpected pos" on a full disk
        free = shutil.disk_usage(path.parent).free
        reason = (
            "No space left on device"
            if free < FULL_DISK_BYTES
            else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        )
        raise UserError(
            f"could not write checkpoint {path}: {reason} ({free / 2**20:.0f} MiB free); the "
            f"checkpoints already in {path.parent} are complete (each is written whole, then "
            "renamed): make room and re-run the same command to resume from the newest"
        ) from exc


def load_state_file(path: Path) -> TrainState:
    """One checkpoint file, weights-only; a clear error for pickled code or corruption."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} cannot be loaded weights-only: {first}") from exc
    try:
        return TrainState(**data)
    except TypeError as exc:
        raise UserError(f"{path} is not a training checkpoint: {exc}") from exc


def load_latest(folder: Path) -> TrainState | None:
    """``last.pt``, or the newest readable ``step_*.pt`` when it is corrupt (with a warning)."""
    candidates = [folder / LAST, *sorted(folder.glob("step_*.pt"), reverse=True)]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            return load_state_file(path)
        except UserError as exc:
            LOG.warning("checkpoint %s unusable (%s); trying an older one", path, exc)
    return None
