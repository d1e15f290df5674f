"""Tar-safe sample keys: webdataset splits a member name at its first dot, so keys have none."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sample_key(item_id: str) -> str:
    """``item_id`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``_``.

    When anything was replaced, a short hash of the original id is appended so two ids that
    differ only in replaced characters (``a/b`` and ``a.b``) never share a key. The original
    id always travels in the sample's JSON.
    """
    key = _UNSAFE.sub("_", item_id)
    if key != item_id or not key:
        key = f"{key}-{hashlib.sha1(item_id.encode('utf-8')).hexdigest()[:8]}"
    return key
