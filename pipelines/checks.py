"""Every shard a stage reads is checked against its record in ``index.json``.

A shard damaged on disk (bytes overwritten, a truncated copy, a file replaced) must never
change how many items a stage reports without a word: ``tarfile`` silently ends a listing
at the first header it cannot parse, so a shard with 4 KB overwritten "holds" 230 of its
240 samples and nothing else notices. So each reader checks, per shard:

- its size against the record (a stat: always);
- its sha256 against the record (reads the file again: with ``--verify``);
- the number of samples it actually yields against the record's count (free: always);
- a tar that breaks off while being read.

``ShardDamage`` names the shard and says how to repair it (the ``shard`` run that wrote
it, re-run with the same arguments, rewrites every shard whose sha256 no longer matches).
Stages that must stop raise it as a ``UserError``; training, meant to survive faults,
catches it, skips the rest of that shard and counts what it lost.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator

from academicodec import storage
from academicodec.errors import UserError
from academicodec.pipelines.index import ShardRecord
from academicodec.pipelines.tario import iter_tar_samples
from academicodec.storage import Folder


class ShardDamage(UserError):
    """A shard that does not match its ``index.json`` record (one line, with the repair)."""

    def __init__(self, folder: storage.Location, name: str, what: str) -> None:
        self.shard = storage.join(folder, name)
        super().__init__(
            f"shard {self.shard} {what}: it is damaged or was replaced after `shard` wrote "
            f"it; re-run the `academicodec shard` command that wrote {folder} (same "
            "arguments: it rewrites every shard that no longer matches index.json)"
        )


def check_file(folder: storage.Location, record: ShardRecord, verify: bool = False) -> None:
    """Raise ``ShardDamage`` when the file is missing, has another size than its record, or
    (``verify``) another sha256."""
    stored = Folder.of(folder)
    size = stored.size(record.name)
    if size is None:
        raise ShardDamage(folder, record.name, "is missing")
    if size != record.bytes:
        raise ShardDamage(folder, record.name, f"is {size} bytes, index.json says {record.bytes}")
    if verify and stored.sha256(record.name) != record.sha256:
        raise ShardDamage(folder, record.name, "has another sha256 than index.json records")


def checked_samples(
    folder: storage.Location, record: ShardRecord, skip: int = 0, limit: int | None = None
) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``iter_tar_samples`` of one shard that raises ``ShardDamage`` when the tar breaks off
    or yields another number of samples than the record says (samples ``skip`` ..
    ``skip + limit``; a read to the shard's end also proves nothing follows)."""
    wanted = record.samples - skip if limit is None else min(limit, record.samples - skip)
    to_end = skip + wanted >= record.samples
    seen = 0
    path = storage.join(folder, record.name)
    try:
        for sample in iter_tar_samples(path, skip=skip, limit=None if to_end else wanted):
            seen += 1
            if seen > wanted:
                raise ShardDamage(
                    folder, record.name, f"holds more than the {record.samples} samples "
                    "index.json says"
                )  # fmt: skip
            yield sample
    except (tarfile.TarError, EOFError) as exc:
        raise ShardDamage(
            folder, record.name, f"breaks off after sample {skip + seen} ({exc})"
        ) from exc
    if seen < wanted:
        raise ShardDamage(
            folder, record.name,
            f"ends after {skip + seen} of the {record.samples} samples index.json says",
        )  # fmt: skip
