"""Filesystem helpers every stage shares: atomic writes, checked output folders, hashing."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from academicodec.errors import UserError

HASH_BLOCK = 1 << 20


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed over ``path`` when the body ends.

    A reader (or a resumed run) sees either the old file or the complete new one, never a
    partial write. The file gets the mode an ordinary ``open`` would give (0666 less the
    umask): ``mkstemp`` alone makes it 0600, which colleagues on a shared filesystem cannot
    read. A failed write (a full disk) is a one-line error naming the file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"could not write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def umask() -> int:
    """The process umask, read without changing it (``os.umask`` sets it, briefly, for
    every thread; /proc shows it on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return sha256_stream(f)


def sha256_stream(f: BinaryIO) -> str:
    """sha256 of what is left to read in ``f`` (a local or a remote file)."""
    digest = hashlib.sha256()
    while block := f.read(HASH_BLOCK):
        digest.update(block)
    return digest.hexdigest()
