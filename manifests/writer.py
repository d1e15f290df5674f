"""Byte-reproducible, atomic manifest files.

Lhotse's own writer gzips with the current time in the header, so two identical runs give
different bytes; we write the same JSON lines with a zero gzip timestamp, via a temporary
name, so a re-run yields identical files and a killed run never leaves half a manifest.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from academicodec.files import atomic_write_bytes


def write_jsonl_gz(path: Path, items: Iterable[dict[str, Any]]) -> None:
    """Write dicts as JSON lines into a gzip file with a fixed header (mtime 0, no name)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        for item in items:
            gz.write(json.dumps(item, ensure_ascii=False).encode("utf-8"))
            gz.write(b"\n")
    atomic_write_bytes(path, buffer.getvalue())
