"""Did ``eval`` just score the model on its own training data?

Scores on training items flatter a codec, and nothing in a file name says which items a
model saw. An export of our own run records its training data (``origin.data``: the
shards' fingerprint and the sha256 of every manifest they were made from); the inputs of
an eval are compared with it by content: the same shards, shards made from one of those
manifests, or one of those manifests itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from academicodec import storage
from academicodec.identity import file_sha256, shards_fingerprint
from academicodec.models.export import export_origin
from academicodec.pipelines.index import INDEX_NAME
from academicodec.pipelines.items import CUTS_GLOB


def training_overlap(model_path: str | Path, inputs: list[str | Path]) -> str | None:
    """A sentence naming the inputs that are (or were made from) the model's training
    data; ``None`` when none is, or the model's training data is unknown."""
    if storage.is_url(model_path):
        return None
    data = export_origin(model_path).get("data")
    if not isinstance(data, dict):
        return None
    trained = set(data.get("manifest_sha256", []))
    found = [str(path) for path in inputs if _overlaps(path, data.get("fingerprint"), trained)]
    if not found:
        return None
    return (
        f"{', '.join(found)} overlap(s) the model's training data ({data.get('shards')}, from "
        f"{data.get('path')}): these scores are on items it was trained on"
    )


def _overlaps(path: str | Path, fingerprint: str | None, trained: set[str]) -> bool:
    path = storage.local(path)
    if storage.is_dir(path) and storage.is_file(storage.join(path, INDEX_NAME)):
        index = _json(storage.join(path, INDEX_NAME))
        try:
            if fingerprint is not None and shards_fingerprint(index) == fingerprint:
                return True
        except (KeyError, TypeError):
            return False
        manifests = [m for m in index.get("manifests", []) if storage.exists(m)]
    elif storage.is_dir(path):
        manifests = storage.glob(path, CUTS_GLOB)
    elif storage.is_file(path):
        manifests = [path]
    else:
        return False
    return any(file_sha256(m) in trained for m in manifests)


def _json(location: storage.Location) -> dict[str, Any]:
    try:
        data = json.loads(storage.read_text(location))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
