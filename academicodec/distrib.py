"""Every ``torch.distributed`` call behind helpers that are no-ops in one process.

Rank and world size come from an initialised process group when there is one, otherwise
from the ``RANK``/``WORLD_SIZE`` environment that torchrun and SLURM launchers set. That lets
rank-sliced work (shard writing) run under a plain ``srun`` without a process group, while
model code never has to ask ``is_initialized()`` itself.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist

from academicodec.errors import UserError

T = TypeVar("T")


def is_distributed() -> bool:
    """True when a process group is up. A one-member group (set up only on purpose: the
    launchers start none for one process) runs the same DDP and collective code as many -
    how ``bench/gpu_check.py`` exercises NCCL on a single GPU."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    value = _env_int("RANK", "SLURM_PROCID", default=0)
    size = world_size()
    if not 0 <= value < size:
        # A rank outside the world would find no work of its own and say it wrote it.
        raise UserError(
            f"rank {value} (RANK / SLURM_PROCID) is not in 0..{size - 1}: {size} ranks from "
            f"{world_source()}; give each process a rank below the world size"
        )
    return value


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return _env_int("WORLD_SIZE", "SLURM_NTASKS", default=1)


def local_rank() -> int:
    return _env_int("LOCAL_RANK", "SLURM_LOCALID", default=0)


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (identity in one process) and return it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over ranks in place (identity in one process) and return it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= dist.get_world_size()
    return tensor


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``tensor`` on every rank with rank ``src``'s copy (no-op in one process)."""
    if is_distributed():
        dist.broadcast(tensor, src)
    return tensor


def world_source() -> str:
    """Where the world size comes from, for messages (``SLURM_NTASKS=2``)."""
    if dist.is_available() and dist.is_initialized():
        return "the torch.distributed process group"
    for name in ("WORLD_SIZE", "SLURM_NTASKS"):
        if os.environ.get(name) not in (None, ""):
            return f"{name}={os.environ[name]} (rank from RANK / SLURM_PROCID)"
    return "a single process"


# The give-up message's advice without the other ranks, where one process can take over
# their units (a stage whose output depends on the rank count says otherwise).
RESUME_ALONE = "or unset those variables and re-run the same command: one process resumes"


def wait_for_all(
    fetch: Callable[[int], T | None],
    count: int,
    timeout: float,
    name: Callable[[int], str],
    poll: float = 1.0,
    say: Callable[[str], None] | None = None,
    alone: str = RESUME_ALONE,
) -> list[T]:
    """``fetch(k)`` for ``k < count``, polling until none returns ``None``.

    How rank 0 collects the completion records other ranks write to a shared filesystem:
    it works with or without a process group (plain ``RANK``/``WORLD_SIZE`` launches).
    Waiting is said once (what for, how many ranks and which variables say so), and gives
    up with a one-line error once ``timeout`` seconds pass without a new record
    (``ACADEMICODEC_WAIT_SECONDS`` overrides it): a stray ``SLURM_NTASKS`` in a shell
    must not hang a one-process run for ever.
    """
    timeout = float(os.environ.get("ACADEMICODEC_WAIT_SECONDS", timeout))
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    deadline = time.monotonic() + timeout
    found: dict[int, T] = {}
    announced = False
    while True:
        before = len(found)
        for k in range(count):
            if k not in found and (value := fetch(k)) is not None:
                found[k] = value
        if len(found) == count:
            return [found[k] for k in range(count)]
        if len(found) > before:
            deadline = time.monotonic() + timeout
        missing = [name(k) for k in range(count) if k not in found]
        if not announced:
            say(
                f"rank {rank()}: waiting for {len(missing)} output(s) of other ranks "
                f"(e.g. {missing[0]}); {world_size()} ranks from {world_source()}; "
                f"giving up after {timeout:g} s without progress"
            )
            announced = True
        if time.monotonic() > deadline:
            raise UserError(
                f"gave up waiting for {len(missing)} output(s) of other ranks (e.g. "
                f"{missing[:3]}): {world_size()} ranks from {world_source()}; start the "
                f"other ranks with the same command to resume, {alone}"
            )
        time.sleep(poll)


def _env_int(*names: str, default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError as exc:
                raise UserError(f"environment variable {name}={value!r} is not an integer") from exc
    return default


def local_device(requested: str) -> str:
    """``--device cuda`` under a launcher means this rank's own GPU (``LOCAL_RANK``, or
    SLURM's ``SLURM_LOCALID``), not every rank on GPU 0; checked like ``check_device``."""
    device = check_device(requested)
    if device == "cuda":
        return f"cuda:{local_rank() % torch.cuda.device_count()}"
    return device


def check_device(requested: str, allow_auto: bool = False) -> str:
    """``--device`` checked in one line: ``cpu``, ``cuda``, ``cuda:N`` (and ``auto`` where
    a command picks), and CUDA only where this torch has a device."""
    choices = "cpu | cuda | cuda:N" + (" | auto" if allow_auto else "")
    if requested == "auto" and allow_auto:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", requested):
        raise UserError(f"--device {requested}: choose {choices}")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {requested}: no CUDA device is available to this torch")
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {requested}: only {torch.cuda.device_count()} GPU(s)")
    return requested
