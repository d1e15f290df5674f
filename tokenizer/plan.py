"""Who encodes what, in which batches and output shards - a pure function of the inputs.

Every rank computes the same plan: items go to ranks by longest-first greedy balancing of
audio duration (so ranks finish together), each rank's items (longest first) are cut into
output shards of ``items_per_shard``, numbered globally so file names never collide, and
each shard's items are batched by total padded seconds.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from academicodec.pipelines.items import ShardItem


@dataclass(frozen=True)
class OutputShard:
    number: int  # global, across ranks
    rank: int
    items: list[ShardItem]


def assign_ranks(items: list[ShardItem], world_size: int) -> list[list[ShardItem]]:
    """Longest-first greedy: each item goes to the rank with the least audio so far."""
    ordered = sorted(items, key=lambda item: (-item.seconds, item.key))
    heap = [(0.0, rank) for rank in range(world_size)]
    slices: list[list[ShardItem]] = [[] for _ in range(world_size)]
    for item in ordered:
        total, rank = heapq.heappop(heap)
        slices[rank].append(item)
        heapq.heappush(heap, (total + item.seconds, rank))
    return slices


def output_shards(items: list[ShardItem], world_size: int, per_shard: int) -> list[OutputShard]:
    shards = []
    for rank, mine in enumerate(assign_ranks(items, world_size)):
        for start in range(0, len(mine), per_shard):
            shards.append(OutputShard(len(shards), rank, mine[start : start + per_shard]))
    return shards


def batches(seconds: list[float], budget: float, max_chunk: float) -> list[list[int]]:
    """Indices (of ``seconds``, longest first) grouped so ``count x longest <= budget``.

    ``budget <= 0`` gives one item per batch; an item longer than ``max_chunk`` always
    gets a batch of its own (it is encoded in chunks).
    """
    order = sorted(range(len(seconds)), key=lambda i: -seconds[i])
    groups: list[list[int]] = []
    for index in order:
        long_item = seconds[index] > max_chunk
        if (
            groups
            and budget > 0
            and not long_item
            and seconds[groups[-1][0]] <= max_chunk
            and seconds[groups[-1][0]] * (len(groups[-1]) + 1) <= budget
        ):
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def frames_for(samples: int, hop: int) -> int:
    return math.ceil(samples / hop)


@dataclass(frozen=True)
class ShapeGrid:
    """The fixed set of encoder input shapes of a one-call run (accelerators).

    Every item of at most ``max_samples`` goes to the bucket of its length rounded up to
    whole ``bucket`` samples; every batch of a bucket holds exactly ``rows_for(length)``
    rows at that length (the last batch of a bucket is filled with empty rows, whose codes
    are dropped). Items longer than ``max_samples`` are encoded in chunks of exactly
    ``chunk`` samples (the last one padded and masked). So a run feeds the encoder at most
    one shape per bucket used plus the chunk shape, whatever the corpus size or the number
    of output shards: cuDNN's autotuner and ``torch.compile`` pay once per shape.
    """

    bucket: int  # samples, a multiple of the hop
    budget: int  # padded samples per batch (0: one row a batch)
    chunk: int  # samples, a multiple of the hop
    max_samples: int  # longer items are chunked

    def length(self, samples: int) -> int:
        return max(1, -(-samples // self.bucket)) * self.bucket

    def rows_for(self, length: int) -> int:
        return max(1, self.budget // length)


def expected_samples(item: ShardItem, sample_rate: int) -> int:
    """The item's length at ``sample_rate`` (resampling rounds up: checked in the tests)."""
    return math.ceil(item.frames * sample_rate / item.recording_rate)


def grid_batches(samples: list[int], grid: ShapeGrid) -> list[tuple[list[int], int, int]]:
    """Indices of ``samples`` grouped as ``(indices, rows, length)``: longest bucket first,
    each bucket in input order cut into batches of exactly ``rows`` (the last one short;
    its missing rows are padding). Items over ``grid.max_samples`` get a batch of their own
    at their own length (they are chunked)."""
    buckets: dict[int, list[int]] = {}
    long_items = []
    for index, count in enumerate(samples):
        if count > grid.max_samples:
            long_items.append(index)
        else:
            buckets.setdefault(grid.length(count), []).append(index)
    groups = [([index], 1, samples[index]) for index in long_items]
    for length in sorted(buckets, reverse=True):
        rows = grid.rows_for(length)
        members = buckets[length]
        groups += [(members[i : i + rows], rows, length) for i in range(0, len(members), rows)]
    return groups


def windows(shards: list[OutputShard], seconds: float) -> list[list[OutputShard]]:
    """Consecutive shards grouped until each group holds ``seconds`` of audio (at least one
    shard): one-call batches are cut per group, so they span output shards and few are
    short, while the codes held until a group is written stay bounded."""
    groups: list[list[OutputShard]] = []
    total = 0.0
    for shard in shards:
        if not groups or total >= seconds:
            groups.append([])
            total = 0.0
        groups[-1].append(shard)
        total += sum(item.seconds for item in shard.items)
    return groups
