"""``decode`` batched (padded batches of similar length, the decoder length-aware) against
one item at a time (the loop it replaced), on the same codes, model and machine.

A corpus of 2-8 s clips is tokenized with the tiny HiFi-Codec and the HiFi-Codec 16 kHz
preset at full width, then decoded both ways (best of 3). ``ratio_vs_one_at_a_time`` is
the one-at-a-time time over the batched time (> 1: batched is faster); ``max_abs_diff``
proves both wrote the same audio (16-bit files: at most one step, 1/32768).

    .venv/bin/python bench/decode_speed.py [--clips 48]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from common import best_time, report

import academicodec.tokenizer.decode as decode_module
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder
from academicodec.models import build_codec, save_codec
from academicodec.tokenizer import TokenizeSettings, tokenize
from academicodec.tokenizer.decode import decode_codes

PRESETS = ("tiny_hificodec_16k", "hificodec_16k_320d")


def _decode(codes: Path, out: Path, model: Path, read_ahead: int) -> None:
    decode_module.READ_AHEAD = read_ahead
    decode_codes(codes, out, model)


def _largest_difference(a: Path, b: Path) -> float:
    worst = 0.0
    for path in sorted(a.rglob("*.wav")):
        x, _ = sf.read(path)
        y, _ = sf.read(b / path.relative_to(a))
        worst = max(worst, float(np.abs(x - y).max()))
    return worst


def _compare(codes: Path, model: Path, out: Path, batched_ahead: int) -> dict[str, Any]:
    outs = {"one": out / "one", "batched": out / "batched"}

    def clear() -> None:
        for folder in outs.values():
            shutil.rmtree(folder, ignore_errors=True)

    one = best_time(lambda: _decode(codes, outs["one"], model, 1), setup=clear)
    batched = best_time(lambda: _decode(codes, outs["batched"], model, batched_ahead), setup=clear)
    _decode(codes, outs["one"], model, 1)  # both outputs present, for the check
    return {
        "one_at_a_time_s": round(one, 3),
        "batched_s": round(batched, 3),
        "ratio_vs_one_at_a_time": round(one / batched, 2),
        "max_abs_diff": _largest_difference(outs["one"], outs["batched"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=48)
    args = parser.parse_args()
    batched_ahead = decode_module.READ_AHEAD
    result: dict[str, Any] = {"bench": "decode_speed", "clips": args.clips}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_folder(root / "src", args.clips, source=SpeechSource(pool=8), rates=(16000,),
                    formats=("flac",), durations=(2.0, 8.0))  # fmt: skip
        prepare("folder", root / "src", root / "manifests", jobs=2)
        for preset in PRESETS:
            torch.manual_seed(0)
            model = save_codec(build_codec(preset), root / preset)
            codes = root / f"codes-{preset}"
            tokenize(model, [root / "manifests"], codes, TokenizeSettings(workers=2))
            result[preset] = _compare(codes, model, root / f"wav-{preset}", batched_ahead)
    report(result)


if __name__ == "__main__":
    main()
