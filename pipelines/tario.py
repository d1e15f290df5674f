"""Deterministic tar writing and sample-grouped tar reading.

Members carry no timestamps or owners, so the same samples give byte-identical shards; that
is what lets a resumed run be checked against an uninterrupted one by sha256.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class HashingWriter(io.RawIOBase):
    """A write-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.size

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)


class TarSampleWriter:
    """Appends ``<key>.<ext>`` members to an open tar stream with fixed metadata."""

    def __init__(self, stream: BinaryIO) -> None:
        # Closed by close()/__exit__; the stream itself stays the caller's.
        self.tar = tarfile.open(fileobj=stream, mode="w", format=tarfile.GNU_FORMAT)  # noqa: SIM115

    def __enter__(self) -> TarSampleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, key: str, files: dict[str, bytes]) -> None:
        for ext, data in files.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self.tar.addfile(info, io.BytesIO(data))

    def close(self) -> None:
        self.tar.close()


def split_member(name: str) -> tuple[str, str]:
    """``dir/key.codes.npy`` -> (``dir/key``, ``codes.npy``): the webdataset convention."""
    head, _, base = name.rpartition("/")
    key, _, ext = base.partition(".")
    return (f"{head}/{key}" if head else key), ext


def iter_tar_samples(
    path: Path, skip: int = 0, limit: int | None = None
) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield ``(key, {ext: bytes})`` per sample; ``skip`` samples are passed over unread."""
    yielded = 0
    index = -1
    current_key: str | None = None
    current: dict[str, bytes] = {}
    with tarfile.open(path, mode="r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, ext = split_member(member.name)
            if key != current_key:
                if current_key is not None and index >= skip:
                    yield current_key, current
                    yielded += 1
                    if limit is not None and yielded >= limit:
                        return
                current_key, current, index = key, {}, index + 1
            if index >= skip:
                handle = tar.extractfile(member)
                current[ext] = handle.read() if handle else b""
        if current_key is not None and index >= skip and (limit is None or yielded < limit):
            yield current_key, current
