"""Audio to the model: one DataLoader for all of a rank's output shards, and copies to the
device that overlap compute.

A DataLoader per output shard would start its workers again for every shard (and drain
them at its end, leaving the model idle); one loader over every shard's batches, in plan
order, keeps them reading ahead across shard boundaries. On an accelerator batches come
from pinned memory and the next batch is copied on a side stream while this one encodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from academicodec.pipelines.fetch import prefetch
from academicodec.pipelines.items import ShardItem
from academicodec.pipelines.shard import read_item
from academicodec.tokenizer.timing import Timer

# One batch as the loader is asked for it: item indices, then the rows and padded length
# it must have (0, 0: as read, padded to its longest item).
BatchSpec = tuple[list[int], int, int]
_Read = tuple[int, "np.ndarray | None", "str | None", int, int]


class _Audio(Dataset):
    """Reads, downmixes and resamples items in DataLoader workers."""

    def __init__(self, items: list[ShardItem], sample_rate: int) -> None:
        self.items, self.sample_rate = items, sample_rate

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(
        self, index: int, data: bytes | Exception | None = None
    ) -> tuple[int, np.ndarray | None, str | None]:
        try:
            if isinstance(data, Exception):
                raise data
            audio = read_item(self.items[index], self.sample_rate, data)
            if len(audio) == 0:
                return index, None, "empty audio"
            return index, audio, None
        except Exception as exc:  # reported, never fatal
            return index, None, f"unreadable audio: {exc}"

    def __getitems__(self, spec: BatchSpec) -> list[_Read]:
        """A whole batch (the DataLoader asks for one at a time): items in a bucket are
        fetched concurrently, not one round trip after another."""
        indices, rows, length = spec
        fetched = prefetch([self.items[i] for i in indices])
        return [
            (*self.__getitem__(i, data), rows, length)
            for i, data in zip(indices, fetched, strict=True)
        ]


def _collate(batch: list[_Read], bucket: int) -> dict[str, Any]:
    """The rows read, then empty rows up to the spec's count, zero-padded to the spec's
    length (or, for a spec of 0, to the longest row; rounded up to whole ``bucket``s if an
    item turned out longer than planned). ``lengths`` are the rows read; ``device_lengths``
    cover the empty rows too (full length: zeros encode like any audio, and are dropped)."""
    good = [(i, a) for i, a, _, _, _ in batch if a is not None]
    errors = [(i, e) for i, a, e, _, _ in batch if a is None]
    rows, length = batch[0][3], batch[0][4]
    longest = max((len(a) for _, a in good), default=0)
    if longest > length and bucket > 0 and length:
        longest = -(-longest // bucket) * bucket
    length = max(length, longest)
    rows = max(rows, len(good)) if good else 0
    wav = torch.zeros(rows, 1, length)
    for row, (_, audio) in enumerate(good):
        wav[row, 0, : len(audio)] = torch.from_numpy(audio)
    lengths = torch.tensor([len(a) for _, a in good], dtype=torch.long)
    padded = torch.full((rows,), length, dtype=torch.long)
    padded[: len(good)] = lengths
    return {
        "indices": [i for i, _ in good],
        "wav": wav,
        "lengths": lengths,
        "all_lengths": padded,
        "errors": errors,
    }


def audio_batches(
    items: list[ShardItem],
    specs: list[BatchSpec],
    sample_rate: int,
    workers: int,
    bucket: int,
    pin_memory: bool,
) -> DataLoader:
    """One loader yielding ``specs`` in order, as padded batches: ``wav`` [B, 1, T],
    ``lengths`` of the rows read, ``indices`` (into ``items``) and the ``errors`` of
    unreadable items."""
    return DataLoader(
        _Audio(items, sample_rate),
        batch_sampler=specs,  # each spec reaches __getitems__ whole
        num_workers=workers,
        collate_fn=partial(_collate, bucket=bucket),
        pin_memory=pin_memory,
    )


def on_device(
    batches: Iterable[dict[str, Any]], device: str, timer: Timer | None = None
) -> Iterator[dict[str, Any]]:
    """Each batch with ``device_wav``/``device_lengths`` on ``device`` (``wav``/``lengths``
    stay on the host for bookkeeping). On CUDA the next batch's copy is issued on a side
    stream before this batch is handed out, so it overlaps this batch's encode; ``timer``
    records each copy's CUDA events."""
    if not device.startswith("cuda"):
        for batch in batches:
            yield {**batch, "device_wav": batch["wav"], "device_lengths": batch["all_lengths"]}
        return
    side = torch.cuda.Stream(device)

    def start_copy(batch: dict[str, Any]) -> dict[str, Any]:
        with torch.cuda.stream(side):
            events = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            events[0].record(side)
            wav = batch["wav"].to(device, non_blocking=True)
            lengths = batch["all_lengths"].to(device, non_blocking=True)
            events[1].record(side)
        if timer is not None:
            timer.copies.append((events[0], events[1]))
        return {**batch, "device_wav": wav, "device_lengths": lengths}

    source = iter(batches)
    upcoming = next(source, None)
    upcoming = None if upcoming is None else start_copy(upcoming)
    while upcoming is not None:
        current = upcoming
        compute = torch.cuda.current_stream(device)
        compute.wait_stream(side)  # this batch's copy is done before compute reads it
        for key in ("device_wav", "device_lengths"):
            current[key].record_stream(compute)  # its memory is not reused under compute
        following = next(source, None)
        upcoming = None if following is None else start_copy(following)
        yield current
