"""One live writer per OUT and rank: a second process writing the same output is refused.

Two ``train --out R`` started one after the other both resumed from the same checkpoint and
wrote the same files (every log line twice, twice the compute, exit 0 for both); two
``tokenize`` runs into one OUT both did all the work. So every stage takes an exclusive
lock on ``OUT/.writer-rank<R>.lock`` when it claims OUT (``outputs.claim_folder``): one
file per rank, because the ranks of one multi-process run (torchrun, ``RANK=`` launches)
write one OUT together by design. The file names the holder (pid, host, command, start),
so the refusal can say who writes there.

``fcntl.flock`` is released by the kernel when its process ends, however it ends (even
SIGKILL): a lock left by a dead process is simply taken over, with no timestamps or pid
checks to get wrong. A stage releases its locks when it returns (``stage_scope``), so a
Python caller may run stages on one OUT one after the other; within one process the lock
is re-entrant (a stage that claims its OUT twice, or calls another stage's function on it).
A bucket prefix (s3://) cannot be locked this way and is not: its ranks write disjoint
objects, and a second writer of one rank is the user's to avoid (docs/data.md).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from academicodec.errors import UserError

try:  # POSIX only; elsewhere writers are not locked (the project targets Linux)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_PREFIX = ".writer-rank"
F = TypeVar("F", bound=Callable[..., Any])


# The fd of each lock this process holds, by lock file, and every claim not yet released
# in the order it was made (a lock is held while a claim of it is in ``_ORDER``).
_HELD: dict[Path, int] = {}
_ORDER: list[Path] = []


def lock_name(rank: int) -> str:
    return f"{LOCK_PREFIX}{rank}.lock"


def hold(out: Path, stage: str, rank: int) -> None:
    """Lock ``out`` for this process as writer ``rank`` of ``stage``, or refuse in one line
    naming the live process that holds it."""
    if fcntl is None:
        return
    path = (out / lock_name(rank)).resolve()
    if path in _HELD:  # re-entrant: this process holds it already
        _ORDER.append(path)
        return
    fd = _acquire(path, out, stage)
    record = {
        "pid": os.getpid(), "host": socket.gethostname(), "stage": stage,
        "command": _command_line(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }  # fmt: skip
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    _HELD[path] = fd
    _ORDER.append(path)


def _command_line() -> str:
    """This process's command as the user typed it (``python -m academicodec`` included)."""
    program = Path(sys.argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.name
    return " ".join([name, *sys.argv[1:]])[:300]


def _acquire(path: Path, out: Path, stage: str) -> int:
    """An fd holding the exclusive lock on ``path``. A file unlinked by a releasing holder
    between our open and our lock is not the lock any more: open the new one and retry."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(fd)
            os.close(fd)
            raise UserError(
                f"OUT {out} is being written by another live process ({holder}); wait for it "
                f"to finish or stop it, or give this {stage} another OUT"
            ) from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and current.st_ino == os.fstat(fd).st_ino:
            return fd
        os.close(fd)


def _describe(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict) or "pid" not in data:
        return "its details not written yet"
    host = "" if data.get("host") == socket.gethostname() else f" on {data.get('host')}"
    return (
        f"pid {data['pid']}{host}, {data.get('stage', '?')} since {data.get('since', '?')}: "
        f"{data.get('command', '?')}"
    )


def release_since(mark: int) -> None:
    """Release the claims made after ``mark`` (a length of ``_ORDER``); a lock whose last
    claim goes is unlocked and its file removed."""
    while len(_ORDER) > mark:
        path = _ORDER.pop()
        if path not in _ORDER:  # its last claim
            fd = _HELD.pop(path)
            with contextlib.suppress(OSError):  # unlinked while locked: see _acquire
                path.unlink(missing_ok=True)
            os.close(fd)


def stage_scope(function: F) -> F:
    """Decorator for a stage's entry point: the locks it takes on its OUT are released when
    it returns or fails (a claim outside any stage keeps its lock until the process ends)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        mark = len(_ORDER)
        try:
            return function(*args, **kwargs)
        finally:
            release_since(mark)

    return wrapper  # type: ignore[return-value]


def is_lock_file(name: str) -> bool:
    """A writer lock's file name: kept by ``--overwrite`` (removing a held lock's file would
    let a second writer lock a new one)."""
    return name.startswith(LOCK_PREFIX) and name.endswith(".lock")
