"""Did ``eval`` just score the model on its own training data?

Scores on training items flatter a codec, and nothing in a file name says which items a
model saw. An export of our own run records its training data (``origin.data``: the
shards' fingerprint and path, the sha256 of every manifest they were made from). Two
checks use it:

- ``training_overlap``, per input: the same shards, shards made from one of those
  manifests, or one of those manifests itself;
- ``audio_overlap``, per item, for what the first cannot see (the training clips given as a
  folder, copied, re-encoded losslessly or listed by other manifests): an item whose
  recording has the rate and length of a training recording is decoded, and the same
  samples are the same audio. It needs the training manifests (read from the shards'
  index) and their audio where they were; items read from shards are covered by the
  first check only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from academicodec import storage
from academicodec.identity import file_sha256, shards_fingerprint
from academicodec.models.export import export_origin
from academicodec.pipelines.index import INDEX_NAME, ShardIndex
from academicodec.pipelines.items import CUTS_GLOB, ShardItem, plan_items
from academicodec.pipelines.shard import read_item
from academicodec.pipelines.sources import NO_WINDOWS


def training_overlap(model_path: str | Path, inputs: list[str | Path]) -> str | None:
    """A sentence naming the inputs that are (or were made from) the model's training
    data; ``None`` when none is, or the model's training data is unknown."""
    data = _training_data(model_path)
    if data is None:
        return None
    trained = set(data.get("manifest_sha256", []))
    found = [str(path) for path in inputs if _overlaps(path, data.get("fingerprint"), trained)]
    if not found:
        return None
    return (
        f"{', '.join(found)} overlap(s) the model's training data ({data.get('shards')}, from "
        f"{data.get('path')}): these scores are on items it was trained on"
    )


def audio_overlap(model_path: str | Path, items: list[ShardItem]) -> str | None:
    """A sentence naming the items (read from files, not shards) whose audio is a training
    recording's, sample for sample; ``None`` when none is or the training data is unknown."""
    candidates = [item for item in items if item.member is None]
    data = _training_data(model_path)
    if not candidates or data is None:
        return None
    trained: dict[tuple[int, int], list[ShardItem]] = {}
    for item in _training_items(data):
        trained.setdefault((item.recording_rate, item.frames), []).append(item)
    hashes: dict[str, str | None] = {}  # training item key -> its audio's hash, when read
    found = []
    for item in candidates:
        others = trained.get((item.recording_rate, item.frames), [])
        if not others:
            continue
        mine = _audio_hash(item)
        for other in others:
            if other.key not in hashes:
                hashes[other.key] = _audio_hash(other)
            if mine is not None and hashes[other.key] == mine:
                found.append(f"{item.meta.get('id', item.key)} = {other.meta.get('id', other.key)}")
                break
    if not found:
        return None
    shown = ", ".join(found[:3]) + (f", ... ({len(found)} in all)" if len(found) > 3 else "")
    return (
        f"{len(found)} of the {len(items)} items are the model's training audio, sample for "
        f"sample ({shown}; training data {data.get('shards')}, from {data.get('path')}): these "
        "scores are on audio it was trained on"
    )


def _training_data(model_path: str | Path) -> dict[str, Any] | None:
    if storage.is_url(model_path):
        return None
    data = export_origin(model_path).get("data")
    return data if isinstance(data, dict) else None


def _training_items(data: dict[str, Any]) -> list[ShardItem]:
    """The whole recordings of the training manifests that are still where the shards'
    index says, and still the ones trained on (their sha256 recorded at export)."""
    try:
        index = ShardIndex.load(data["path"])
    except Exception:  # the shards moved or are gone: nothing to compare with
        return []
    trained = set(data.get("manifest_sha256", []))
    manifests = [m for m in index.manifests if storage.exists(m) and file_sha256(m) in trained]
    return plan_items(manifests, NO_WINDOWS, 0.0)[0] if manifests else []


def _audio_hash(item: ShardItem) -> str | None:
    """sha256 of the item's samples at its recording's own rate (no resampling: the same
    audio in WAV or FLAC gives the same hash); ``None`` when it cannot be read."""
    try:
        samples = read_item(item, item.recording_rate)
    except Exception:
        return None
    return hashlib.sha256(samples.tobytes()).hexdigest()


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
