"""Two ways to read a shard set: each sample exactly once, or an endless shuffled stream.

Both split work by rank (``academicodec.distrib``) and by DataLoader worker themselves, so
webdataset's node splitter (which raises under WORLD_SIZE>1, and gives ranks unequal counts
over uneven shards - a DDP hang) is never involved.

- ``ExactOnceSamples``: for tokenizing and evaluation. The index's per-shard counts give
  every sample a global position; rank ``r`` takes a contiguous slice of positions, and each
  of its workers a contiguous sub-slice, so the union over ranks and workers is every sample
  once, and slices differ by at most one sample.
- ``TrainingStream``: for training. Each worker draws shards at random (weighted by their
  sample counts), shuffles through a buffer, and stops after a fixed number of samples, so
  every rank yields exactly ``epoch_length`` samples per epoch, however uneven the shards.
  A shard that does not match ``index.json`` (``checks``), a corrupt member or a truncated
  shard (a bad disk, an interrupted copy) is skipped with a warning naming the shard, never
  a crash; every sample it should have held is counted: each sample carries how many were
  skipped before it (``skipped``), which the trainer logs as ``data/skipped`` and reports
  at the end.

``ExactOnceSamples`` instead stops at a damaged shard, naming it (``checks.ShardDamage``):
exactly-once means no item may go missing.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from academicodec import distrib, storage
from academicodec.errors import UserError
from academicodec.pipelines.checks import ShardDamage, check_file, checked_samples
from academicodec.pipelines.decode import decode_sample
from academicodec.pipelines.index import INDEX_NAME, ShardIndex, ShardRecord

Sample = dict[str, Any]
LOG = logging.getLogger("academicodec.data")


# What this process has warned about: training draws a damaged shard again and again, and
# one warning per shard (per corrupt sample) says it; every draw still counts its losses.
_WARNED: set[str] = set()


def _warn_once(folder: storage.Location, message: str) -> None:
    if f"{folder}: {message}" not in _WARNED:
        _WARNED.add(f"{folder}: {message}")
        LOG.warning("%s (warned once; every draw of it counts in data/skipped)", message)


def _read_shard(folder: storage.Location, record: ShardRecord) -> Iterator[Sample | None]:
    """Each sample of ``record``'s shard; ``None`` (after a warning naming the shard, the
    first time) for each one that does not decode or is missing: a shard of another size
    than its record gives ``record.samples`` Nones, one that breaks off a None for each
    sample it lost."""
    seen = 0
    try:
        check_file(folder, record)
        for key, files in checked_samples(folder, record):
            seen += 1
            try:
                yield decode_sample(key, files)
            except Exception as exc:  # a corrupt member: skip it, keep training
                _warn_once(folder, f"skipping sample {key} of {record.name}: {exc}")
                yield None
    except ShardDamage as exc:
        _warn_once(folder, f"skipping {max(record.samples - seen, 0)} sample(s): {exc}")
        for _ in range(record.samples - seen):
            yield None


def _folder_and_index(path: storage.Location) -> tuple[storage.Location, ShardIndex]:
    """The shard folder (a local path or a URL) and its index, from either of them."""
    if not storage.is_url(path):
        path = Path(path)
    if storage.is_dir(path):
        return path, ShardIndex.load(storage.join(path, INDEX_NAME))
    folder = str(path).rsplit("/", 1)[0] if storage.is_url(path) else Path(path).parent
    return folder, ShardIndex.load(path)


def _worker() -> tuple[int, int]:
    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def _slice(total: int, part: int, parts: int) -> tuple[int, int]:
    return total * part // parts, total * (part + 1) // parts


class ExactOnceSamples(IterableDataset):
    """Every sample of a shard set once across all ranks and DataLoader workers, in order."""

    def __init__(
        self,
        index: storage.Location,
        decode: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        verify: bool = False,
    ) -> None:
        super().__init__()
        self.folder, self.index = _folder_and_index(index)
        self.decode = decode
        self.verify = verify  # also compare each shard's sha256 with index.json
        self.rank = distrib.rank() if rank is None else rank
        self.world_size = distrib.world_size() if world_size is None else world_size

    def _rank_range(self) -> tuple[int, int]:
        return _slice(self.index.total_samples, self.rank, self.world_size)

    def __len__(self) -> int:
        start, end = self._rank_range()
        return end - start

    def __iter__(self) -> Iterator[Sample]:
        rank_start, rank_end = self._rank_range()
        worker, workers = _worker()
        low, high = _slice(rank_end - rank_start, worker, workers)
        start, end = rank_start + low, rank_start + high
        offset = 0
        for record in self.index.shards:
            first, last = max(start, offset), min(end, offset + record.samples)
            if first < last:
                check_file(self.folder, record, self.verify)
                samples = checked_samples(self.folder, record, first - offset, last - first)
                for key, files in samples:
                    yield self._sample(record, key, files)
            offset += record.samples
            if offset >= end:
                break

    def _sample(self, record: ShardRecord, key: str, files: dict[str, bytes]) -> Sample:
        if not self.decode:
            return {"key": key, **files}
        try:
            return decode_sample(key, files)
        except Exception as exc:
            raise ShardDamage(
                self.folder, record.name, f"has a sample {key} that does not decode ({exc})"
            ) from exc


class TrainingStream(IterableDataset):
    """An endless shuffled stream cut into epochs of exactly ``epoch_length`` samples per rank.

    ``transform`` (e.g. a random crop) runs on each decoded sample in the worker. Call
    ``set_epoch`` before each epoch so the order changes but stays reproducible.
    """

    def __init__(
        self,
        index: storage.Location,
        epoch_length: int | None = None,
        shuffle_buffer: int = 256,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        transform: Callable[[Sample, random.Random], Sample] | None = None,
    ) -> None:
        super().__init__()
        self.folder, self.index = _folder_and_index(index)
        self.rank = distrib.rank() if rank is None else rank
        self.world_size = distrib.world_size() if world_size is None else world_size
        total = self.index.total_samples
        if total == 0:
            raise UserError(f"{self.folder} holds no samples (its index.json lists none)")
        self.epoch_length = epoch_length or math.ceil(total / self.world_size)
        self.shuffle_buffer = max(1, shuffle_buffer)
        self.seed = seed
        self.epoch = 0
        self.transform = transform

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.epoch_length

    def full_batches(self, batch_size: int, workers: int) -> int:
        """Full batches of ``batch_size`` an epoch gives this rank when ``workers`` loader
        workers each batch their own slice (a DataLoader drops each one's incomplete end)."""
        parts = max(1, workers)
        slices = (_slice(self.epoch_length, k, parts) for k in range(parts))
        return sum((high - low) // batch_size for low, high in slices)

    def __iter__(self) -> Iterator[Sample]:
        worker, workers = _worker()
        low, high = _slice(self.epoch_length, worker, workers)
        rng = random.Random(f"{self.seed}-{self.epoch}-{self.rank}-{worker}")
        lost = [0]  # unreadable samples met since the last sample this worker yielded
        source = self._endless(rng, lost)
        buffer: list[Sample] = []
        capacity = min(self.shuffle_buffer, high - low)
        for _ in range(high - low):
            while len(buffer) < capacity:
                buffer.append(next(source))
            position = rng.randrange(len(buffer))
            buffer[position], buffer[-1] = buffer[-1], buffer[position]
            # The count rides on the next sample out (not on the sample read after the
            # loss, which may stay in the buffer past the epoch's end).
            yield {**buffer.pop(), "skipped": lost[0]}
            lost[0] = 0

    def _endless(self, rng: random.Random, lost: list[int]) -> Iterator[Sample]:
        """Shards drawn with replacement, weighted by size: each sample equally likely.

        Unreadable samples are skipped and counted in ``lost``; a shard that yields nothing
        at all is dropped from the draw, and a stream left with no readable shard is an
        error."""
        records = [r for r in self.index.shards if r.samples > 0]
        while records:
            record = rng.choices(records, [r.samples for r in records])[0]
            good = 0
            for sample in _read_shard(self.folder, record):
                if sample is None:
                    lost[0] += 1
                    continue
                good += 1
                yield sample if self.transform is None else self.transform(sample, rng)
            if not good:
                records.remove(record)
        raise UserError(
            f"{self.folder}: no shard has a readable sample (see the warnings above); re-run "
            "the `academicodec shard` command that wrote it"
        )
