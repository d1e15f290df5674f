"""Parity of ``shim.py`` with the packages it stands in for, across two environments.

    # 1. in a throwaway venv with the original's packages (torch 2.8, torchaudio 2.8,
    #    librosa 0.9.2, numpy < 2):
    python bench/original/check_shim.py reference shim_reference.npz
    # 2. in ours: the shim's answers to the same calls on the same input
    python bench/original/check_shim.py compare shim_reference.npz

``reference`` makes a fixed input and records what the real calls return:
``torchaudio.transforms.Spectrogram`` as the MS-STFT discriminator builds it (its five
default scales), ``torch.stft(..., return_complex=False)`` as meldataset.mel_spectrogram
calls it (the loss's three FFT sizes) and ``librosa.filters.mel`` called positionally (the
same sizes). ``compare`` feeds the stored input to the shim and prints one JSON line with
each call's largest difference relative to the reference's largest magnitude; exit 1 if one
is over ``TOLERANCE``. The recorded run is in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

# The MS-STFT discriminator's default scales (n_fft, hop, win) and the generator loss's
# mel_spectrogram calls (n_fft, hop, win) in the 16k_320d recipe.
DISCRIMINATOR_SCALES = [(1024, 256, 1024), (2048, 512, 2048), (512, 128, 512), (256, 64, 256),
                        (128, 32, 128)]  # fmt: skip
MEL_CALLS = [(1024, 200, 800), (512, 120, 512), (256, 60, 256)]
RATE, MELS = 16000, 80
TOLERANCE = 1e-5


def the_input() -> np.ndarray:
    return (np.random.default_rng(31).standard_normal((2, 1, 4096)) * 0.1).astype(np.float32)


def padded(wav: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """meldataset's reflect padding before its stft."""
    side = int((n_fft - hop) / 2)
    return torch.nn.functional.pad(wav, (side, side), mode="reflect").squeeze(1)


def answers(spectrogram: Any, stft: Any, mel_filters: Any) -> dict[str, np.ndarray]:
    """Each adapted call's answer on ``the_input()``, from the given implementations."""
    wav = torch.from_numpy(the_input())
    arrays = {}
    for n_fft, hop, win in DISCRIMINATOR_SCALES:
        spec = spectrogram(
            n_fft=n_fft, hop_length=hop, win_length=win, window_fn=torch.hann_window,
            normalized=True, center=False, pad_mode=None, power=None,
        )(wav)  # fmt: skip
        arrays[f"spectrogram_{n_fft}"] = torch.view_as_real(spec).numpy()
    for n_fft, hop, win in MEL_CALLS:
        arrays[f"stft_{n_fft}"] = stft(
            padded(wav, n_fft, hop), n_fft, hop_length=hop, win_length=win,
            window=torch.hann_window(win), center=False, pad_mode="reflect", normalized=False,
            onesided=True,
        ).numpy()  # fmt: skip
        arrays[f"mel_{n_fft}"] = mel_filters(RATE, n_fft, MELS, 0, None)
    return arrays


def reference(out: Path) -> None:
    """The real calls, as the original makes them (run where they still work)."""
    import librosa
    import torchaudio

    def old_stft(*args: Any, **kwargs: Any) -> torch.Tensor:
        return torch.stft(*args, return_complex=False, **kwargs)

    arrays = answers(torchaudio.transforms.Spectrogram, old_stft, librosa.filters.mel)
    versions = {"torch": torch.__version__, "torchaudio": torchaudio.__version__,
                "librosa": librosa.__version__}  # fmt: skip
    np.savez_compressed(out, versions=json.dumps(versions), input=the_input(), **arrays)


def compare(path: Path) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import shim

    stored = np.load(path)
    assert np.array_equal(stored["input"], the_input()), "the reference has another input"
    ours = answers(shim.Spectrogram, shim._stft, shim._mel_filters)
    differences: dict[str, float | str] = {}
    for name, value in ours.items():
        expected = stored[name]
        if value.shape != expected.shape:
            differences[name] = f"shape {value.shape} != {expected.shape}"
            continue
        scale = float(np.abs(expected).max()) or 1.0
        differences[name] = float(np.abs(value - expected).max()) / scale
    failed = [n for n, d in differences.items() if isinstance(d, str) or d > TOLERANCE]
    print(json.dumps({
        "bench": "check_shim", "reference": json.loads(str(stored["versions"])),
        "here": {"torch": torch.__version__}, "relative_max_difference": differences,
        "tolerance": TOLERANCE, "failed": failed,
    }))  # fmt: skip
    return 1 if failed else 0


def main() -> None:
    mode, path = sys.argv[1], Path(sys.argv[2])
    if mode == "reference":
        reference(path)
    else:
        raise SystemExit(compare(path))


if __name__ == "__main__":
    main()
