"""Our mel front-end against librosa (and torchaudio where it imports)."""

import importlib.util

import librosa
import numpy as np
import pytest
import torch

from academicodec.models.mel import MelSpectrogram, mel_filterbank


@pytest.mark.parametrize(
    ("rate", "n_fft", "n_mels", "fmax"),
    [(16000, 1024, 80, None), (24000, 1024, 80, 8000.0), (22050, 512, 64, None)],
)
def test_filterbank_matches_librosa(rate: int, n_fft: int, n_mels: int, fmax) -> None:
    ours = mel_filterbank(rate, n_fft, n_mels, 0.0, fmax)
    reference = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=fmax)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("rate", [16000, 24000])
def test_mel_spectrogram_matches_librosa(rate: int) -> None:
    audio = np.random.default_rng(0).standard_normal(rate).astype(np.float32) * 0.1
    mel = MelSpectrogram(rate, 1024, 256, n_mels=80, padding="center", log=False, magnitude_eps=0.0)
    ours = mel(torch.from_numpy(audio)[None]).numpy()[0]
    reference = librosa.feature.melspectrogram(
        y=audio, sr=rate, n_fft=1024, hop_length=256, n_mels=80, power=1.0, pad_mode="reflect"
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6)


def test_hifigan_padding_frames() -> None:
    """HiFi-GAN framing: reflect-pad (n_fft - hop) / 2, no centring: T / hop frames."""
    rate, hop = 16000, 200
    audio = np.random.default_rng(1).standard_normal(hop * 50).astype(np.float32) * 0.1
    mel = MelSpectrogram(rate, 1024, hop, win_length=800, n_mels=80, log=False, magnitude_eps=0)
    ours = mel(torch.from_numpy(audio)[None]).numpy()[0]
    pad = (1024 - hop) // 2
    padded = np.pad(audio, (pad, pad), mode="reflect")
    reference = librosa.feature.melspectrogram(
        y=padded, sr=rate, n_fft=1024, hop_length=hop, win_length=800, n_mels=80, power=1.0,
        center=False,
    )  # fmt: skip
    assert ours.shape == reference.shape == (80, 50)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(
    importlib.util.find_spec("torchaudio") is None,
    reason="torchaudio is not installed (optional; its PyPI wheels are CUDA builds)",
)
def test_matches_torchaudio() -> None:  # pragma: no cover - runs only where torchaudio imports
    import torchaudio

    audio = torch.randn(1, 16000) * 0.1
    reference = torchaudio.transforms.MelSpectrogram(
        16000, n_fft=1024, hop_length=256, n_mels=80, power=1.0, norm="slaney",
        mel_scale="slaney",
    )(audio)  # fmt: skip
    ours = MelSpectrogram(16000, 1024, 256, n_mels=80, padding="center", log=False)(audio)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
