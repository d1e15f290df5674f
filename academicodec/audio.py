"""Audio I/O without torchaudio: soundfile to read and write, soxr to resample.

Every stage loads audio through here, so downmixing and resampling behave the same in
sharding, tokenizing and evaluation.
"""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus"})


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: enough to build a manifest without decoding."""

    sample_rate: int
    num_frames: int
    channels: int
    format: str

    @property
    def duration(self) -> float:
        return self.num_frames / self.sample_rate


def non_finite(samples: np.ndarray) -> str | None:
    """Why ``samples`` cannot be used when some are NaN or infinite (float formats can hold
    them; a codec would turn the whole item into garbage), else None. Every stage refuses
    such an item with this reason: prepare (float files), shard, tokenize and eval."""
    bad = int(samples.size - np.count_nonzero(np.isfinite(samples)))
    if not bad:
        return None
    return f"NaN or infinite samples ({bad} of {samples.size}): the item is refused"


def audio_info(path: str | Path) -> AudioInfo:
    """Read only the header of ``path``."""
    info = sf.info(str(path))
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels), info.format)


def downmix(samples: np.ndarray) -> np.ndarray:
    """[T, C] or [T] -> [T]: mean over channels (multi-channel audio is kept, never dropped)."""
    if samples.ndim == 1:
        return samples
    if samples.shape[1] == 1:
        return samples[:, 0]
    return samples.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono float32 signal with soxr's high-quality filter (deterministic)."""
    if source_rate == target_rate:
        return samples
    return soxr.resample(samples, source_rate, target_rate, quality="HQ").astype(
        np.float32, copy=False
    )


def load_audio(
    source: str | Path | bytes,
    target_rate: int | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode ``source`` (a path or encoded bytes) to mono float32, optionally resampled.

    ``offset``/``duration`` are in seconds of the source and select a window without
    decoding the rest of the file. Returns ``(samples[T], sample_rate)``.
    """
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise FileNotFoundError(f"file not found: {source}")  # not libsndfile's "System error."
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with ctrl_c_after(), sf.SoundFile(handle) as f:
        rate = f.samplerate
        start = int(round(offset * rate))
        if start:
            f.seek(start)
        frames = -1 if duration is None else int(round(duration * rate))
        samples = f.read(frames, dtype="float32", always_2d=True)
    mono = downmix(samples)
    if target_rate is not None and target_rate != rate:
        return resample(mono, rate, target_rate), target_rate
    return mono, rate


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str = "flac") -> bytes:
    """Encode mono float samples as 16-bit FLAC or WAV bytes (clipped to [-1, 1])."""
    buffer = io.BytesIO()
    clipped = np.clip(samples, -1.0, 1.0)
    with ctrl_c_after():
        sf.write(buffer, clipped, sample_rate, format=fmt.upper(), subtype="PCM_16")
    return buffer.getvalue()


@contextmanager
def ctrl_c_after() -> Iterator[None]:
    """Hold a Ctrl-C back until the body ends. libsndfile reads and writes file objects
    (``BytesIO``) through cffi callbacks, and a ``KeyboardInterrupt`` raised inside one is
    printed ("Exception ignored from cffi callback") and lost: the run went on and exited
    0. Here the signal is sent again once the body is done. Only the main thread runs
    Python's signal handlers, so elsewhere the body runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:  # delivered again, to whatever handler the process had
        os.kill(os.getpid(), signal.SIGINT)
