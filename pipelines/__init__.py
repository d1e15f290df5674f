"""Shards and the streams that read them: writing, indexing, exact-once and training readers."""

from academicodec.pipelines.index import ShardIndex, ShardRecord
from academicodec.pipelines.shard import ShardSettings, write_shards

__all__ = ["ShardIndex", "ShardRecord", "ShardSettings", "write_shards"]
