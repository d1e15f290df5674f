"""How ``encode``/``decode`` run a batch: length-sorted groups, spread over threads on CPU.

On CPU, batching many seconds of audio makes every activation fall out of cache: the
original HiFi-Codec encodes 27% slower per clip at batch 8 than at batch 1 (measured). Since
every layer is length-aware, any grouping gives the same codes, so on CPU we run groups of at
most ``CPU_GROUP_SAMPLES`` padded samples, and run them concurrently, one intra-op thread
each: across clips, parallelism is nearly free, while inside one conv it is not (+10%
throughput measured on 2 cores). On accelerators the whole batch runs as one padded call
(``encode(..., one_call=True)``, the default there), at the padded length the caller chose:
the tokenizer rounds it up to whole buckets so kernels and ``torch.compile`` see few shapes.

Running groups concurrently needs one intra-op thread per group, a process-wide torch
setting, so the model never changes it: the caller opens a ``GroupRunner`` for as long as
it encodes (the tokenizer, eval, benchmarks) and passes it to ``encode``/``decode``;
without one, groups run one after the other with the caller's threads.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
from torch import Tensor

from academicodec.models.precision import autocast_state

R = TypeVar("R")

CPU_GROUP_SAMPLES = 1 << 17


def micro_batches(lengths: Tensor, device: torch.device, single: bool = False) -> list[Tensor]:
    """Row indices, longest first, grouped so each group's padded size stays in cache
    (``single``: one row a group)."""
    rows = torch.argsort(lengths, descending=True)
    if single:
        return [row[None] for row in rows]
    if device.type != "cpu":
        return [rows]
    groups: list[list[int]] = []
    for row in rows.tolist():
        if groups and int(lengths[groups[-1][0]]) * (len(groups[-1]) + 1) <= CPU_GROUP_SAMPLES:
            groups[-1].append(row)
        else:
            groups.append([row])
    return [torch.tensor(group, device=device) for group in groups]


class GroupRunner:
    """A pool with one worker per intra-op thread; while open, torch runs one intra-op
    thread per call (restored on close), so concurrent groups do not oversubscribe."""

    def __init__(self) -> None:
        self.threads = torch.get_num_threads()
        self.pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> GroupRunner:
        if self.threads > 1:
            self.pool = ThreadPoolExecutor(max_workers=self.threads)
            torch.set_num_threads(1)
        return self

    def __exit__(self, *_: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()
            torch.set_num_threads(self.threads)
            self.pool = None


def run_groups(
    groups: list[Tensor], work: Callable[[Tensor], R], runner: GroupRunner | None = None
) -> list[R]:
    """``work(group)`` for every group: concurrently on ``runner``'s pool when the groups
    are on CPU and a runner is open, else one after the other."""
    pool = None if runner is None else runner.pool
    if pool is None or len(groups) < 2 or groups[0].device.type != "cpu":
        return [work(group) for group in groups]
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
    autocast, dtype = autocast_state("cpu")

    def in_caller_mode(group: Tensor) -> R:  # grad modes and autocast are thread-local
        with (
            torch.inference_mode(inference),
            torch.set_grad_enabled(grad),
            torch.autocast("cpu", dtype, enabled=autocast),
        ):
            return work(group)

    return list(pool.map(in_caller_mode, groups))


def assemble(groups: list[Tensor], parts: list[Tensor], rows: int, length: int) -> Tensor:
    """Each group's ``[g, C, L]`` result written at its rows of a zero ``[rows, C, length]``."""
    out = parts[0].new_zeros(rows, parts[0].shape[1], length)
    for group, part in zip(groups, parts, strict=True):
        out[group, :, : part.shape[-1]] = part
    return out
