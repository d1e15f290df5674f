"""Check an audio file cheaply (header, length, tail) and say why it is unusable if it is.

Header-only by default. Plain PCM/float WAV headers are parsed here (one open, one read),
which also catches truncation: libsndfile silently clamps a WAV whose ``data`` chunk is
shorter than declared. Other formats go through ``soundfile.info`` and decode their last few
frames (a cut-off FLAC has an intact header but loses sync at the end). ``verify=True``
decodes every file in full.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import soundfile as sf

from academicodec.audio import non_finite

TAIL_FRAMES = 256
HEADER_BYTES = 4096
WAVE_FORMAT_IEEE_FLOAT = 3
_WAV_FORMATS = {1, WAVE_FORMAT_IEEE_FLOAT, 0xFFFE}  # PCM, IEEE float, WAVE_FORMAT_EXTENSIBLE
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})


@dataclass(frozen=True)
class Probe:
    """The usable facts of one audio file, or the reason it is unusable."""

    sample_rate: int = 0
    num_frames: int = 0
    channels: int = 0
    error: str | None = None
    floating: bool = False  # float samples, which can be NaN/inf: decoded in full to check


def probe_audio(path: str, verify: bool = False) -> Probe:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(HEADER_BYTES)
    except OSError as exc:
        return Probe(error=f"unreadable file: {exc.strerror}")
    if size == 0:
        return Probe(error="empty file (0 bytes)")
    parsed = parse_wav_header(head, size)
    if parsed is not None and (parsed.error is not None or not verify):
        problem = _check_decode(path, parsed.num_frames, full=True) if parsed.floating else None
        return parsed if problem is None else Probe(error=problem)
    try:
        info = sf.info(path)
    except Exception as exc:  # libsndfile raises several types for bad headers
        return Probe(error=f"unreadable audio header: {_short(exc)}")
    rate, frames, channels = int(info.samplerate), int(info.frames), int(info.channels)
    if frames <= 0:
        return Probe(error="zero-length audio (no samples)")
    if info.format == "MP3" and not verify:
        # mpg123 seeks approximately and prints to stderr mid-frame; MP3 lengths are
        # estimates anyway. --verify decodes MP3s in full.
        problem = None
    elif info.subtype in FLOAT_SUBTYPES:
        problem = _check_decode(path, frames, full=True)  # float samples can be NaN/inf
    elif info.format == "WAV" and not verify:
        problem = None  # a WAV variant our parser leaves to libsndfile; its length is exact
    else:
        problem = _check_decode(path, frames, full=verify)
    if problem is not None:
        return Probe(error=problem)
    return Probe(rate, frames, channels)


def parse_wav_header(head: bytes, size: int) -> Probe | None:
    """Facts of a plain RIFF/WAVE file from its first bytes; ``None`` to defer to libsndfile."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    fmt: tuple[int, int, int, int, bool] | None = None
    pos = 12
    while pos + 8 <= len(head):
        chunk_id = head[pos : pos + 4]
        (chunk_size,) = struct.unpack_from("<I", head, pos + 4)
        if chunk_id == b"fmt " and pos + 24 <= len(head):
            tag, channels, rate, _, block_align = struct.unpack_from("<HHIIH", head, pos + 8)
            if tag == 0xFFFE and pos + 34 <= len(head):  # extensible: the sub-format's code
                (code,) = struct.unpack_from("<H", head, pos + 32)
            else:
                code = tag
            fmt = (tag, channels, rate, block_align, code == WAVE_FORMAT_IEEE_FLOAT)
        elif chunk_id == b"data":
            if fmt is None or fmt[0] not in _WAV_FORMATS or fmt[3] == 0 or fmt[1] == 0:
                return None
            if chunk_size in (0, 0xFFFFFFFF):  # streamed WAV: size never filled in
                return None
            available = size - (pos + 8)
            if available < chunk_size:
                return Probe(
                    error=f"truncated: header declares {chunk_size} bytes of audio, "
                    f"the file holds {available}"
                )
            frames = chunk_size // fmt[3]
            if frames == 0:
                return Probe(error="zero-length audio (no samples)")
            return Probe(sample_rate=fmt[2], num_frames=frames, channels=fmt[1], floating=fmt[4])
        pos += 8 + chunk_size + (chunk_size & 1)
    return None


def _check_decode(path: str, frames: int, full: bool) -> str | None:
    try:
        with sf.SoundFile(path) as f:
            if full:
                data = f.read(dtype="float32")
                if len(data) < frames:
                    return f"truncated: header declares {frames} frames, decoded {len(data)}"
                problem = non_finite(data)
                if problem is not None:
                    return problem
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
