"""Deterministic tar writing and sample-grouped tar reading.

Members carry no timestamps or owners, so the same samples give byte-identical shards; that
is what lets a resumed run be checked against an uninterrupted one by sha256.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)


class TarSampleWriter:
    """Writes ``<key>.<ext>`` members as a GNU tar stream with fixed metadata.

    Headers come from ``tarfile.TarInfo`` (so any tar reader agrees with them); the stream
    is assembled here, which costs a third of ``TarFile.addfile``'s copying per member.
    """

    def __init__(self, stream: HashingWriter | BinaryIO) -> None:
        self.stream = stream
        self.offset = 0

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
            header = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
            padding = -len(data) % tarfile.BLOCKSIZE
            self._write(header)
            self._write(data)
            if padding:
                self._write(b"\0" * padding)

    def close(self) -> None:
        """End-of-archive: two zero blocks, then zeros up to a whole record (as tarfile does)."""
        self._write(b"\0" * (2 * tarfile.BLOCKSIZE))
        remainder = self.offset % tarfile.RECORDSIZE
        if remainder:
            self._write(b"\0" * (tarfile.RECORDSIZE - remainder))

    def _write(self, data: bytes) -> None:
        self.stream.write(data)
        self.offset += len(data)


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
