"""Mel spectrograms with ``torch.stft`` and a filterbank of our own (no torchaudio).

The filterbank is librosa's default (Slaney mel scale, Slaney area normalisation), which is
what HiFi-GAN and AcademiCodec use; it is parameterised by the preset's sample rate, where
the original code hard-codes 24 kHz. ``padding="hifigan"`` reflect-pads (n_fft - hop) / 2 on
both sides and frames without centring, as HiFi-GAN's ``mel_spectrogram``; ``"center"``
matches ``torch.stft(center=True)`` / librosa / torchaudio.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

_F_SP = 200.0 / 3  # Slaney: Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = math.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOG_STEP
    return np.where(hz >= _MIN_LOG_HZ, log, linear)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = _F_SP * mel
    log = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters, Slaney-normalised (librosa's default)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_freqs = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2 : n_mels + 2] - mel_freqs[:n_mels]))[:, None]
    return weights.astype(np.float32)


class MelSpectrogram(nn.Module):
    """Waveform [B, 1, T] or [B, T] -> (log-)mel magnitude [B, n_mels, frames]."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        n_mels: int = 80,
        fmin: float = 0.0,
        fmax: float | None = None,
        power: float = 1.0,
        padding: str = "hifigan",
        log: bool = True,
        magnitude_eps: float = 1e-9,
        log_floor: float = 1e-5,
    ) -> None:
        super().__init__()
        if padding not in ("hifigan", "center"):
            raise ValueError(f"padding must be 'hifigan' or 'center', not {padding!r}")
        self.n_fft, self.hop_length = n_fft, hop_length
        self.win_length = win_length or n_fft
        self.power, self.padding, self.log = power, padding, log
        self.magnitude_eps, self.log_floor = magnitude_eps, log_floor
        basis = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
        self.register_buffer("mel_basis", torch.from_numpy(basis), persistent=False)
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)

    def forward(self, wav: Tensor) -> Tensor:
        x = wav.reshape(-1, wav.shape[-1]).float()
        center = self.padding == "center"
        if not center:
            pad = (self.n_fft - self.hop_length) // 2
            x = F.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
        spec = torch.stft(
            x,
            self.n_fft,
            self.hop_length,
            self.win_length,
            self.window,
            center=center,
            pad_mode="reflect",
            return_complex=True,
        )
        magnitude = (spec.real.pow(2) + spec.imag.pow(2) + self.magnitude_eps).sqrt()
        if self.power != 1.0:
            magnitude = magnitude.pow(self.power)
        mel = self.mel_basis @ magnitude
        return torch.log(mel.clamp(min=self.log_floor)) if self.log else mel
