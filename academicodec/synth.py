"""Speech-like audio without downloads: espeak-ng when installed, a voiced-signal model otherwise.

Tests, the demo and benchmarks make their own audio. The fallback is additive synthesis: the
harmonics of a wandering pitch, weighted by three formant resonances that glide from vowel to
vowel, under a syllable envelope, plus a little breath noise. It has speech's harmonic
structure and spectral tilt, enough for codecs and codebooks to learn from, and costs only
numpy.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from academicodec.audio import load_audio

# (F1, F2, F3) in Hz for a few vowels; a syllable glides between two of them.
_VOWELS = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]],
    dtype=np.float64,
)
_BANDWIDTHS = np.array([90.0, 110.0, 150.0])
_BLOCK = 4096


def voiced_signal(duration: float, sample_rate: int, seed: int) -> np.ndarray:
    """A deterministic speech-like float32 signal in [-1, 1] of ``duration`` seconds."""
    rng = np.random.default_rng(seed)
    n = max(1, int(round(duration * sample_rate)))
    t = np.arange(n) / sample_rate
    base = rng.uniform(90, 220)
    f0 = base * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0 / sample_rate)

    syllable = rng.uniform(0.15, 0.3)
    n_syll = int(np.ceil(duration / syllable)) + 1
    targets = _VOWELS[rng.integers(0, len(_VOWELS), size=n_syll + 1)]
    position = t / syllable
    index = np.minimum(position.astype(int), n_syll - 1)
    blend = (position - index)[:, None]
    formants = targets[index] * (1 - blend) + targets[index + 1] * blend

    # Voiced speech carries little above ~5 kHz; stopping there keeps synthesis cheap.
    top = min(sample_rate / 2, 5500.0)
    n_harmonics = max(1, int(top / (base * 0.85)) - 1)
    k = np.arange(1, n_harmonics + 1)[:, None]
    out = np.zeros(n)
    for start in range(0, n, _BLOCK):
        block = slice(start, min(n, start + _BLOCK))
        freqs = k * f0[block]  # [K, B]
        gain = np.zeros_like(freqs)
        for i in range(3):
            gain += 1.0 / (1.0 + ((freqs - formants[block, i]) / _BANDWIDTHS[i]) ** 2)
        gain *= (freqs < top) / k  # -6 dB/octave source tilt, nothing past the top
        out[block] = (gain * np.sin(k * phase[block])).sum(axis=0)
    envelope = np.clip(np.sin(np.pi * (position % 1.0)) * 1.3, 0, 1) ** 0.7
    out = out * envelope + 0.01 * rng.standard_normal(n)
    peak = np.max(np.abs(out)) or 1.0
    return (0.7 * out / peak).astype(np.float32)


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_speech(text: str, sample_rate: int, voice: str = "en", speed: int = 160) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng and return it resampled to ``sample_rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
            check=True,
            capture_output=True,
        )
        samples, _ = load_audio(wav, target_rate=sample_rate)
    return samples
