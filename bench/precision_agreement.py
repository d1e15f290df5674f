"""How far bf16 codes are from fp32 codes, per model, on CPU (bf16 autocast; AVX-512 BF16
or AMX where the CPU has them). ``tokenize --precision bf16`` trades this agreement for
speed (``bench/codec_speed.py``'s ``bf16_speedup``); docs/tokenize.md records the figures.

Each model (random weights, seeded; the full-size presets and the imported architectures)
encodes the same speech-like clips alone at fp32 and at bf16, all codebooks; the figure is
the fraction of codes that are equal, overall and in the first codebook (the one an LM's
coarse stage predicts). The quantizer always searches in float32 (models/precision.py), so
only the encoder's rounding moves codes. The last line is one JSON object
(``"bench": "precision"``).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import report

from academicodec.manifests.synthetic import SpeechSource
from academicodec.models import build_codec
from academicodec.models.precision import numerics

DEFAULT_MODELS = [
    "tiny_hificodec_16k",
    "tiny_encodec_16k",
    "hificodec_16k_320d",
    "encodec_24k_240d",
    "meta_encodec_24khz",
    "dac_16khz",
]


def clips(rate: int, count: int) -> list[torch.Tensor]:
    """Speech (espeak-ng when installed) or voiced signals, 1.5-4.5 s, at ``rate``."""
    source = SpeechSource(use_espeak=True)
    rng = np.random.default_rng(7)
    words = ["codes", "are", "a", "contract", "for", "months", "of", "language", "training"]
    out = []
    for i in range(count):
        text = " ".join(rng.choice(words, size=6))
        audio = source(text, float(rng.uniform(1.5, 4.5)), rate, seed=i)
        out.append(torch.from_numpy(np.asarray(audio, dtype=np.float32))[None, None])
    return out


def agreement(name: str, count: int) -> dict[str, float | str]:
    torch.manual_seed(0)
    model = build_codec(name).eval()
    codes = {}
    with torch.inference_mode():
        for precision in ("fp32", "bf16"):
            with numerics(precision, "cpu"):
                codes[precision] = [model.encode(x)[0] for x in clips(model.sample_rate, count)]
    equal = sum(int((a == b).sum()) for a, b in zip(codes["fp32"], codes["bf16"], strict=True))
    total = sum(a.numel() for a in codes["fp32"])
    first = sum(
        int((a[0] == b[0]).sum()) for a, b in zip(codes["fp32"], codes["bf16"], strict=True)
    )
    frames = sum(a.shape[-1] for a in codes["fp32"])
    return {
        "model": name,
        "codebooks": model.num_codebooks,
        "bf16_equal_fp32": round(equal / total, 4),
        "bf16_equal_fp32_codebook_1": round(first / frames, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--clips", type=int, default=8)
    args = parser.parse_args()
    rows = [agreement(name, args.clips) for name in args.models]
    report({"bench": "precision", "device": "cpu", "models": rows})


if __name__ == "__main__":
    main()
