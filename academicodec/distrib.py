"""Every ``torch.distributed`` call behind helpers that are no-ops in one process.

Rank and world size come from an initialised process group when there is one, otherwise
from the ``RANK``/``WORLD_SIZE`` environment that torchrun and SLURM launchers set. That lets
rank-sliced work (shard writing) run under a plain ``srun`` without a process group, while
model code never has to ask ``is_initialized()`` itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def is_distributed() -> bool:
    """True when a process group is up and has more than one member."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return _env_int("RANK", "SLURM_PROCID", default=0)


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


def wait_for_all(
    fetch: Callable[[int], T | None],
    count: int,
    timeout: float,
    name: Callable[[int], str],
    poll: float = 1.0,
) -> list[T]:
    """``fetch(k)`` for ``k < count``, polling until none returns ``None``.

    How rank 0 collects the completion records other ranks write to a shared filesystem:
    it works with or without a process group (plain ``RANK``/``WORLD_SIZE`` launches).
    """
    deadline = time.monotonic() + timeout
    found: dict[int, T] = {}
    while True:
        for k in range(count):
            if k not in found and (value := fetch(k)) is not None:
                found[k] = value
        if len(found) == count:
            return [found[k] for k in range(count)]
        if time.monotonic() > deadline:
            from academicodec.errors import UserError

            missing = [name(k) for k in range(count) if k not in found]
            raise UserError(
                f"gave up waiting for {len(missing)} shard(s) from other ranks "
                f"(e.g. {missing[:3]}); re-run the same command to resume"
            )
        time.sleep(poll)


def _env_int(*names: str, default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError as exc:
                from academicodec.errors import UserError

                raise UserError(f"environment variable {name}={value!r} is not an integer") from exc
    return default
