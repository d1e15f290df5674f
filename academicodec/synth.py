"""Speech-like audio without downloads: espeak-ng when installed, two signal models otherwise.

Tests, the demo and benchmarks make their own audio. The default fallback
(``voiced_signal``) is additive synthesis: the harmonics of a wandering pitch, weighted by
three formant resonances that glide from vowel to vowel, under a syllable envelope, plus a
little breath noise. It has speech's harmonic structure and spectral tilt, enough for codecs
and codebooks to learn from, and costs only numpy.

``formant_speech`` is another kind of voice, for held-out checks: a time-domain
source-filter synthesiser in the manner of Klatt's (a glottal pulse train through a cascade
of four time-varying resonators), with unvoiced fricatives, stop bursts and pauses, voices
from a low male to a child's, and levels from -36 to -6 dBFS RMS. A codec trained on
``voiced_signal`` audio has never heard anything made this way: what it does on these
clips says whether it learned audio or its training generator.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

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


# Klatt-style vowel targets (F1..F4, Hz) and fricative resonances (centre, bandwidth).
_KLATT_VOWELS = np.array(
    [
        [710, 1100, 2540, 3300], [280, 2250, 2890, 3500], [310, 870, 2250, 3300],
        [550, 1770, 2490, 3400], [590, 880, 2540, 3350], [490, 1350, 1690, 3300],
        [400, 1920, 2560, 3500], [660, 1700, 2400, 3400],
    ],
    dtype=np.float64,
)  # fmt: skip
_KLATT_BANDWIDTHS = np.array([60.0, 90.0, 150.0, 200.0])
_FRICATIVES = ((4500.0, 1500.0), (2500.0, 800.0), (6500.0, 2500.0))
_FRAME = 0.005  # seconds between filter updates


def formant_speech(duration: float, sample_rate: int, seed: int) -> np.ndarray:
    """A deterministic float32 utterance from a Klatt-style formant synthesiser: voiced
    syllables (glottal pulses through four resonators), fricatives, bursts and pauses, at
    a pitch (75-350 Hz) and level (-36 to -6 dBFS RMS) drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    n = max(1, int(round(duration * sample_rate)))
    hop = max(1, int(_FRAME * sample_rate))
    frames = -(-n // hop)
    segments = _klatt_segments(rng, frames * _FRAME)
    voiced, noise, targets, fric = _klatt_tracks(rng, segments, frames)
    scale = rng.uniform(0.85, 1.25)  # vocal-tract length: formants of a larger or smaller voice
    f0 = rng.choice([rng.uniform(75, 140), rng.uniform(160, 260), rng.uniform(240, 350)])
    pitch = f0 * (1 - 0.2 * np.linspace(0, 1, frames)) * (1 + 0.03 * rng.standard_normal(frames))
    source = _glottal_pulses(np.repeat(pitch, hop)[:n], sample_rate, rng)
    out = np.zeros(n)
    state_v = [np.zeros(2) for _ in range(4)]
    state_f = np.zeros(2)
    hiss = rng.standard_normal(n)
    for f in range(frames):
        block = slice(f * hop, min(n, (f + 1) * hop))
        excitation = source[block] * voiced[f] + 0.05 * hiss[block] * voiced[f]
        for i in range(4):
            freq = min(targets[f, i] * scale, 0.45 * sample_rate)
            b, a = _resonator(freq, _KLATT_BANDWIDTHS[i], sample_rate)
            excitation, state_v[i] = lfilter(b, a, excitation, zi=state_v[i])
        centre, width = _FRICATIVES[fric[f]]
        b, a = _resonator(min(centre, 0.45 * sample_rate), width, sample_rate)
        frication, state_f = lfilter(b, a, hiss[block] * noise[f], zi=state_f)
        out[block] = excitation + 0.3 * frication
    out -= out.mean()
    level = 10 ** (rng.uniform(-36.0, -6.0) / 20)
    # The drawn RMS level, unless the peaks would clip (loud, peaky voices come out lower).
    out *= min(level / (np.sqrt(np.mean(out**2)) or 1.0), 0.95 / (np.max(np.abs(out)) or 1.0))
    return out.astype(np.float32)


def _klatt_segments(rng: np.random.Generator, seconds: float) -> list[tuple[str, float]]:
    """(kind, seconds) pieces: vowels, fricatives, stops (closure + burst) and pauses."""
    segments: list[tuple[str, float]] = []
    total = 0.0
    while total < seconds:
        kind = rng.choice(["vowel", "vowel", "vowel", "fricative", "stop", "pause"])
        length = {"vowel": (0.08, 0.25), "fricative": (0.05, 0.15), "stop": (0.04, 0.09),
                  "pause": (0.05, 0.3)}[str(kind)]  # fmt: skip
        piece = float(rng.uniform(*length))
        segments.append((str(kind), piece))
        total += piece
    return segments


def _klatt_tracks(
    rng: np.random.Generator, segments: list[tuple[str, float]], frames: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame voicing and frication amplitudes, formant targets (smoothed so they glide)
    and the fricative's resonance, from the segment list."""
    voiced, noise = np.zeros(frames), np.zeros(frames)
    targets = np.zeros((frames, 4))
    fric = np.zeros(frames, dtype=int)
    vowel = _KLATT_VOWELS[rng.integers(len(_KLATT_VOWELS))]
    start = 0
    for kind, seconds in segments:
        stop = min(frames, start + max(1, int(seconds / _FRAME)))
        if kind == "vowel":
            vowel = _KLATT_VOWELS[rng.integers(len(_KLATT_VOWELS))]
            voiced[start:stop] = rng.uniform(0.5, 1.0)
        elif kind == "fricative":
            noise[start:stop] = rng.uniform(0.2, 0.6)
            fric[start:stop] = rng.integers(len(_FRICATIVES))
            voiced[start:stop] = rng.choice([0.0, 0.3])
        elif kind == "stop":
            burst = min(stop, start + 2)
            noise[start:burst] = rng.uniform(0.5, 1.0)
            fric[start:stop] = rng.integers(len(_FRICATIVES))
        targets[start:stop] = vowel
        start = stop
        if start >= frames:
            break
    targets[start:] = vowel
    kernel = np.hanning(9)
    kernel /= kernel.sum()
    for i in range(4):  # formants glide between segments
        targets[:, i] = np.convolve(np.pad(targets[:, i], 4, mode="edge"), kernel, "valid")
    voiced = np.convolve(np.pad(voiced, 2, mode="edge"), np.ones(5) / 5, "valid")
    return voiced, noise, targets, fric


def _glottal_pulses(pitch: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A Rosenberg-like glottal flow derivative: one pulse per period of ``pitch`` (Hz per
    sample), open quotient drawn per voice, then a gentle spectral tilt."""
    phase = np.cumsum(pitch / sample_rate) % 1.0
    open_quotient = rng.uniform(0.4, 0.7)
    rising = phase < open_quotient * 0.6
    falling = (phase >= open_quotient * 0.6) & (phase < open_quotient)
    flow = np.where(rising, 0.5 * (1 - np.cos(np.pi * phase / (open_quotient * 0.6))), 0.0)
    closing = (phase - open_quotient * 0.6) / (open_quotient * 0.4)
    flow = np.where(falling, np.cos(0.5 * np.pi * closing), flow)
    derivative = np.diff(flow, prepend=flow[0])
    return lfilter([1.0], [1.0, -rng.uniform(0.5, 0.9)], derivative)


def _resonator(freq: float, bandwidth: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Klatt's second-order resonator (unit gain at DC) as lfilter coefficients."""
    c = -np.exp(-2 * np.pi * bandwidth / sample_rate)
    b = 2 * np.exp(-np.pi * bandwidth / sample_rate) * np.cos(2 * np.pi * freq / sample_rate)
    a = 1 - b - c
    return np.array([a]), np.array([1.0, -b, -c])


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
