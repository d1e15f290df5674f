"""Small synthetic corpora in every layout ``prepare`` reads: for the demo, tests, benchmarks.

Each writer lays files out exactly as the real corpus does, with generated speech-like audio
(``academicodec.synth``) and generated sentences, and returns what it wrote so a caller can
check manifests against it. Faults are planted by tests on top of these trees.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from academicodec.ids import path_id, safe_id
from academicodec.synth import espeak_speech, formant_speech, have_espeak, voiced_signal

_WORDS = (
    "the quick brown fox jumps over a lazy dog while seven bright birds sing near old stone "
    "walls and rivers carry quiet songs through green valleys under silver clouds at dawn"
)
GENERATORS = {"harmonic": voiced_signal, "formant": formant_speech}
_HANZI = "我们今天天气很好明天去北京学习中文电话号码音乐公司工作时间问题发展"


@dataclass(frozen=True)
class Written:
    """One utterance a writer created."""

    id: str
    path: Path
    num_samples: int
    sample_rate: int
    text: str | None
    speaker: str

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate


class SpeechSource:
    """Makes an utterance's audio: espeak-ng if asked for and installed, else generated.

    ``generator`` picks the signal model: ``harmonic`` (``voiced_signal``, what the demo and
    the tests train on) or ``formant`` (``formant_speech``, another kind of voice for
    held-out checks). A pool of voiced clips is reused (cropped, gain-varied) so writing
    thousands of files for a benchmark does not spend minutes synthesising.
    """

    def __init__(
        self, use_espeak: bool = False, pool: int = 0, seed: int = 0, generator: str = "harmonic"
    ) -> None:
        if generator not in GENERATORS:
            raise ValueError(f"generator must be one of {sorted(GENERATORS)}, not {generator!r}")
        self.use_espeak = use_espeak and have_espeak()
        self.seed = seed
        self._generate = GENERATORS[generator]
        self._pool_size = pool
        self._pool: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, text: str, duration: float, sample_rate: int, seed: int) -> np.ndarray:
        if self.use_espeak:
            voice = "cmn" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"
            return espeak_speech(text, sample_rate, voice=voice, speed=140 + seed % 40)
        if not self._pool_size:
            return self._generate(duration, sample_rate, seed)
        return self._from_pool(duration, sample_rate, seed)

    def _from_pool(self, duration: float, sample_rate: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        key = (sample_rate, seed % self._pool_size)
        if key not in self._pool:
            self._pool[key] = self._generate(16.0, sample_rate, self.seed + key[1])
        clip = self._pool[key]
        n = int(round(duration * sample_rate))
        start = int(rng.integers(0, max(1, len(clip) - n)))
        return (clip[start : start + n] * rng.uniform(0.5, 1.0)).astype(np.float32)


def sentence(rng: np.random.Generator, chinese: bool = False) -> str:
    if chinese:
        return "".join(rng.choice(list(_HANZI), size=int(rng.integers(6, 14))))
    words = rng.choice(_WORDS.split(), size=int(rng.integers(4, 10)))
    return " ".join(words).capitalize() + "."


def _write(path: Path, audio: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sample_rate, subtype=subtype if path.suffix == ".wav" else None)
    return len(audio)


def _duration(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.round(rng.uniform(low, high), 2))


def make_libritts(
    root: Path,
    parts: dict[str, int],
    speakers: int = 2,
    seed: int = 0,
    source: SpeechSource | None = None,
    durations: tuple[float, float] = (0.6, 1.6),
) -> list[Written]:
    """``root/<part>/<spk>/<chapter>/...wav`` + texts, trans.tsv, book.tsv and SPEAKERS.txt."""
    source = source or SpeechSource()
    rng = np.random.default_rng(seed)
    written = []
    speaker_lines = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for p, (part, count) in enumerate(sorted(parts.items())):
        for s in range(speakers):
            speaker, chapter = f"{100 + 10 * p + s}", f"{5000 + 10 * p + s}"
            speaker_lines.append(f"{speaker} | {'FM'[s % 2]} | {part} | 1.00 | Reader {speaker}")
            chapter_dir = root / part / speaker / chapter
            trans, book = [], []
            for u in range(s, count, speakers):
                utt = f"{speaker}_{chapter}_{u:06d}_000000"
                text = sentence(rng)
                seconds = _duration(rng, *durations)
                audio = source(text, seconds, 24000, seed * 100003 + len(written))
                n = _write(chapter_dir / f"{utt}.wav", audio, 24000)
                (chapter_dir / f"{utt}.normalized.txt").write_text(text, encoding="utf-8")
                (chapter_dir / f"{utt}.original.txt").write_text(text.upper(), encoding="utf-8")
                trans.append(f"{utt}\t{text.upper()}\t{text}")
                book.append(f"{utt}\t{text.upper()}\t{text}\t0\t0\t30.0")
                written.append(Written(utt, chapter_dir / f"{utt}.wav", n, 24000, text, speaker))
            if trans:
                (chapter_dir / f"{speaker}_{chapter}.trans.tsv").write_text("\n".join(trans) + "\n")
                (chapter_dir / f"{speaker}_{chapter}.book.tsv").write_text("\n".join(book) + "\n")
    root.mkdir(parents=True, exist_ok=True)
    (root / "SPEAKERS.txt").write_text("\n".join(speaker_lines) + "\n", encoding="utf-8")
    return written


def make_vctk(
    root: Path,
    speakers: int = 2,
    utterances: int = 3,
    layout: str = "0.92",
    seed: int = 0,
    source: SpeechSource | None = None,
    sample_rate: int = 48000,
) -> list[Written]:
    """0.92: ``wav48_silence_trimmed/<spk>/<utt>_mic{1,2}.flac``; 0.80: ``wav48/<spk>/*.wav``."""
    source = source or SpeechSource()
    rng = np.random.default_rng(seed)
    written = []
    info = ["ID  AGE  GENDER  ACCENTS  REGION COMMENTS"]
    for s in range(speakers):
        speaker = f"p{225 + s}"
        listed = speaker if layout == "0.92" else speaker[1:]  # 0.80 lists ids without "p"
        info.append(f"{listed}  23  {'FM'[s % 2]}    English    Southern  England")
        for u in range(1, utterances + 1):
            utt = f"{speaker}_{u:03d}"
            text = sentence(rng)
            audio = source(text, _duration(rng, 0.6, 1.6), sample_rate, seed * 7919 + len(written))
            (root / "txt" / speaker).mkdir(parents=True, exist_ok=True)
            (root / "txt" / speaker / f"{utt}.txt").write_text(text + "\n", encoding="utf-8")
            if layout == "0.92":
                folder = root / "wav48_silence_trimmed" / speaker
                n = _write(folder / f"{utt}_mic1.flac", audio, sample_rate)
                _write(folder / f"{utt}_mic2.flac", audio * 0.8, sample_rate)
                path = folder / f"{utt}_mic1.flac"
                written.append(Written(f"{utt}_mic1", path, n, sample_rate, text, speaker))
            else:
                path = root / "wav48" / speaker / f"{utt}.wav"
                n = _write(path, audio, sample_rate)
                written.append(Written(utt, path, n, sample_rate, text, speaker))
    (root / "speaker-info.txt").write_text("\n".join(info) + "\n", encoding="utf-8")
    return written


def make_aishell(
    root: Path,
    splits: dict[str, int],
    speakers: int = 2,
    seed: int = 0,
    source: SpeechSource | None = None,
) -> list[Written]:
    """``data_aishell/wav/<split>/<spk>/BAC009<spk>W<n>.wav`` + the word-segmented transcript."""
    source = source or SpeechSource()
    rng = np.random.default_rng(seed)
    written, lines, genders = [], [], []
    for p, (split, count) in enumerate(sorted(splits.items())):
        for u in range(count):
            number = 2 + 10 * p + u % speakers
            speaker = f"S{number:04d}"
            utt = f"BAC009{speaker}W{u:04d}"
            text = sentence(rng, chinese=True)
            audio = source(text, _duration(rng, 0.6, 1.6), 16000, seed * 104729 + len(written))
            path = root / "data_aishell" / "wav" / split / speaker / f"{utt}.wav"
            n = _write(path, audio, 16000)
            lines.append(f"{utt} {' '.join(text)}")
            written.append(Written(utt, path, n, 16000, text, speaker))
            genders.append(f"{number:04d} {'FM'[number % 2]}")
    transcript = root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    transcript.parent.mkdir(parents=True, exist_ok=True)
    transcript.write_text("\n".join(lines) + "\n", encoding="utf-8")
    speaker_info = root / "resource_aishell" / "speaker.info"
    speaker_info.parent.mkdir(parents=True, exist_ok=True)
    speaker_info.write_text("\n".join(sorted(set(genders))) + "\n", encoding="utf-8")
    return written


def make_folder(
    root: Path,
    count: int,
    seed: int = 0,
    source: SpeechSource | None = None,
    rates: tuple[int, ...] = (16000, 22050, 44100),
    formats: tuple[str, ...] = ("wav", "flac", "ogg"),
    durations: tuple[float, float] = (0.6, 1.6),
) -> list[Written]:
    """A plain tree: ``spkN/clip_M.<fmt>`` at mixed rates; even clips get a ``.txt`` beside."""
    source = source or SpeechSource()
    rng = np.random.default_rng(seed)
    written = []
    for i in range(count):
        rate, fmt = rates[i % len(rates)], formats[i % len(formats)]
        speaker = f"spk{i % 3}"
        text = sentence(rng) if i % 2 == 0 else None
        audio = source(text or "hello", _duration(rng, *durations), rate, seed * 31 + i)
        path = root / speaker / f"clip_{i:04d}.{fmt}"
        n = _write(path, audio, rate)
        if text is not None:
            path.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
        item_id = path_id((safe_id(root.name), speaker, f"clip_{i:04d}"))  # as prepare names it
        written.append(Written(item_id, path, n, rate, text, speaker))
    return written


def make_hf(
    root: Path,
    splits: dict[str, int],
    seed: int = 0,
    source: SpeechSource | None = None,
    sample_rate: int = 16000,
) -> list[Written]:
    """A ``save_to_disk`` DatasetDict with an ``audio`` column of encoded FLAC bytes."""
    from datasets import Audio, Dataset, DatasetDict

    source = source or SpeechSource()
    rng = np.random.default_rng(seed)
    written, dataset = [], {}
    for split, count in sorted(splits.items()):
        rows: dict[str, list] = {"id": [], "audio": [], "text": [], "speaker_id": []}
        for i in range(count):
            utt, text = f"{split}_{i:04d}", sentence(rng)
            audio = source(text, _duration(rng, 0.6, 1.6), sample_rate, seed * 13 + len(written))
            buffer = io.BytesIO()
            sf.write(buffer, audio, sample_rate, format="FLAC")
            rows["id"].append(utt)
            rows["audio"].append({"bytes": buffer.getvalue(), "path": f"{utt}.flac"})
            rows["text"].append(text)
            rows["speaker_id"].append(f"s{i % 2}")
            written.append(
                Written(utt, Path(f"{utt}.flac"), len(audio), sample_rate, text, f"s{i % 2}")
            )
        # Encoding through Audio() needs torchcodec; building the struct and casting does not.
        dataset[split] = Dataset.from_dict(rows).cast_column("audio", Audio(decode=False))
    DatasetDict(dataset).save_to_disk(str(root))
    return written
