"""Check an audio file cheaply (header, length, tail) and say why it is unusable if it is.

Header-only by default: ``soundfile.info`` plus two cheap checks that catch what the header
hides. A WAV's ``data`` chunk size is compared with the file size (libsndfile silently clamps
a truncated WAV to what is there), and FLAC/OGG decode their last few frames (a cut-off FLAC
has an intact header but loses sync at the end). ``verify=True`` decodes everything.
"""

from __future__ import annotations

import multiprocessing
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import soundfile as sf

TAIL_FRAMES = 256
CHUNK = 128


@dataclass(frozen=True)
class Probe:
    """The usable facts of one audio file, or the reason it is unusable."""

    sample_rate: int = 0
    num_frames: int = 0
    channels: int = 0
    error: str | None = None


def probe_audio(path: str, verify: bool = False) -> Probe:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        return Probe(error=f"unreadable file: {exc.strerror}")
    if size == 0:
        return Probe(error="empty file (0 bytes)")
    try:
        info = sf.info(path)
    except Exception as exc:  # libsndfile raises several types for bad headers
        return Probe(error=f"unreadable audio header: {_short(exc)}")
    rate, frames, channels = int(info.samplerate), int(info.frames), int(info.channels)
    if frames <= 0:
        return Probe(error="zero-length audio (no samples)")
    if info.format == "WAV":
        problem = _check_wav_size(path, size)
        if problem is None and verify:
            problem = _check_decode(path, frames, full=True)
    elif info.format == "MP3" and not verify:
        # mpg123 seeks approximately and prints to stderr mid-frame; MP3 lengths are
        # estimates anyway. --verify decodes MP3s in full.
        problem = None
    else:
        problem = _check_decode(path, frames, full=verify)
    if problem is not None:
        return Probe(error=problem)
    return Probe(rate, frames, channels)


def probe_many(paths: Sequence[str], verify: bool) -> list[Probe]:
    return [probe_audio(p, verify) for p in paths]


def probe_all(
    paths: Sequence[str],
    jobs: int,
    verify: bool,
    on_done: Callable[[int], None] | None = None,
) -> list[Probe]:
    """Probe ``paths`` in order, over ``jobs`` processes; ``on_done(n)`` reports progress."""
    results: list[Probe] = []
    for batch in _probe_batches(paths, jobs, verify):
        results.extend(batch)
        if on_done is not None:
            on_done(len(batch))
    return results


def _probe_batches(paths: Sequence[str], jobs: int, verify: bool) -> Iterator[list[Probe]]:
    chunks = [list(paths[i : i + CHUNK]) for i in range(0, len(paths), CHUNK)]
    if jobs <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            yield probe_many(chunk, verify)
        return
    # fork: workers start in milliseconds, and probing touches no threads or torch state.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        yield from pool.map(probe_many, chunks, [verify] * len(chunks))


def _check_wav_size(path: str, size: int) -> str | None:
    """Compare the RIFF ``data`` chunk's declared size with the bytes actually present."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        return f"unreadable file: {exc.strerror}"
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None  # RF64/W64 and friends: leave it to the decoder
    pos = 12
    while pos + 8 <= len(head):
        chunk_id = head[pos : pos + 4]
        (chunk_size,) = struct.unpack("<I", head[pos + 4 : pos + 8])
        if chunk_id == b"data":
            if chunk_size in (0, 0xFFFFFFFF):  # streamed WAV: size never filled in
                return None
            available = size - (pos + 8)
            if available < chunk_size:
                return (
                    f"truncated: header declares {chunk_size} bytes of audio, "
                    f"the file holds {available}"
                )
            return None
        pos += 8 + chunk_size + (chunk_size & 1)
    return None


def _check_decode(path: str, frames: int, full: bool) -> str | None:
    try:
        with sf.SoundFile(path) as f:
            if full:
                data = f.read(dtype="float32")
                if len(data) < frames:
                    return f"truncated: header declares {frames} frames, decoded {len(data)}"
                if not np.isfinite(data).all():
                    return "corrupt: decoded samples are not finite"
            else:
                start = max(0, frames - TAIL_FRAMES)
                f.seek(start)
                tail = f.read(frames - start, dtype="float32")
                if len(tail) < frames - start:
                    return f"truncated: header declares {frames} frames, the end is missing"
    except Exception as exc:
        return f"truncated or corrupt audio: {_short(exc)}"
    return None


def _short(exc: BaseException) -> str:
    """libsndfile errors repeat the path; keep the message after it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if ": " in text and text.startswith("Error opening"):
        text = text.split(": ", 1)[1]
    return text
