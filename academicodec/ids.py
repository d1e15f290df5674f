"""Item ids that survive every stage: made key-safe once, by ``prepare``.

webdataset splits a member name at its first dot, Lhotse Shar names tar members by cut id,
decoders write ``<id>.wav``: an id with a dot, a slash or a space gets renamed somewhere down
the line, and joining codes back to manifests by id breaks. So every corpus scanner builds
its ids here, and the same id then appears in the manifests, the shards and every token
format. Ids keep letters and digits of every script (``日本/音声 一`` -> ``日本-音声_一``,
``café`` stays ``café``, NFC-normalised): only punctuation, spaces and symbols are replaced.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence

# Letters and digits of any script (``\w``: str.isalnum() and "_"), and "-".
UNSAFE = re.compile(r"[^\w-]")
_UNSAFE_RUNS = re.compile(r"[^\w-]+")


def is_key_safe(value: str) -> bool:
    return (
        bool(value)
        and UNSAFE.search(value) is None
        and unicodedata.normalize("NFC", value) == value
    )


def safe_id(value: str) -> str:
    """``value`` (NFC) with each run of characters that are not letters, digits, ``_`` or
    ``-`` made one ``_``."""
    return _UNSAFE_RUNS.sub("_", unicodedata.normalize("NFC", value)).strip("_") or "item"


def path_id(parts: Sequence[str]) -> str:
    """An id for a file at relative path ``parts``: each part made safe, joined by ``-``
    (``spk0/clip.001`` -> ``spk0-clip_001``)."""
    return "-".join(safe_id(part) for part in parts)


def key_safe(value: str) -> str:
    """``value`` itself when key-safe; else ``safe_id(value)`` and a short hash of ``value``,
    so two ids differing only in replaced characters (``a/b``, ``a.b``) stay distinct."""
    return value if is_key_safe(value) else f"{safe_id(value)}-{short_hash(value)}"


def short_hash(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8")).hexdigest()[:8]


def disambiguated(ids: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{source: id}`` for ``(source, id)`` pairs, where every id that several sources share
    gets ``-<hash of its source>``: distinct, and stable for the same tree."""
    pairs = list(ids)
    users: dict[str, int] = defaultdict(int)
    for _, item_id in pairs:
        users[item_id] += 1
    return {
        source: item_id if users[item_id] == 1 else f"{item_id}-{short_hash(source)}"
        for source, item_id in pairs
    }
