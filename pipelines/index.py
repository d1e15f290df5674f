"""``index.json`` of a shard folder: per-shard counts, seconds, bytes and sha256, plus totals.

A reader trusts the index for sample counts (to split work evenly) and can verify any shard
against its sha256; a resumed run uses the same records to decide what to rewrite.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from academicodec import storage
from academicodec.errors import UserError
from academicodec.identity import index_identity, shards_fingerprint
from academicodec.results import Result
from academicodec.storage import Folder

INDEX_NAME = "index.json"


@dataclass(frozen=True)
class ShardRecord:
    name: str
    samples: int
    seconds: float
    bytes: int
    sha256: str

    def verify(self, folder: Folder, hash_contents: bool = True) -> str | None:
        """``None`` when the stored file is this record's shard, else what is wrong
        (``hash_contents=False``: presence and size only, for files this run just wrote)."""
        return folder.problem([self.name], [self.sha256], self.bytes, hash_contents)


@dataclass
class ShardIndex(Result):
    """What ``shard`` wrote. ``plan`` fingerprints the arguments and items that shaped it."""

    KIND = "shard index"
    FORMAT_VERSION = 1
    READS = (1,)

    sample_rate: int
    format: str
    samples_per_shard: int
    plan: str
    shards: list[ShardRecord]
    manifests: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    tool_version: str = ""

    @property
    def total_samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def fingerprint(self) -> str:
        """What the shards *are*, whatever path they are reached by: the sha256 of every
        shard's name, count and sha256 (and the rate). Resume and re-run checks compare
        this, never path strings."""
        return shards_fingerprint(self.to_dict())

    def identity(self) -> str:
        """The shards as a message shows them (``academicodec.identity``)."""
        return str(index_identity(self.to_dict()))

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.shards)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool_version": self.tool_version,
            "sample_rate": self.sample_rate,
            "format": self.format,
            "samples_per_shard": self.samples_per_shard,
            "plan": self.plan,
            "settings": self.settings,
            "manifests": self.manifests,
            "totals": {
                "shards": len(self.shards),
                "samples": self.total_samples,
                "seconds": round(self.total_seconds, 3),
                "hours": round(self.total_seconds / 3600, 4),
                "bytes": sum(s.bytes for s in self.shards),
                "skipped": len(self.skipped),
            },
            "shards": [asdict(s) for s in self.shards],
            "skipped": self.skipped,
        }

    def write(self, folder: Folder | storage.Location) -> storage.Location:  # type: ignore[override]
        folder = folder if isinstance(folder, Folder) else Folder.of(folder)
        return super().write(folder.path(INDEX_NAME))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardIndex:
        return cls(
            sample_rate=int(data["sample_rate"]),
            format=data["format"],
            samples_per_shard=int(data["samples_per_shard"]),
            plan=data["plan"],
            shards=[ShardRecord(**s) for s in data["shards"]],
            manifests=list(data.get("manifests", [])),
            settings=dict(data.get("settings", {})),
            skipped=list(data.get("skipped", [])),
            tool_version=data.get("tool_version", ""),
        )

    @classmethod
    def load(cls, path: storage.Location) -> ShardIndex:
        """Load ``path`` (an ``index.json`` or the folder holding one; local or a URL)."""
        if not storage.is_url(path):
            path = Path(path)
        if storage.is_dir(path):
            path = storage.join(path, INDEX_NAME)
        if not storage.is_file(path):
            raise UserError(f"{path} not found: is this a shard folder written by 'shard'?")
        return cls.read(path)

    def verify(self, folder: storage.Location) -> dict[str, str]:
        """Every shard that does not match its record, with the reason."""
        problems = {}
        for record in self.shards:
            problem = record.verify(Folder.of(folder))
            if problem:
                problems[record.name] = problem
        return problems
