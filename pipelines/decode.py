"""Turn a shard sample's raw files into arrays, with soundfile (webdataset's decoder needs
torchaudio, which we do not require)."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import soundfile as sf

AUDIO_EXTS = ("flac", "wav")


def decode_sample(key: str, files: dict[str, bytes]) -> dict[str, Any]:
    """``{"key", "audio" (float32 [T]), "sample_rate", "meta"}`` from ``{ext: bytes}``."""
    ext = next((e for e in AUDIO_EXTS if e in files), None)
    if ext is None:
        raise ValueError(f"sample {key} has no audio member ({', '.join(AUDIO_EXTS)})")
    audio, rate = sf.read(io.BytesIO(files[ext]), dtype="float32", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1, dtype=np.float32)
    meta = json.loads(files["json"]) if "json" in files else {}
    return {"key": key, "audio": audio, "sample_rate": int(rate), "meta": meta}


def decode_wds_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """The same, for a sample dict as ``webdataset.WebDataset`` yields it (``__key__`` etc.).

    Use as ``wds.WebDataset(urls).map(decode_wds_sample)``.
    """
    files = {k: v for k, v in sample.items() if not k.startswith("__")}
    return decode_sample(sample["__key__"], files)
