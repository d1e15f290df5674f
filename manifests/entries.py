"""What a corpus scanner returns: utterances to probe, and the faults it found on the way."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Entry:
    """One audio file a scanner wants in the manifests, with what the corpus says about it."""

    split: str
    id: str
    audio: Path
    text: str | None = None
    speaker: str | None = None
    gender: str | None = None
    language: str | None = None
    custom: dict[str, Any] | None = None
    # The corpus' documented rate; a file at another rate is kept and listed as a warning.
    expected_rate: int | None = None


@dataclass(frozen=True)
class Fault:
    """A file (or directory) that was skipped or kept with a caveat, and why."""

    path: str
    reason: str
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "split": self.split, "reason": self.reason}


@dataclass
class ScanResult:
    """Everything a corpus scanner found before any audio is opened."""

    entries: list[Entry] = field(default_factory=list)
    skipped: list[Fault] = field(default_factory=list)
    warnings: list[Fault] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    # The corpus name the manifests carry when the scanner chose one (``folder --name``).
    name: str | None = None
