"""From Lhotse manifests to the list of samples a shard set will hold.

Long cuts are split into windows of at most ``max_duration`` seconds, on supervision
boundaries where there are any; cuts shorter than ``min_duration`` are dropped and reported.
Every item knows where its audio lives, so a worker process can read it with no manifest.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from lhotse import CutSet, RecordingSet, load_manifest
from lhotse.cut import Cut

from academicodec import storage
from academicodec.errors import UserError
from academicodec.ids import key_safe
from academicodec.storage import Location

CUTS_GLOB = "*_cuts_*.jsonl.gz"


@dataclass(frozen=True)
class ShardItem:
    """One sample to write: a window of a recording, plus the metadata for its JSON."""

    key: str
    source: str  # file path or URL, a shard tar (with ``member``), or a serialised cut
    is_file: bool
    start: int  # in samples of the recording
    frames: int
    recording_rate: int
    meta: dict[str, Any]
    member: str | None = None  # the audio member's name when ``source`` is a shard tar
    # Where that member's bytes lie in the tar (offset, size): one ranged read, no scan.
    span: tuple[int, int] | None = None
    # The window is the whole file (so fetching the file is no waste: ``fetch.prefetch``).
    whole_file: bool = True

    @property
    def seconds(self) -> float:
        return self.frames / self.recording_rate

    def fingerprint(self) -> list[Any]:
        return [self.key, self.source, self.member, self.start, self.frames, self.recording_rate]


def find_manifests(paths: list[Location]) -> list[Location]:
    """Expand folders (a ``prepare`` output) into their cut manifests; check files exist.
    Paths may be URLs (``s3://bucket/manifests``)."""
    found: list[Location] = []
    for raw in paths:
        path = storage.local(raw)
        if storage.is_dir(path):
            cuts = storage.glob(path, CUTS_GLOB)
            if not cuts:
                raise UserError(f"{path} holds no cut manifests ({CUTS_GLOB})")
            found.extend(cuts)
        elif storage.is_file(path):
            found.append(path)
        else:
            raise UserError(f"manifest {path} does not exist")
    if not found:
        raise UserError("no manifests given")
    return found


def load_cuts(path: Location) -> CutSet:
    """A manifest's cuts (a manifest at a URL is downloaded first: manifests are small)."""
    try:
        manifest = load_manifest(storage.local_copy(path))
    except Exception as exc:
        raise UserError(f"{path} is not a Lhotse manifest: {exc}") from exc
    if isinstance(manifest, CutSet):
        return manifest
    if isinstance(manifest, RecordingSet):
        # One cut per recording, keeping the recording's id (from_manifests appends "-0").
        return CutSet.from_cuts(recording.to_cut() for recording in manifest)
    raise UserError(f"{path} holds {type(manifest).__name__}; pass cut or recording manifests")


def plan_items(
    manifests: list[Location], max_duration: float, min_duration: float
) -> tuple[list[ShardItem], list[dict[str, Any]]]:
    """All items of ``manifests`` sorted by key, and the cuts skipped with their reasons."""
    items: dict[str, ShardItem] = {}
    origin: dict[str, Location] = {}
    skipped: list[dict[str, Any]] = []
    for path in manifests:
        name = storage.basename(path)
        corpus_hint = name.split("_cuts_")[0] if "_cuts_" in name else None
        for cut in load_cuts(path):
            for item in _cut_items(cut, max_duration, corpus_hint):
                if item.frames < min_duration * item.recording_rate:
                    seconds = item.frames / item.recording_rate
                    reason = f"shorter than --min-duration ({seconds:.3f} s < {min_duration} s)"
                    skipped.append({"id": item.meta["id"], "reason": reason})
                elif item.key in items:
                    refuse_id_clash(items[item.key], origin[item.key], item, path)
                    skipped.append({"id": item.meta["id"], "reason": f"duplicate id in {path}"})
                else:
                    items[item.key], origin[item.key] = item, path
    return [items[k] for k in sorted(items)], skipped


def refuse_id_clash(first: ShardItem, first_in: Location, item: ShardItem, where: Location) -> None:
    """The same id for other audio (two corpora prepared under one name) is refused: one
    of them would be dropped. The same item listed twice is a duplicate to skip."""
    if first.fingerprint()[1:] == item.fingerprint()[1:]:
        return
    raise UserError(
        f"id {item.meta['id']!r} names other audio in {first_in} ({first.source}) and in "
        f"{where} ({item.source}): two corpora prepared under the same name? prepare one "
        "of them again with another --name (every id starts with it)"
    )


def _cut_items(cut: Cut, max_duration: float, corpus_hint: str | None) -> list[ShardItem]:
    recording = cut.recording
    if recording is None:
        raise UserError(f"cut {cut.id} has no recording; shard needs audio manifests")
    rate = recording.sampling_rate
    source = recording.sources[0]
    # A file, or a URL our storage reads (lhotse itself would need smart_open for it).
    readable = source.type == "file" or (source.type == "url" and storage.is_url(source.source))
    is_file = len(recording.sources) == 1 and readable
    first = round(cut.start * rate)
    total = min(cut.num_samples or round(cut.duration * rate), recording.num_samples - first)
    windows = split_windows(cut, total, rate, max_duration)
    supervision = cut.supervisions[0] if cut.supervisions else None
    custom = cut.custom or {}
    items = []
    for index, (start, end, text) in enumerate(windows):
        item_id = cut.id if len(windows) == 1 else f"{cut.id}-w{index:03d}"
        meta = {
            "id": item_id,
            "cut_id": cut.id,
            "recording_id": recording.id,
            "corpus": custom.get("corpus", corpus_hint),
            "split": custom.get("split"),
            "speaker": supervision.speaker if supervision else None,
            "gender": supervision.gender if supervision else None,
            "language": supervision.language if supervision else None,
            "text": text,
            "offset": round((first + start) / rate, 6),
        }
        items.append(
            ShardItem(
                key=key_safe(item_id),
                source=source.source if is_file else _serialise(cut),
                is_file=is_file,
                start=first + start,
                frames=end - start,
                recording_rate=rate,
                meta=meta,
                whole_file=first + start == 0 and end - start == recording.num_samples,
            )
        )
    return items


def split_windows(
    cut: Cut, total: int, rate: int, max_duration: float
) -> list[tuple[int, int, str | None]]:
    """``(start, end, text)`` windows in samples relative to the cut, each ≤ ``max_duration``.

    Windows end on supervision ends where one falls in range; a stretch with none is split
    into equal pieces. A window's text joins the supervisions wholly inside it, and is
    ``None`` when one is cut through (its partial text is unknown).
    """
    limit = int(max_duration * rate)
    spans = sorted(
        (max(0, round(s.start * rate)), min(total, round(s.end * rate)), s.text)
        for s in cut.supervisions
    )
    if total <= limit:
        texts = [t for _, _, t in spans if t]
        return [(0, total, " ".join(texts) if texts else None)]
    ends = sorted({e for _, e, _ in spans if 0 < e < total})
    bounds = [0]
    while total - bounds[-1] > limit:
        current = bounds[-1]
        inside = [e for e in ends if current < e <= current + limit]
        if inside:
            bounds.append(inside[-1])
            continue
        stretch_end = next((e for e in ends if e > current + limit), total)
        pieces = math.ceil((stretch_end - current) / limit)
        bounds.append(current + math.ceil((stretch_end - current) / pieces))
    bounds.append(total)
    windows = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        inside_texts = [t for s, e, t in spans if s >= start and e <= end and t]
        cut_through = any(
            s < end and e > start and not (s >= start and e <= end) for s, e, _ in spans
        )
        text = None if cut_through or not inside_texts else " ".join(inside_texts)
        windows.append((start, end, text))
    return windows


def _serialise(cut: Cut) -> str:
    return json.dumps(cut.to_dict())
