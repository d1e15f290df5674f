"""What a run trains on, by identity: how checkpoints, resumes and exports name the data.

A path says where shards are, not what they are: the same shards reached by another path
must resume, and other shards copied to the old path must not. So runs record the shard
index's content fingerprint, and exports carry the manifests' sha256 too, for ``eval`` to
notice a model scored on its own training data.
"""

from __future__ import annotations

from typing import Any

from academicodec import storage
from academicodec.identity import file_sha256
from academicodec.pipelines.index import ShardIndex
from academicodec.storage import Location


def data_identity(path: Location) -> str:
    """A shard set as a checkpoint records it: its index's content fingerprint."""
    return ShardIndex.load(path).identity()


def data_provenance(path: Location) -> dict[str, Any]:
    """What a run trains on, as its checkpoints and exports record it: the shards'
    identity and fingerprint, and the sha256 of each manifest they were made from (so
    ``eval`` can tell when it scores items the model was trained on)."""
    index = ShardIndex.load(path)
    manifests = [m for m in index.manifests if storage.exists(m)]
    return {
        "shards": index.identity(),
        "fingerprint": index.fingerprint,
        "path": str(path),
        "manifest_sha256": sorted({file_sha256(m) for m in manifests}),
    }
