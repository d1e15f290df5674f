"""AISHELL-1: ``data_aishell/wav/{train,dev,test}/<spk>/*.wav`` + one transcript file.

The transcript (``data_aishell/transcript/aishell_transcript_v0.8.txt``) is word-segmented
with spaces; Chinese text has no spaces, so we remove them. Speaker gender comes from
``resource_aishell/speaker.info`` when present. Audio without a transcript is kept.
"""

from __future__ import annotations

from pathlib import Path

from academicodec.errors import UserError
from academicodec.manifests.entries import Entry, Fault, ScanResult
from academicodec.manifests.walk import walk_files

SPLITS = ("train", "dev", "test")
SAMPLE_RATE = 16000
TRANSCRIPT = Path("transcript") / "aishell_transcript_v0.8.txt"


def scan_aishell(src: Path) -> ScanResult:
    data_dir = _find_data_dir(src)
    transcript = data_dir / TRANSCRIPT
    texts: dict[str, str] = {}
    if transcript.is_file():
        for line in transcript.read_text(encoding="utf-8", errors="replace").splitlines():
            utt, _, text = line.strip().partition(" ")
            if utt and text.strip():
                texts[utt] = "".join(text.split())
    genders = _read_genders(data_dir.parent / "resource_aishell" / "speaker.info")

    result = ScanResult()
    seen: set[str] = set()
    for split in SPLITS:
        split_dir = data_dir / "wav" / split
        if not split_dir.is_dir():
            continue
        for path in walk_files(split_dir, result.skipped, split):
            if path.suffix.lower() != ".wav":
                result.ignored["non_audio"] += 1
                continue
            utt, speaker = path.stem, path.parent.name
            seen.add(utt)
            result.entries.append(
                Entry(
                    split=split,
                    id=utt,
                    audio=path,
                    text=texts.get(utt),
                    speaker=speaker,
                    gender=genders.get(speaker),
                    language="Chinese",
                    expected_rate=SAMPLE_RATE,
                )
            )
    for utt in sorted(texts.keys() - seen):
        result.skipped.append(Fault(f"{transcript}:{utt}", f"transcript of {utt} has no audio"))
    return result


def _find_data_dir(src: Path) -> Path:
    for candidate in (src / "data_aishell", src):
        if (candidate / "wav").is_dir() and any((candidate / "wav" / s).is_dir() for s in SPLITS):
            return candidate
    raise UserError(
        f"{src} is not an AISHELL-1 directory: expected data_aishell/wav/{{train,dev,test}}/"
    )


def _read_genders(path: Path) -> dict[str, str]:
    """``speaker.info`` lines are ``0002 F``; the wav folders are named ``S0002``."""
    genders: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if len(fields) >= 2:
                genders[f"S{fields[0]}"] = fields[1]
    return genders
