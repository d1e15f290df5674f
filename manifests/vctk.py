"""VCTK 0.92 (FLAC, two microphones) and the older 0.80 layout (48 kHz WAV).

0.92: ``ROOT/wav48_silence_trimmed/<spk>/<utt>_mic{1,2}.flac`` and ``ROOT/txt/<spk>/<utt>.txt``.
0.80: ``ROOT/wav48/<spk>/<utt>.wav`` and the same ``txt/``. ``speaker-info.txt`` gives
gender, age and accent. Utterances without a transcript (all of p315 in 0.92) are kept.
"""

from __future__ import annotations

from pathlib import Path

from academicodec.errors import UserError
from academicodec.manifests.entries import Entry, Fault, ScanResult
from academicodec.manifests.walk import read_text, walk_files

SAMPLE_RATE = 48000
MICS = ("mic1", "mic2")


def scan_vctk(src: Path, mic: str = "mic1") -> ScanResult:
    if mic not in MICS:
        raise UserError(f"--mic must be one of {list(MICS)}, not {mic!r}")
    root = _find_root(src)
    new_layout = (root / "wav48_silence_trimmed").is_dir()
    audio_dir = root / ("wav48_silence_trimmed" if new_layout else "wav48")
    speakers = _read_speaker_info(root / "speaker-info.txt")
    result = ScanResult()

    texts: dict[str, Path] = {}
    if (root / "txt").is_dir():
        for path in walk_files(root / "txt", result.skipped, "all"):
            if path.suffix == ".txt":
                texts[path.stem] = path

    used_texts: set[str] = set()
    suffix = f"_{mic}.flac" if new_layout else ".wav"
    for path in walk_files(audio_dir, result.skipped, "all"):
        name = path.name
        if not name.endswith(suffix):
            other_mic = new_layout and name.endswith(".flac")
            result.ignored["other_microphone" if other_mic else "non_audio"] += 1
            continue
        utt = name[: -len(suffix)]
        speaker = path.parent.name
        info = speakers.get(speaker, {})
        text = read_text(texts[utt]) if utt in texts else None
        used_texts.add(utt)
        result.entries.append(
            Entry(
                split="all",
                id=path.stem,
                audio=path,
                text=text,
                speaker=speaker,
                gender=info.get("gender"),
                language="English",
                custom={k: v for k, v in info.items() if k != "gender"} or None,
                expected_rate=SAMPLE_RATE,
            )
        )
    for utt in sorted(texts.keys() - used_texts):
        result.skipped.append(Fault(str(texts[utt]), f"transcript of {utt} has no audio", "all"))
    return result


def _find_root(src: Path) -> Path:
    candidates = [src, *sorted(p for p in src.glob("VCTK*") if p.is_dir())]
    for candidate in candidates:
        if (candidate / "wav48_silence_trimmed").is_dir() or (candidate / "wav48").is_dir():
            return candidate
    raise UserError(
        f"{src} is not a VCTK directory: it has neither wav48_silence_trimmed/ (0.92) "
        "nor wav48/ (0.80)"
    )


def _read_speaker_info(path: Path) -> dict[str, dict[str, str]]:
    """``ID AGE GENDER ACCENTS REGION``; 0.80 writes ids without the ``p`` the folders use."""
    speakers: dict[str, dict[str, str]] = {}
    if not path.is_file():
        return speakers
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 3:
            continue
        speaker = fields[0] if not fields[0].isdigit() else f"p{fields[0]}"
        info = {"age": fields[1], "gender": fields[2]}
        if len(fields) > 3:
            info["accent"] = fields[3]
        if len(fields) > 4:
            info["region"] = " ".join(fields[4:])
        speakers[speaker] = info
    return speakers
