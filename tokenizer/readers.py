"""Read tokenize's outputs for downstream (VALL-E style) training.

- ``CodesDataset``: a PyTorch ``IterableDataset`` over the webdataset code shards, split by
  rank and DataLoader worker (shard-level, exactly once), optionally shuffled per epoch.
- ``iter_shar`` / ``iter_parquet``: ``(codes [F, K], text_tokens, meta)`` from the
  Lhotse Shar and parquet outputs.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from academicodec import distrib
from academicodec.errors import UserError
from academicodec.pipelines.tario import iter_tar_samples
from academicodec.tokenizer.index import INDEX_NAME, CodesIndex
from academicodec.tokenizer.writers import code_dtype

Item = tuple[np.ndarray, list[int], dict[str, Any]]


class CodesDataset(IterableDataset):
    """Every item of the webdataset code shards once per epoch across ranks and workers.

    Whole shards are dealt round-robin to (rank, worker) pairs, so no item is read twice;
    ``shuffle`` reorders shards and items per ``epoch`` with a fixed seed.
    """

    def __init__(
        self,
        folder: str | Path,
        shuffle: bool = False,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        index = CodesIndex.read(self.folder / INDEX_NAME)
        if "webdataset" not in index.formats:
            raise UserError(f"{folder} has no webdataset output (tokenize --format webdataset)")
        self.shards = [self.folder / s.name for s in index.formats["webdataset"]]
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.rank = distrib.rank() if rank is None else rank
        self.world_size = distrib.world_size() if world_size is None else world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Item]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        consumer, consumers = self.rank * workers + worker, self.world_size * workers
        rng = random.Random(f"{self.seed}-{self.epoch}")
        shards = list(self.shards)
        if self.shuffle:
            rng.shuffle(shards)
        for shard in shards[consumer::consumers]:
            samples = list(iter_tar_samples(shard))
            if self.shuffle:
                random.Random(f"{self.seed}-{self.epoch}-{shard.name}").shuffle(samples)
            for _, files in samples:
                meta = json.loads(files["json"])
                yield np.load(io.BytesIO(files["codes.npy"])), meta.get("text_tokens", []), meta


def iter_shar(folder: str | Path) -> Iterator[Item]:
    from lhotse import CutSet

    for cut in CutSet.from_shar(in_dir=Path(folder) / "shar"):
        supervision = cut.supervisions[0]
        tokens = (supervision.custom or {}).get("text_tokens", [])
        meta = dict((cut.custom or {}).get("source", {}))
        yield cut.load_codes(), tokens, meta


def iter_parquet(folder: str | Path) -> Iterator[Item]:
    import pyarrow.parquet as pq

    dtype = code_dtype(CodesIndex.read(Path(folder) / INDEX_NAME).codebook_size)
    for path in sorted((Path(folder) / "parquet").glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            codes = np.asarray(row.pop("codes"), dtype=dtype)
            yield codes, row.pop("text_tokens") or [], row
