"""Any input a stage can read - cut manifests, a ``prepare`` output, a shard folder, a
folder of audio, a local HF dataset - as one list of ``ShardItem``s.

Folders of audio and HF datasets go through ``prepare`` (into ``workdir``), so they get the
same probing and the same report of skipped files as everywhere else. Manifests and shard
folders may also be URLs (``s3://...``); a folder of raw audio is prepared locally first.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from academicodec import storage
from academicodec.errors import UserError
from academicodec.manifests import prepare
from academicodec.pipelines.checks import ShardDamage, check_file
from academicodec.pipelines.decode import AUDIO_EXTS
from academicodec.pipelines.index import INDEX_NAME, ShardIndex, ShardRecord
from academicodec.pipelines.items import (
    CUTS_GLOB,
    ShardItem,
    find_manifests,
    plan_items,
    refuse_id_clash,
)
from academicodec.pipelines.tario import split_member

NO_WINDOWS = 1e9  # whole cuts: a stage that chunks long items itself does not window them


def collect_items(
    inputs: list[str | Path], workdir: Path, verify: bool = False
) -> tuple[list[ShardItem], list[dict[str, Any]]]:
    """Items of every input (sorted by key, duplicates reported), and what was skipped.
    Shards are checked against their ``index.json`` (``verify``: their sha256 too)."""
    items: dict[str, ShardItem] = {}
    origin: dict[str, storage.Location] = {}
    skipped: list[dict[str, Any]] = []
    for number, raw in enumerate(inputs):
        path = storage.local(raw)
        if not storage.exists(path):
            raise UserError(f"input {path} does not exist")
        found, dropped = _items_of(path, workdir / f"input-{number}", verify)
        skipped.extend(dropped)
        for item in found:
            if item.key in items:
                refuse_id_clash(items[item.key], origin[item.key], item, path)
                skipped.append({"id": item.meta["id"], "reason": f"duplicate id (in {path})"})
            else:
                items[item.key], origin[item.key] = item, path
    return [items[k] for k in sorted(items)], skipped


def _items_of(
    path: storage.Location, workdir: Path, verify: bool
) -> tuple[list[ShardItem], list[dict[str, Any]]]:
    if storage.is_dir(path) and storage.is_file(storage.join(path, INDEX_NAME)):
        return _shard_items(path, verify)
    if storage.is_file(path) or (storage.is_dir(path) and storage.glob(path, CUTS_GLOB)):
        return plan_items(find_manifests([path]), NO_WINDOWS, 0.0)
    if storage.is_url(path):
        raise UserError(
            f"input {path}: at a URL give manifests or a shard folder (prepare a folder of "
            "audio from a local copy)"
        )
    path = Path(path)
    corpus = "hf" if _is_hf(path) else "folder"
    report = prepare(corpus, path, workdir, overwrite=True)  # scratch of this stage: re-scanned
    skipped = [{"id": f.path, "reason": f.reason} for f in report.skipped]
    items, dropped = plan_items(find_manifests([workdir]), NO_WINDOWS, 0.0)
    return items, skipped + dropped


def _is_hf(path: Path) -> bool:
    return (
        (path / "dataset_dict.json").is_file()
        or (path / "state.json").is_file()
        or any(path.glob("*.parquet"))
    )


def _shard_items(
    folder: storage.Location, verify: bool
) -> tuple[list[ShardItem], list[dict[str, Any]]]:
    """One item per sample of a shard set, pointing at its audio member's bytes; each shard
    checked against its record (``checks``), and a sample without audio or metadata
    reported, never dropped in silence."""
    index = ShardIndex.load(folder)
    items: list[ShardItem] = []
    skipped: list[dict[str, Any]] = []
    for record in index.shards:
        check_file(folder, record, verify)
        path = storage.join(folder, record.name)
        for key, members, meta in _members(folder, record):
            audio = next((members[e] for e in AUDIO_EXTS if e in members), None)
            if audio is None or meta is None:
                missing = "audio" if audio is None else "readable json"
                reason = f"no {missing} member in {path}"
                skipped.append({"id": key, "reason": reason})
                continue
            items.append(
                ShardItem(
                    key=key,
                    source=str(path),
                    is_file=False,
                    start=0,
                    frames=int(meta.get("num_samples", 0)),
                    recording_rate=int(meta.get("sample_rate", index.sample_rate)),
                    meta=meta,
                    member=audio.name,
                    span=(audio.offset_data, audio.size),
                )
            )
    return items, skipped


def _members(
    folder: storage.Location, record: ShardRecord
) -> list[tuple[str, dict[str, tarfile.TarInfo], dict[str, Any] | None]]:
    """Each sample's members and metadata (one pass, audio left unread), the listing
    checked against the record's count: ``tarfile`` ends a listing silently at a header it
    cannot parse."""
    path = storage.join(folder, record.name)
    samples: dict[str, dict[str, tarfile.TarInfo]] = {}
    metas: dict[str, dict[str, Any]] = {}
    try:
        with storage.open_file(path) as f, tarfile.open(fileobj=f, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = split_member(member.name)
                samples.setdefault(key, {})[ext] = member
                if ext == "json":
                    handle = tar.extractfile(member)
                    metas[key] = _meta(handle.read() if handle else b"{}")
    except (tarfile.TarError, EOFError) as exc:
        raise ShardDamage(
            folder, record.name, f"breaks off after {len(samples)} samples ({exc})"
        ) from exc
    if len(samples) != record.samples:
        raise ShardDamage(
            folder, record.name,
            f"lists {len(samples)} of the {record.samples} samples index.json says",
        )  # fmt: skip
    return [(key, members, metas.get(key)) for key, members in samples.items()]


def _meta(data: bytes) -> dict[str, Any] | None:
    """A sample's metadata; ``None`` (the sample is reported) when it is not JSON."""
    try:
        meta = json.loads(data)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None
