"""Probe a scanner's entries and turn the good ones into Lhotse manifests, one set per split.

The manifest lines are built as plain dicts in Lhotse's own JSON schema (what
``Recording.to_dict()``, ``SupervisionSegment.to_dict()`` and ``MonoCut.to_dict()`` produce;
a test checks the round trip) inside the probing workers. Lhotse's ``to_dict`` deep-copies
through ``dataclasses.asdict`` and cost more than probing itself; this way ``--jobs``
parallelises all per-file work, and the main process only joins and gzips.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from academicodec.errors import UserError
from academicodec.files import atomic_write_bytes
from academicodec.ids import key_safe
from academicodec.manifests.entries import Entry, Fault, ScanResult
from academicodec.manifests.probe import Probe, probe_audio
from academicodec.manifests.report import PrepareReport, SplitCounts
from academicodec.progress import ProgressFactory, silent_progress

KINDS = ("recordings", "supervisions", "cuts")
CHUNK = 512
GZIP_LEVEL = 6


@dataclass
class Described:
    """One entry after probing: its three manifest lines, or why it was skipped."""

    split: str
    error: Fault | None = None
    lines: tuple[str, str, str] = ("", "", "")
    seconds: float = 0.0
    has_text: bool = False
    warnings: list[Fault] = field(default_factory=list)


def build_manifests(
    corpus: str,
    source: Path,
    out: Path,
    scan: ScanResult,
    jobs: int = 1,
    verify: bool = False,
    progress: ProgressFactory = silent_progress,
    overwrite: bool = False,
) -> PrepareReport:
    """Probe every entry's audio, write ``{corpus}_{kind}_{split}.jsonl.gz`` and the report.

    Manifests already in ``out`` that this run does not write (another split or corpus
    of an earlier run) are refused - ``shard OUT`` would read them as part of this corpus,
    test data into training shards - unless ``overwrite``, which removes them."""
    report = PrepareReport(corpus=corpus, source=str(source), output=str(out))
    report.skipped.extend(scan.skipped)
    report.warnings.extend(scan.warnings)
    report.ignored = dict(scan.ignored)

    entries = sorted(_unique(scan.entries, report.skipped), key=lambda e: (e.split, e.id))
    by_split: dict[str, list[Described]] = defaultdict(list)
    bar = progress(len(entries), "probing audio")
    for batch in _describe_batches(entries, corpus, jobs, verify):
        for described in batch:
            if described.error is not None:
                report.skipped.append(described.error)
            else:
                report.warnings.extend(described.warnings)
                by_split[described.split].append(described)
        bar.update(len(batch))
    bar.close()

    files: dict[Path, list[str]] = {}
    for split in sorted(by_split):
        items = by_split[split]
        report.splits[split] = SplitCounts(
            recordings=len(items),
            supervisions=len(items),
            cuts=len(items),
            without_text=sum(1 for d in items if not d.has_text),
            seconds=sum(d.seconds for d in items),
        )
        report.manifests[split] = {}
        for position, kind in enumerate(KINDS):
            path = out / f"{corpus}_{kind}_{split}.jsonl.gz"
            files[path] = [d.lines[position] for d in items]
            report.manifests[split][kind] = path.name
    _remove_stale(out, set(files), overwrite)
    # zlib releases the GIL, so the files compress in parallel threads.
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(files)))) as pool:
        list(pool.map(lambda item: _write_gz(*item), files.items()))
    report.write()
    return report


def _remove_stale(out: Path, written: set[Path], overwrite: bool) -> None:
    stale = sorted(p for kind in KINDS for p in out.glob(f"*_{kind}_*.jsonl*") if p not in written)
    if stale and not overwrite:
        names = ", ".join(p.name for p in stale[:4]) + (", ..." if len(stale) > 4 else "")
        raise UserError(
            f"OUT {out} holds manifests this run does not write ({names}); shard would read "
            "them with the new ones: use another OUT, or --overwrite to remove them"
        )
    for path in stale:
        path.unlink()


def _write_gz(path: Path, lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    atomic_write_bytes(path, gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))


def _describe_batches(entries: list[Entry], corpus: str, jobs: int, verify: bool):
    chunks = [entries[i : i + CHUNK] for i in range(0, len(entries), CHUNK)]
    if jobs <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield describe_many(chunk, corpus, verify)
        return
    # fork: workers start in milliseconds, and probing touches no threads or torch state.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        n = len(chunks)
        yield from pool.map(describe_many, chunks, [corpus] * n, [verify] * n)


def describe_many(entries: list[Entry], corpus: str, verify: bool) -> list[Described]:
    return [describe(entry, corpus, verify) for entry in entries]


def describe(entry: Entry, corpus: str, verify: bool) -> Described:
    probe = probe_audio(str(entry.audio), verify)
    if probe.error is not None:
        return Described(entry.split, error=Fault(str(entry.audio), probe.error, entry.split))
    recording, supervision, cut = manifest_dicts(corpus, entry, probe)
    return Described(
        entry.split,
        lines=(_dumps(recording), _dumps(supervision), _dumps(cut)),
        seconds=recording["duration"],
        has_text=bool(entry.text),
        warnings=_caveats(entry, probe),
    )


def manifest_dicts(
    corpus: str, entry: Entry, probe: Probe
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The recording, supervision and cut of ``entry`` as Lhotse serialises them.

    Lhotse omits ``None`` fields; a multi-channel recording gets a ``MultiCut`` whose
    ``channel`` lists every channel (it is downmixed when read, never dropped).
    """
    channels = list(range(probe.channels))
    duration = probe.num_frames / probe.sample_rate
    channel: int | list[int] = channels[0] if len(channels) == 1 else channels
    recording = {
        "id": entry.id,
        "sources": [{"type": "file", "channels": channels, "source": str(entry.audio)}],
        "sampling_rate": probe.sample_rate,
        "num_samples": probe.num_frames,
        "duration": duration,
        "channel_ids": channels,
    }
    supervision = _without_none(
        {
            "id": entry.id,
            "recording_id": entry.id,
            "start": 0.0,
            "duration": duration,
            "channel": channel,
            "text": entry.text,
            "language": entry.language,
            "speaker": entry.speaker,
            "gender": entry.gender,
            "custom": entry.custom or None,
        }
    )
    cut = {
        "id": entry.id,
        "start": 0.0,
        "duration": duration,
        "channel": channel,
        "supervisions": [supervision],
        "recording": recording,
        "custom": {"corpus": corpus, "split": entry.split},
        "type": "MonoCut" if len(channels) == 1 else "MultiCut",
    }
    return recording, supervision, cut


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


def _unique(entries: list[Entry], skipped: list[Fault]) -> list[Entry]:
    """Drop a second entry with an id already seen (ids must be unique within a split).
    Every id is made key-safe first, so the same id reaches every later format."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for entry in entries:
        entry = replace(entry, id=key_safe(entry.id))
        key = (entry.split, entry.id)
        if key in seen:
            skipped.append(Fault(str(entry.audio), f"duplicate id {entry.id!r}", entry.split))
            continue
        seen.add(key)
        unique.append(entry)
    return unique


def _caveats(entry: Entry, probe: Probe) -> list[Fault]:
    """Kept, but worth knowing: multi-channel, an unexpected rate, no transcript."""
    notes = []
    if probe.channels > 1:
        notes.append(f"{probe.channels} channels: kept, downmixed to mono when read")
    if entry.expected_rate and probe.sample_rate != entry.expected_rate:
        notes.append(
            f"sample rate {probe.sample_rate} Hz, the corpus uses {entry.expected_rate} Hz: "
            "kept, resampled when sharded"
        )
    if not entry.text:
        notes.append("no transcript: kept without text (usable for codec training)")
    return [Fault(str(entry.audio), note, entry.split) for note in notes]
