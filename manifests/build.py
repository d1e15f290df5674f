"""Probe a scanner's entries and turn the good ones into Lhotse manifests, one set per split."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from lhotse import AudioSource, Recording, SupervisionSegment
from lhotse.cut import MonoCut, MultiCut

from academicodec.manifests.entries import Entry, Fault, ScanResult
from academicodec.manifests.probe import Probe, probe_all
from academicodec.manifests.report import PrepareReport, SplitCounts
from academicodec.manifests.writer import write_jsonl_gz
from academicodec.progress import ProgressFactory, silent_progress


def build_manifests(
    corpus: str,
    source: Path,
    out: Path,
    scan: ScanResult,
    jobs: int = 1,
    verify: bool = False,
    progress: ProgressFactory = silent_progress,
) -> PrepareReport:
    """Probe every entry's audio, write ``{corpus}_{kind}_{split}.jsonl.gz`` and the report."""
    report = PrepareReport(corpus=corpus, source=str(source), output=str(out))
    report.skipped.extend(scan.skipped)
    report.warnings.extend(scan.warnings)
    report.ignored = dict(scan.ignored)

    entries = sorted(_unique(scan.entries, report.skipped), key=lambda e: (e.split, e.id))
    bar = progress(len(entries), "probing audio")
    probes = probe_all([str(e.audio) for e in entries], jobs, verify, bar.update)
    bar.close()

    by_split: dict[str, list[tuple[Recording, SupervisionSegment, MonoCut | MultiCut]]] = (
        defaultdict(list)
    )
    for entry, probe in zip(entries, probes, strict=True):
        if probe.error is not None:
            report.skipped.append(Fault(str(entry.audio), probe.error, entry.split))
            continue
        report.warnings.extend(_caveats(entry, probe))
        by_split[entry.split].append(_to_lhotse(corpus, entry, probe))

    for split in sorted(by_split):
        items = by_split[split]
        counts = SplitCounts(recordings=len(items), supervisions=len(items), cuts=len(items))
        counts.without_text = sum(1 for _, sup, _ in items if not sup.text)
        counts.seconds = sum(rec.duration for rec, _, _ in items)
        report.splits[split] = counts
        report.manifests[split] = _write_split(out, corpus, split, items)
    report.write()
    return report


def _unique(entries: list[Entry], skipped: list[Fault]) -> list[Entry]:
    """Drop a second entry with an id already seen (ids must be unique within a split)."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for entry in entries:
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


def _to_lhotse(
    corpus: str, entry: Entry, probe: Probe
) -> tuple[Recording, SupervisionSegment, MonoCut | MultiCut]:
    channels = list(range(probe.channels))
    duration = probe.num_frames / probe.sample_rate
    recording = Recording(
        id=entry.id,
        sources=[AudioSource(type="file", channels=channels, source=str(entry.audio))],
        sampling_rate=probe.sample_rate,
        num_samples=probe.num_frames,
        duration=duration,
        channel_ids=channels,
    )
    channel: int | list[int] = channels[0] if len(channels) == 1 else channels
    supervision = SupervisionSegment(
        id=entry.id,
        recording_id=entry.id,
        start=0.0,
        duration=duration,
        channel=channel,
        text=entry.text,
        language=entry.language,
        speaker=entry.speaker,
        gender=entry.gender,
        custom=entry.custom or None,
    )
    cut_type = MonoCut if len(channels) == 1 else MultiCut
    cut = cut_type(
        id=entry.id,
        start=0.0,
        duration=duration,
        channel=channel,
        supervisions=[supervision],
        recording=recording,
        custom={"corpus": corpus, "split": entry.split},
    )
    return recording, supervision, cut


def _write_split(
    out: Path,
    corpus: str,
    split: str,
    items: list[tuple[Recording, SupervisionSegment, MonoCut | MultiCut]],
) -> dict[str, str]:
    names = {}
    for kind, position in (("recordings", 0), ("supervisions", 1), ("cuts", 2)):
        path = out / f"{corpus}_{kind}_{split}.jsonl.gz"
        write_jsonl_gz(path, (item[position].to_dict() for item in items))
        names[kind] = path.name
    return names
