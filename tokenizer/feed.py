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

    def __getitems__(self, indices: list[int]) -> list[tuple[int, np.ndarray | None, str | None]]:
        """A whole batch (the DataLoader asks for one at a time): items in a bucket are
        fetched concurrently, not one round trip after another."""
        fetched = prefetch([self.items[i] for i in indices])
        return [self.__getitem__(i, data) for i, data in zip(indices, fetched, strict=True)]


def _collate(batch: list[tuple[int, np.ndarray | None, str | None]], bucket: int) -> dict[str, Any]:
    """Rows zero-padded to the longest, rounded up to whole ``bucket`` samples (if > 0)."""
    good = [(i, a) for i, a, _ in batch if a is not None]
    errors = [(i, e) for i, a, e in batch if a is None]
    longest = max((len(a) for _, a in good), default=0)
    if bucket > 0 and longest:
        longest = -(-longest // bucket) * bucket
    wav = torch.zeros(len(good), 1, longest)
    for row, (_, audio) in enumerate(good):
        wav[row, 0, : len(audio)] = torch.from_numpy(audio)
    lengths = torch.tensor([len(a) for _, a in good], dtype=torch.long)
    return {"indices": [i for i, _ in good], "wav": wav, "lengths": lengths, "errors": errors}


def audio_batches(
    items: list[ShardItem],
    groups: list[list[int]],
    sample_rate: int,
    workers: int,
    bucket: int,
    pin_memory: bool,
) -> DataLoader:
    """One loader yielding ``groups`` (indices into ``items``) in order, as padded batches:
    ``wav`` [B, 1, T], ``lengths`` [B], ``indices`` and the ``errors`` of unreadable items."""
    return DataLoader(
        _Audio(items, sample_rate),
        batch_sampler=groups,
        num_workers=workers,
        collate_fn=partial(_collate, bucket=bucket),
        pin_memory=pin_memory,
    )


def on_device(batches: Iterable[dict[str, Any]], device: str) -> Iterator[dict[str, Any]]:
    """Each batch with ``device_wav``/``device_lengths`` on ``device`` (``wav``/``lengths``
    stay on the host for bookkeeping). On CUDA the next batch's copy is issued on a side
    stream before this batch is handed out, so it overlaps this batch's encode."""
    if not device.startswith("cuda"):
        for batch in batches:
            yield {**batch, "device_wav": batch["wav"], "device_lengths": batch["lengths"]}
        return
    side = torch.cuda.Stream(device)

    def start_copy(batch: dict[str, Any]) -> dict[str, Any]:
        with torch.cuda.stream(side):
            wav = batch["wav"].to(device, non_blocking=True)
            lengths = batch["lengths"].to(device, non_blocking=True)
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
