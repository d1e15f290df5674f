"""Deterministic directory walking that reports unreadable directories instead of crashing."""

from __future__ import annotations

import os
from pathlib import Path

from academicodec.manifests.entries import Fault


def walk_files(root: Path, faults: list[Fault], split: str | None = None) -> list[Path]:
    """All regular files under ``root``, sorted; unreadable directories land in ``faults``.

    ``os.walk`` would silently skip a directory it cannot list (or call ``onerror`` without
    the context we want), losing data without a trace; we record each one.
    """
    files: list[Path] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except OSError as exc:
            faults.append(Fault(str(directory), f"unreadable directory: {exc.strerror}", split))
            continue
        for entry in entries:
            try:
                if entry.is_dir():
                    stack.append(Path(entry.path))
                elif entry.is_file():
                    files.append(Path(entry.path))
                else:
                    faults.append(Fault(entry.path, "not a regular file (broken link?)", split))
            except OSError as exc:
                faults.append(Fault(entry.path, f"unreadable: {exc.strerror}", split))
    files.sort()
    return files


def read_text(path: Path) -> str | None:
    """A transcript file's text, stripped; ``None`` when it is empty or unreadable."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None
