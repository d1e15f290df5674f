"""What ``tokenize`` wrote: ``index.json`` (``CodesIndex``) and ``tokenize_report.json``.

The index is the contract between tokenize and whatever trains on the codes: which model
(and its sha256) made them, at which precision, on which device type and torch version,
the code geometry (codebooks, codebook size, frame rate), and per format every shard's
files, counts and sha256. Version 2 added how the codes were made (precision, compile,
device type, torch version); a version-1 index reads with those unknown (``None``).
Version 3 added ``speed``: the speed-only settings rank 0 ran with (batching, batch and
bucket seconds, workers), which never change the codes and may change on a resume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from academicodec.results import Result

INDEX_NAME = "index.json"
REPORT_NAME = "tokenize_report.json"


@dataclass(frozen=True)
class CodesShard:
    """One output shard in one format."""

    rank: int
    name: str
    files: list[str]
    count: int
    bytes: int
    sha256: str
    extra_sha256: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CodesTotals:
    items: int
    seconds: float
    shards: int


@dataclass
class CodesIndex(Result):
    KIND = "codes index"
    FORMAT_VERSION = 3
    READS = (1, 2, 3)

    model: str
    preset: str
    checkpoint_sha256: str
    num_codebooks: int
    codebook_size: int
    frame_rate: float
    sample_rate: int
    hop_length: int
    plan: str
    formats: dict[str, list[CodesShard]]
    totals: CodesTotals
    skipped: list[dict[str, Any]]
    precision: str | None = None
    compile: bool | None = None
    device_type: str | None = None
    torch_version: str | None = None
    tool_version: str = ""
    speed: dict[str, Any] | None = None
    # Multi-rate codes (SNAC): how a frame's rows split into levels (CodecModel.code_layout);
    # None: every row is one codebook at frame_rate.
    code_layout: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool_version": self.tool_version,
            "model": self.model,
            "preset": self.preset,
            "checkpoint_sha256": self.checkpoint_sha256,
            "num_codebooks": self.num_codebooks,
            "codebook_size": self.codebook_size,
            "frame_rate": self.frame_rate,
            "sample_rate": self.sample_rate,
            "hop_length": self.hop_length,
            "precision": self.precision,
            "compile": self.compile,
            "device_type": self.device_type,
            "torch_version": self.torch_version,
            "speed": self.speed,
            "code_layout": self.code_layout,
            "plan": self.plan,
            "formats": {
                fmt: [asdict(shard) for shard in shards] for fmt, shards in self.formats.items()
            },
            "totals": asdict(self.totals),
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodesIndex:
        return cls(
            model=data["model"],
            preset=data["preset"],
            checkpoint_sha256=data["checkpoint_sha256"],
            num_codebooks=int(data["num_codebooks"]),
            codebook_size=int(data["codebook_size"]),
            frame_rate=float(data["frame_rate"]),
            sample_rate=int(data["sample_rate"]),
            hop_length=int(data["hop_length"]),
            plan=data["plan"],
            formats={
                fmt: [CodesShard(**shard) for shard in shards]
                for fmt, shards in data["formats"].items()
            },
            totals=CodesTotals(**data["totals"]),
            skipped=list(data["skipped"]),
            precision=data.get("precision"),
            compile=data.get("compile"),
            device_type=data.get("device_type"),
            torch_version=data.get("torch_version"),
            tool_version=data.get("tool_version", ""),
            speed=data.get("speed"),
            code_layout=data.get("code_layout"),
        )

    def files(self) -> set[str]:
        """Every codes file the index lists (relative to its folder)."""
        return {name for shards in self.formats.values() for s in shards for name in s.files}


@dataclass
class TokenizeReport(Result):
    """What rank 0 saw: the items skipped (with why), how long the run took and where its
    time went (``timing``: seconds per span, encoder input shapes; version 2)."""

    KIND = "tokenize report"
    FORMAT_VERSION = 2
    READS = (1, 2)

    skipped: list[dict[str, Any]]
    seconds_encoded_here: float
    wall_seconds: float
    timing: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizeReport:
        return cls(
            skipped=list(data["skipped"]),
            seconds_encoded_here=float(data["seconds_encoded_here"]),
            wall_seconds=float(data["wall_seconds"]),
            timing=data.get("timing"),
        )
