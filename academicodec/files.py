"""Filesystem helpers every stage shares: atomic writes, checked output folders, hashing."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def file_problem(
    folder: Path, names: list[str], sha256: list[str], size: int, hash_contents: bool = True
) -> str | None:
    """``None`` when the files ``names`` (relative to ``folder``) are the ones recorded -
    all present, ``size`` bytes together and, with ``hash_contents``, each with its sha256 -
    else what is wrong. ``hash_contents=False`` is the cheap check for files this run just
    wrote (their writer hashed them)."""
    paths = [folder / name for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if not path.is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    actual = sum(path.stat().st_size for path in paths)
    if actual != size:
        return f"size {actual} != {size}"
    if hash_contents and [sha256_file(path) for path in paths] != sha256:
        return "sha256 mismatch"
    return None
