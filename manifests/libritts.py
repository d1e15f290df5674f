"""LibriTTS (and LibriTTS-R): any subset of its parts, transcripts per utterance.

Layout: ``ROOT/<part>/<speaker>/<chapter>/<spk>_<chapter>_<para>_<sent>.wav`` with
``.normalized.txt`` (our text) and ``.original.txt`` (kept in ``custom``) beside each file,
and ``<spk>_<chapter>.trans.tsv`` per chapter (the same texts, read first: one file per
chapter instead of two per utterance).
Unlike lhotse's recipe, a missing part is not an error and a corrupt file is reported.
"""

from __future__ import annotations

from pathlib import Path

from academicodec.errors import UserError
from academicodec.manifests.entries import Entry, Fault, ScanResult
from academicodec.manifests.walk import read_text, walk_files

PARTS = (
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
)
SAMPLE_RATE = 24000


def scan_libritts(src: Path, parts: list[str] | None = None) -> ScanResult:
    root = _find_root(src)
    found = [part for part in PARTS if (root / part).is_dir()]
    if parts:
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            raise UserError(f"--parts: unknown LibriTTS part(s) {unknown}; known: {list(PARTS)}")
        missing = [p for p in parts if p not in found]
        if missing:
            raise UserError(f"--parts: {missing} not found under {root} (found: {found or 'none'})")
        found = parts
    genders = _read_genders(root)
    result = ScanResult()
    for part in found:
        _scan_part(root / part, part, genders, result)
    return result


def _find_root(src: Path) -> Path:
    for candidate in (src, src / "LibriTTS", src / "LibriTTS_R"):
        if any((candidate / part).is_dir() for part in PARTS):
            return candidate
    raise UserError(
        f"{src} is not a LibriTTS directory: none of its parts ({', '.join(PARTS)}) is in it"
    )


def _read_genders(root: Path) -> dict[str, str]:
    """Speaker gender from ``SPEAKERS.txt`` (``|``-separated) or ``speakers.tsv`` (tabs)."""
    genders: dict[str, str] = {}
    speakers_txt = root / "SPEAKERS.txt"
    if speakers_txt.is_file():
        for line in speakers_txt.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = [f.strip() for f in line.split("|")]
            if line.startswith(";") or len(fields) < 2:
                continue
            genders[fields[0]] = fields[1]
    speakers_tsv = root / "speakers.tsv"
    if speakers_tsv.is_file():
        for line in speakers_tsv.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
            fields = line.split("\t")
            if len(fields) >= 2:
                genders.setdefault(fields[0].strip(), fields[1].strip())
    return genders


def _scan_part(part_dir: Path, part: str, genders: dict[str, str], result: ScanResult) -> None:
    audio: dict[str, Path] = {}
    normalized: dict[str, Path] = {}
    original: dict[str, Path] = {}
    tsv_text: dict[str, tuple[str, str, Path]] = {}
    for path in walk_files(part_dir, result.skipped, part):
        name = path.name
        if name.endswith(".wav"):
            audio[name[: -len(".wav")]] = path
        elif name.endswith(".normalized.txt"):
            normalized[name[: -len(".normalized.txt")]] = path
        elif name.endswith(".original.txt"):
            original[name[: -len(".original.txt")]] = path
        elif name.endswith(".trans.tsv"):
            _read_trans_tsv(path, tsv_text)
        elif not name.endswith(".book.tsv"):
            result.ignored["non_audio"] += 1

    for utt_id, path in audio.items():
        # trans.tsv (one read per chapter) holds the same normalized/original text as the
        # per-utterance files; those are read only for utterances it does not list.
        original_text, text, _ = tsv_text.get(utt_id, (None, None, None))
        if text is None and utt_id in normalized:
            text = read_text(normalized[utt_id])
        if original_text is None and utt_id in original:
            original_text = read_text(original[utt_id])
        speaker = utt_id.split("_")[0]
        result.entries.append(
            Entry(
                split=part,
                id=utt_id,
                audio=path,
                text=text,
                speaker=speaker,
                gender=genders.get(speaker),
                language="English",
                custom={"original_text": original_text} if original_text else None,
                expected_rate=SAMPLE_RATE,
            )
        )

    orphan_texts = {**{k: v[2] for k, v in tsv_text.items()}, **normalized}
    for utt_id in sorted(orphan_texts.keys() - audio.keys()):
        result.skipped.append(
            Fault(str(orphan_texts[utt_id]), f"transcript of {utt_id} has no audio", part)
        )


def _read_trans_tsv(path: Path, into: dict[str, tuple[str, str, Path]]) -> None:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            into[fields[0]] = (fields[1], fields[2], path)
