"""``summary.json`` of ``eval`` as types: per codebook level, statistics of every metric
overall, per corpus and per speaker; the CLI, demo, ``info`` and plots read these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from academicodec.results import Result

SUMMARY_NAME = "summary.json"


@dataclass(frozen=True)
class MetricStats:
    """Mean, median and 95% confidence half-width over the items where a metric is
    defined (``count`` 0: none - e.g. STOI of silence)."""

    count: int
    mean: float | None = None
    median: float | None = None
    ci95: float | None = None

    def mean_or_nan(self) -> float:
        return float("nan") if self.mean is None else self.mean

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


Group = dict[str, MetricStats]  # metric -> stats


@dataclass(frozen=True)
class CodebookStats:
    """Per codebook, over every frame of every item: entropy (bits), perplexity, and the
    fraction of its codes used."""

    entropy_bits: list[float]
    perplexity: list[float]
    used: list[float]


def _group_dict(group: Group) -> dict[str, Any]:
    return {metric: stats.to_dict() for metric, stats in group.items()}


def _group(data: dict[str, Any]) -> Group:
    return {metric: MetricStats(**stats) for metric, stats in data.items()}


@dataclass(frozen=True)
class LevelSummary:
    """Results at one number of codebooks."""

    kbps: float
    codes_equal_to_fp32: float
    entropy_bits_per_frame: float
    entropy_coded_kbps: float
    codebooks: CodebookStats
    overall: Group
    by_corpus: dict[str, Group] = field(default_factory=dict)
    by_speaker: dict[str, Group] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kbps": self.kbps,
            "codes_equal_to_fp32": self.codes_equal_to_fp32,
            "entropy_bits_per_frame": self.entropy_bits_per_frame,
            "entropy_coded_kbps": self.entropy_coded_kbps,
            "codebooks": asdict(self.codebooks),
            "overall": _group_dict(self.overall),
            "by_corpus": {name: _group_dict(g) for name, g in self.by_corpus.items()},
            "by_speaker": {name: _group_dict(g) for name, g in self.by_speaker.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LevelSummary:
        return cls(
            kbps=float(data["kbps"]),
            codes_equal_to_fp32=float(data.get("codes_equal_to_fp32", 1.0)),
            entropy_bits_per_frame=float(data["entropy_bits_per_frame"]),
            entropy_coded_kbps=float(data["entropy_coded_kbps"]),
            codebooks=CodebookStats(**data["codebooks"]),
            overall=_group(data["overall"]),
            by_corpus={name: _group(g) for name, g in data.get("by_corpus", {}).items()},
            by_speaker={name: _group(g) for name, g in data.get("by_speaker", {}).items()},
        )


@dataclass
class EvalSummary(Result):
    KIND = "evaluation summary"
    FORMAT_VERSION = 1
    READS = (1,)

    preset: str
    precision: str
    sample_rate: int
    frame_rate: float
    codebook_size: int
    items: int
    levels: dict[str, LevelSummary]  # by n_q, as a string (JSON keys)
    skipped: list[dict[str, Any]]
    # Set when the items scored were (partly) the model's training data.
    training_data_overlap: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "precision": self.precision,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "codebook_size": self.codebook_size,
            "items": self.items,
            "levels": {n_q: level.to_dict() for n_q, level in self.levels.items()},
            "skipped": self.skipped,
            "training_data_overlap": self.training_data_overlap,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalSummary:
        return cls(
            preset=data["preset"],
            precision=data.get("precision", "fp32"),
            sample_rate=int(data["sample_rate"]),
            frame_rate=float(data["frame_rate"]),
            codebook_size=int(data["codebook_size"]),
            items=int(data["items"]),
            levels={n_q: LevelSummary.from_dict(v) for n_q, v in data["levels"].items()},
            skipped=list(data["skipped"]),
            training_data_overlap=data.get("training_data_overlap"),
        )
