"""Resumable, rank-sliced jobs that write numbered output units (``shard``, ``tokenize``).

One life cycle for every stage that writes shards: a **plan** (a fingerprint of the inputs
and every setting that shapes the output) -> each rank takes its **units** -> each unit's
files are written atomically (``storage.Folder.writing``: a rename on disk, one upload to a
bucket) -> a **completion record** (the plan,
the files' sha256 and sizes) is written last -> rank 0 waits for every record and merges
the index. A re-run keeps each unit whose record belongs to the same plan and whose files
still match it, and redoes the rest, so a run killed at any point (even SIGKILL, between
two writes) resumes to the output an uninterrupted run gives: a unit without a record, or
whose files no longer match, is simply done again. The record's format is the stage's own
payload under ``{"plan": ...}``. OUT may be a local folder or a bucket prefix
(``storage.Folder``): records are objects like any other output, so ranks on machines that
share only a bucket resume and merge the same way.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from academicodec import distrib
from academicodec.storage import Folder

PROGRESS_DIR = ".progress"

# Does a record (in the job's folder) still describe the files on disk? ``hash_contents=False``
# checks presence and sizes only (rank 0 at merge time: each writer hashed as it wrote).
Check = Callable[[Folder, dict[str, Any], bool], bool]


def fingerprint(*parts: Any) -> str:
    """sha256 of ``parts`` as JSON, in order: equal plans give equal fingerprints."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True).encode())
        digest.update(b"|")
    return digest.hexdigest()


@dataclass(frozen=True)
class Job:
    """The units of one plan in ``out``; ``name(k)`` names unit ``k`` (and its record)."""

    out: Folder
    plan: str
    name: Callable[[int], str]
    check: Check
    # What to do without the other ranks (the give-up message's advice).
    alone: str = distrib.RESUME_ALONE

    def record_name(self, k: int) -> str:
        return f"{PROGRESS_DIR}/{self.name(k)}.json"

    def record(self, k: int, hash_contents: bool = True) -> dict[str, Any] | None:
        """Unit ``k``'s record if it belongs to this plan and its files still match."""
        try:
            data = json.loads(self.out.read_text(self.record_name(k)) or "null")
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("plan") != self.plan:
            return None
        try:
            return data if self.check(self.out, data, hash_contents) else None
        except (KeyError, TypeError, ValueError):  # a record of an older layout
            return None

    def pending(self, units: Iterable[int]) -> list[int]:
        """The units of ``units`` without a valid record (to do, or to redo)."""
        return [k for k in units if self.record(k) is None]

    def complete(self, k: int, payload: dict[str, Any]) -> None:
        """Record unit ``k`` as done - only after all its files are in place."""
        self.out.write_bytes(
            self.record_name(k), json.dumps({"plan": self.plan, **payload}).encode()
        )

    def wait_for_all(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """Rank 0: the records of units ``0..count-1``, waiting (up to ``timeout`` without
        progress) for the other ranks' units."""
        return distrib.wait_for_all(
            lambda k: self.record(k, hash_contents=False), count, timeout, self.name,
            alone=self.alone,
        )  # fmt: skip

    def remove_leftovers(self) -> None:
        """Temporary files of writes that never finished (a killed rank); rank 0 calls this
        once every unit is recorded, when no rank is writing any more. (A bucket has none:
        there, files are written locally and uploaded whole.)"""
        if self.out.local is None:
            return
        for path in sorted(self.out.local.rglob(".*"), reverse=True):
            if path.is_file() and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
            elif path.is_dir() and path.name.startswith(".tmp-"):  # a writer's scratch folder
                shutil.rmtree(path, ignore_errors=True)
