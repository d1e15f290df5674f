"""What an input *is*, as one short string: resume and re-run checks compare these, never
the path a user typed (the same shards by an absolute or a relative path are the same
input; other shards copied to the same path are not).

- a shard or codes folder (``index.json``): the sha256 of every shard's name, count and
  sha256 - the content, without reading the shards again;
- a manifest file: the sha256 of its bytes; a folder of manifests: of all of them;
- a model (an export folder, a weights file): the sha256 of its weights;
- anything else (a corpus folder of audio): its resolved path, the only identity that
  costs nothing to compute for a terabyte of audio.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from academicodec import storage
from academicodec.files import sha256_file, sha256_stream

SHORT = 12  # hex digits shown in messages
INDEX = "index.json"
MANIFEST_GLOB = "*.jsonl*"
# The file that holds a model folder's weights: an export's or HF folder's safetensors, or
# an older HF upload's pytorch_model.bin.
WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def shards_fingerprint(index: dict[str, Any]) -> str:
    """The content fingerprint of a parsed shard ``index.json``."""
    shards = [(s["name"], s["samples"], s["sha256"]) for s in index["shards"]]
    return hashlib.sha256(json.dumps([index["sample_rate"], shards]).encode()).hexdigest()


def index_identity(data: dict[str, Any]) -> str | None:
    """A parsed ``index.json`` (shard or codes) as a message shows it; ``None`` when it is
    not one of ours."""
    try:
        if "num_codebooks" in data:  # tokenize's index: every format's files and sha256
            digest = hashlib.sha256(json.dumps(data["formats"], sort_keys=True).encode())
            return f"codes {digest.hexdigest()[:SHORT]} ({data['totals']['items']} items)"
        count = sum(s["samples"] for s in data["shards"])
        return f"shards {shards_fingerprint(data)[:SHORT]} ({count} items)"
    except (KeyError, TypeError):
        return None


def identity(location: storage.Location) -> str:
    """``location`` as a message shows it: what it holds, then a short content hash."""
    location = storage.local(location)
    if storage.is_dir(location):
        index = storage.join(location, INDEX)
        if storage.is_file(index):
            text = storage.read_text(index)
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            found = index_identity(data) if isinstance(data, dict) else None
            return found or f"index.json {hashlib.sha256(text.encode()).hexdigest()[:SHORT]}"
        manifests = storage.glob(location, MANIFEST_GLOB)
        if manifests:
            digest = hashlib.sha256()
            for path in manifests:
                digest.update(file_sha256(path).encode())
            return f"{len(manifests)} manifests {digest.hexdigest()[:SHORT]}"
        if not storage.is_url(location):
            found = weights_file(Path(location))
            if found is not None:
                return f"model {sha256_file(found)[:SHORT]}"
            return f"folder {Path(location).resolve()}"
        return f"folder {location}"
    if storage.is_file(location):
        return f"{storage.basename(location)} {file_sha256(location)[:SHORT]}"
    return f"{location} (missing)"


def weights_file(folder: Path) -> Path | None:
    """The file holding a model folder's weights (``WEIGHTS``, first found), if any."""
    return next((folder / name for name in WEIGHTS if (folder / name).is_file()), None)


def file_sha256(location: storage.Location) -> str:
    """sha256 of one file, local or at a URL."""
    if storage.is_url(location):
        with storage.open_file(location) as f:
            return sha256_stream(f)
    return sha256_file(Path(location))


def inputs_identity(locations: list[storage.Location] | tuple[storage.Location, ...]) -> str:
    """Several inputs as one string (``identity`` each, in the order given)."""
    return "; ".join(identity(location) for location in locations)
