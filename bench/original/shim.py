"""What the original AcademiCodec needs from packages that are not here, or that changed.

The original HiFi-Codec step (``academicodec/models/hificodec``: models.py, meldataset.py,
and ``models/encodec/msstftd.py``) was written for torch 1.x, torchaudio and librosa < 0.10.
Three calls do not run beside this project's torch 2.13 CPU wheel:

- ``torchaudio.transforms.Spectrogram`` (the MS-STFT discriminator): torchaudio cannot be
  installed beside torch 2.13 CPU. ``Spectrogram`` below computes what torchaudio's does for
  the arguments the discriminator passes (complex output, ``power=None``, window-normalised,
  ``center=False``); ``check_shim.py`` compares it with torchaudio 2.8's on the same input.
- ``torch.stft`` without ``return_complex`` (meldataset.mel_spectrogram): an error on torch
  >= 2.0 for real input. The old call returned the real view of the complex result, which
  is what ``_stft`` returns.
- ``librosa.filters.mel(sr, n_fft, ...)`` positionally: keyword-only since librosa 0.10.

``install()`` puts the torchaudio stand-in in ``sys.modules`` before the original's modules
are imported; ``adapt(meldataset)`` points that module's two calls at the adapters. Nothing
of the original is copied: its own code runs, with these three calls answered here. This
file must not import our package: the original's package is also named ``academicodec``.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from typing import Any

import librosa
import torch
from torch import Tensor, nn


class Spectrogram(nn.Module):
    """torchaudio.transforms.Spectrogram for ``power=None``: the complex STFT [..., F, T],
    divided by the window's L2 norm when ``normalized`` (torchaudio's "window" norm)."""

    def __init__(
        self,
        n_fft: int = 400,
        win_length: int | None = None,
        hop_length: int | None = None,
        pad: int = 0,
        window_fn: Any = torch.hann_window,
        power: float | None = 2.0,
        normalized: bool | str = False,
        center: bool = True,
        pad_mode: str | None = "reflect",
        onesided: bool = True,
    ) -> None:
        super().__init__()
        if power is not None or pad or normalized not in (True, False, "window"):
            raise NotImplementedError("the stand-in covers the MS-STFT discriminator's call")
        self.n_fft, self.center, self.onesided = n_fft, center, onesided
        self.win_length = win_length or n_fft
        self.hop_length = hop_length or self.win_length // 2
        self.pad_mode = pad_mode or "reflect"
        self.normalized = bool(normalized)
        self.register_buffer("window", window_fn(self.win_length))

    def forward(self, waveform: Tensor) -> Tensor:
        shape = waveform.shape
        spec = torch.stft(
            waveform.reshape(-1, shape[-1]), self.n_fft, self.hop_length, self.win_length,
            self.window, center=self.center, pad_mode=self.pad_mode, normalized=False,
            onesided=self.onesided, return_complex=True,
        )  # fmt: skip
        spec = spec.reshape(shape[:-1] + spec.shape[-2:])
        if self.normalized:
            spec = spec / self.window.pow(2.0).sum().sqrt()
        return spec


def _stft(*args: Any, **kwargs: Any) -> Tensor:
    """``torch.stft`` as torch 1.x answered a call without ``return_complex``: [..., 2]."""
    if "return_complex" in kwargs:
        return torch.stft(*args, **kwargs)
    return torch.view_as_real(torch.stft(*args, return_complex=True, **kwargs))


class _TorchWithOldStft(types.ModuleType):
    """``torch`` for meldataset.py: everything torch's own, but ``stft`` as ``_stft``."""

    def __getattr__(self, name: str) -> Any:
        return _stft if name == "stft" else getattr(torch, name)


def _mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> Any:
    """librosa < 0.10's positional ``filters.mel(sr, n_fft, n_mels, fmin, fmax)``."""
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


def install() -> None:
    """A ``torchaudio`` module holding ``transforms.Spectrogram`` (and nothing else)."""
    torchaudio = types.ModuleType("torchaudio")
    transforms = types.ModuleType("torchaudio.transforms")
    transforms.Spectrogram = Spectrogram  # type: ignore[attr-defined]
    torchaudio.transforms = transforms  # type: ignore[attr-defined]
    for module in (torchaudio, transforms):
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
        sys.modules[module.__name__] = module


def adapt(meldataset: types.ModuleType) -> None:
    """Point the original meldataset's stft and mel-filter calls at the adapters."""
    meldataset.torch = _TorchWithOldStft("torch")  # type: ignore[attr-defined]
    meldataset.librosa_mel_fn = _mel_filters  # type: ignore[attr-defined]
