"""``prepare_report.json``: what was kept per split, and every file skipped and why."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from academicodec.files import atomic_write_bytes
from academicodec.manifests.entries import Fault

REPORT_NAME = "prepare_report.json"


@dataclass
class SplitCounts:
    recordings: int = 0
    supervisions: int = 0
    cuts: int = 0
    without_text: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "recordings": self.recordings,
            "supervisions": self.supervisions,
            "cuts": self.cuts,
            "without_text": self.without_text,
            "seconds": round(self.seconds, 3),
            "hours": round(self.seconds / 3600, 4),
        }


@dataclass
class PrepareReport:
    """The outcome of one ``prepare`` run; written next to the manifests."""

    corpus: str
    source: str
    output: str
    splits: dict[str, SplitCounts] = field(default_factory=dict)
    manifests: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: list[Fault] = field(default_factory=list)
    warnings: list[Fault] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)

    @property
    def totals(self) -> SplitCounts:
        total = SplitCounts()
        for counts in self.splits.values():
            total.recordings += counts.recordings
            total.supervisions += counts.supervisions
            total.cuts += counts.cuts
            total.without_text += counts.without_text
            total.seconds += counts.seconds
        return total

    @property
    def path(self) -> Path:
        return Path(self.output) / REPORT_NAME

    def to_dict(self) -> dict[str, Any]:
        return {
            "corpus": self.corpus,
            "source": self.source,
            "output": self.output,
            "splits": {name: c.to_dict() for name, c in sorted(self.splits.items())},
            "totals": self.totals.to_dict(),
            "manifests": self.manifests,
            "num_skipped": len(self.skipped),
            "skipped": [f.to_dict() for f in sorted(self.skipped, key=_fault_key)],
            "num_warnings": len(self.warnings),
            "warnings": [f.to_dict() for f in sorted(self.warnings, key=_fault_key)],
            "ignored": dict(sorted(self.ignored.items())),
        }

    def write(self) -> Path:
        data = json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
        atomic_write_bytes(self.path, data.encode("utf-8"))
        return self.path


def _fault_key(fault: Fault) -> tuple[str, str]:
    return (fault.path, fault.reason)
