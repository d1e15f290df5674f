"""Readers: exact-once over ranks x workers, equal-length training epochs on uneven shards."""

import os
import socket
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from academicodec.pipelines import ShardIndex, ShardSettings, write_shards
from academicodec.pipelines.readers import ExactOnceSamples, TrainingStream


@pytest.fixture(scope="module")
def uneven_shards(prepared, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14 samples in shards of 5, 5, 4: uneven on purpose."""
    manifests, _ = prepared
    out = tmp_path_factory.mktemp("shards")
    write_shards([manifests], out, ShardSettings(sample_rate=16000, samples_per_shard=5))
    assert [r.samples for r in ShardIndex.load(out).shards] == [5, 5, 4]
    return out


@pytest.mark.parametrize("world_size", [1, 2])
@pytest.mark.parametrize("workers", [0, 2])
def test_exact_once(uneven_shards: Path, world_size: int, workers: int) -> None:
    seen: Counter[str] = Counter()
    lengths = []
    for rank in range(world_size):
        dataset = ExactOnceSamples(uneven_shards, rank=rank, world_size=world_size)
        loader = DataLoader(dataset, batch_size=None, num_workers=workers)
        keys = [sample["key"] for sample in loader]
        assert len(keys) == len(dataset)
        lengths.append(len(keys))
        seen.update(keys)
    assert sum(seen.values()) == 14 and set(seen.values()) == {1}
    assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize("workers", [0, 2])
def test_training_stream_equal_epochs_per_rank(uneven_shards: Path, workers: int) -> None:
    counts = []
    for rank in range(2):
        stream = TrainingStream(uneven_shards, shuffle_buffer=4, rank=rank, world_size=2)
        loader = DataLoader(stream, batch_size=2, num_workers=workers, collate_fn=list)
        counts.append(sum(1 for _ in loader))
    assert counts == [4, 4]  # ceil(14 / 2) = 7 samples -> 4 batches on every rank


def test_training_stream_is_reproducible_and_reshuffles(uneven_shards: Path) -> None:
    stream = TrainingStream(uneven_shards, epoch_length=10, shuffle_buffer=6, seed=3)
    first = [s["key"] for s in stream]
    again = [s["key"] for s in stream]
    stream.set_epoch(1)
    other = [s["key"] for s in stream]
    assert len(first) == 10 and first == again and first != other


def _ddp_worker(rank: int, world: int, port: int, shards: str, result: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    stream = TrainingStream(shards, shuffle_buffer=2)  # rank/world from the process group
    loader = DataLoader(stream, batch_size=3, num_workers=1, collate_fn=list)
    steps = 0
    for _ in loader:
        # A collective per batch: a rank with fewer batches would hang its peer here.
        dist.all_reduce(torch.ones(1))
        steps += 1
    dist.barrier()
    Path(f"{result}.{rank}").write_text(str(steps))
    dist.destroy_process_group()


def test_two_gloo_ranks_finish_the_epoch_together(uneven_shards: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = str(tmp_path / "steps")
    mp.start_processes(
        _ddp_worker, args=(2, port, str(uneven_shards), result), nprocs=2, start_method="spawn"
    )
    assert Path(f"{result}.0").read_text() == Path(f"{result}.1").read_text() == "3"
