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
