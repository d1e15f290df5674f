"""Objective codec metrics, computed as Codec-SUPERB and published tables compute them.

PESQ is defined at 16 kHz (wide-band) and 8 kHz (narrow-band): other rates are resampled
first. Any metric that cannot be computed for an item (PESQ raises on silence or clips
shorter than ~0.25 s) raises ``MetricError`` with the reason, and the caller records it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from academicodec.audio import resample
from academicodec.models.measures import si_sdr as si_sdr_torch
from academicodec.models.mel import MelSpectrogram


class MetricError(ValueError):
    """A metric is undefined for this item (the reason is in the message)."""


def pesq(reference: np.ndarray, degraded: np.ndarray, rate: int, mode: str = "wb") -> float:
    from pesq import pesq as pesq_score

    target = 16000 if mode == "wb" else 8000
    ref, deg = resample(reference, rate, target), resample(degraded, rate, target)
    try:
        return float(pesq_score(target, ref, deg, mode))
    except Exception as exc:  # pesq raises its own error types for silence/short input
        raise MetricError(f"PESQ-{mode.upper()}: {type(exc).__name__}: {exc}") from exc


# A reference this quiet (peak under -80 dBFS) is silence: STOI and SI-SDR compare the
# degraded signal with nothing (pystoi returns ~0, SI-SDR about -80 dB) and would drag the
# means down; they are undefined for it, as PESQ already is.
SILENCE_PEAK = 1e-4


def _check_not_silent(reference: np.ndarray, metric: str) -> None:
    if reference.size == 0 or float(np.abs(reference).max()) < SILENCE_PEAK:
        raise MetricError(f"{metric} is undefined (silent reference)")


def stoi(reference: np.ndarray, degraded: np.ndarray, rate: int, extended: bool = False) -> float:
    from pystoi import stoi as stoi_score

    _check_not_silent(reference, "ESTOI" if extended else "STOI")
    value = float(stoi_score(reference, degraded, rate, extended=extended))
    if not math.isfinite(value):
        raise MetricError("STOI is undefined (silent reference)")
    return value


def si_sdr(reference: np.ndarray, degraded: np.ndarray) -> float:
    _check_not_silent(reference, "SI-SDR")
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))[None]
    deg = torch.from_numpy(np.ascontiguousarray(degraded, dtype=np.float32))[None]
    return float(si_sdr_torch(deg, ref)[0])


def mel_distance(reference: np.ndarray, degraded: np.ndarray, rate: int) -> float:
    """Multi-resolution log-mel L1 (n_fft 512/1024/2048, hop n_fft/4, 80 mels)."""
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))[None]
    deg = torch.from_numpy(np.ascontiguousarray(degraded, dtype=np.float32))[None]
    distances = []
    for n_fft in (512, 1024, 2048):
        if ref.shape[-1] <= n_fft:
            continue
        mel = MelSpectrogram(rate, n_fft, n_fft // 4, n_mels=80)
        distances.append(float((mel(ref) - mel(deg)).abs().mean()))
    if not distances:
        raise MetricError("mel distance: the clip is shorter than the smallest FFT window")
    return sum(distances) / len(distances)


def code_statistics(codes: np.ndarray, codebook_size: int) -> dict[str, list[float]]:
    """Per codebook over ``codes`` [N, K]: entropy (bits), perplexity, fraction used."""
    entropy, perplexity, used = [], [], []
    for k in range(codes.shape[1]):
        counts = np.bincount(codes[:, k].astype(np.int64), minlength=codebook_size)
        probs = counts[counts > 0] / counts.sum()
        bits = float(-(probs * np.log2(probs)).sum())
        entropy.append(bits)
        perplexity.append(2**bits)
        used.append(float((counts > 0).mean()))
    return {"entropy_bits": entropy, "perplexity": perplexity, "used": used}
