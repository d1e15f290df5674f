"""Mimi, SNAC and X-Codec2 vs their reference packages: encode throughput, same weights (full
released sizes, random), same clips, one process (issue 22); and the memory of one 10-minute
file.

- batch 1: one 5 s clip; batch 8: eight clips of 1.5-7 s, the reference one call per clip
  ("loop", the way that gives each clip its own codes; SNAC's padded batch does not, see
  docs/models.md) and as one zero-padded call ("padded"); ours one ``encode(wav, lengths)``.
  X-Codec2's reference is what its users call: transformers' ``Xcodec2FeatureExtractor``
  (Kaldi filterbank, one clip at a time) then ``Xcodec2Model.encode``; ours computes the
  filterbank inside ``encode``.
- peak RSS growth of ours tokenizing one 10-minute file (the tokenizer's chunked path),
  and beyond a 10-second file.

Reference packages are not dependencies: point ``ACADEMICODEC_REFERENCE_SITE`` at the
site-packages of the fixtures' throwaway venv (with ``moshi``, ``snac``, ``transformers`` and
torchaudio's ``compliance/kaldi.py``); without them it prints a "skipped" line and exits 0.

    ACADEMICODEC_REFERENCE_SITE=/tmp/refvenv/lib/python3.11/site-packages \\
        .venv/bin/python bench/speech_lm_speed.py

Last line: ``batch1`` / ``batch8`` ratios (reference time / ours; targets >= 1.0 and >= 1.5)
per model, and the 10-minute file's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from common import report
from pretrained_speed import _compare, _ten_minutes

from academicodec.models.export import load_codec, save_codec


def _mimi(folder: Path, repeats: int) -> dict:
    from moshi.models.loaders import get_mimi
    from safetensors.torch import save_file

    reference = get_mimi(None, num_codebooks=8).eval()
    path = folder / "tokenizer-mimi.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    ours = load_codec(path)

    class Ours:  # Moshi's 8 codebooks, as the reference is set
        @staticmethod
        def encode(x, lengths=None, runner=None, one_call=None):
            return ours.encode(x, lengths, 8, runner, one_call=one_call)

    return _compare("mimi@8", reference.encode, Ours, 24000, 1920, repeats)


def _snac(folder: Path, repeats: int) -> dict:
    from snac import SNAC

    config = {
        "sampling_rate": 24000, "encoder_dim": 48, "encoder_rates": [2, 4, 8, 8],
        "decoder_dim": 1024, "decoder_rates": [8, 8, 4, 2], "attn_window_size": None,
        "codebook_size": 4096, "codebook_dim": 8, "vq_strides": [4, 2, 1], "noise": True,
        "depthwise": True,
    }  # fmt: skip
    reference = SNAC(**config).eval()
    (folder / "snac").mkdir()
    (folder / "snac" / "config.json").write_text(json.dumps(config))
    torch.save(reference.state_dict(), folder / "snac" / "pytorch_model.bin")
    ours = load_codec(folder / "snac")
    return _compare("snac_24khz", reference.encode, ours, 24000, 2048, repeats)


def _xcodec2(folder: Path, repeats: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/fixtures/pretrained"))
    from make_fixtures import _kaldi_without_torchaudio  # the fixtures' torchaudio stand-in

    sys.modules.pop("torchaudio", None)
    _kaldi_without_torchaudio()
    from transformers import Xcodec2Config, Xcodec2FeatureExtractor, Xcodec2Model

    reference = Xcodec2Model(Xcodec2Config()).eval()  # the released sizes
    extractor = Xcodec2FeatureExtractor()
    reference.save_pretrained(folder / "xcodec2")
    ours = load_codec(folder / "xcodec2")

    def reference_encode(wav: torch.Tensor) -> torch.Tensor:
        inputs = extractor([w[0].numpy() for w in wav], sampling_rate=16000, return_tensors="pt")
        return reference.encode(
            inputs["input_values"], inputs["input_features"], inputs["padding_mask"],
            inputs["input_features_mask"],
        ).audio_codes  # fmt: skip

    return _compare("xcodec2", reference_encode, ours, 16000, 320, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-long", action="store_true", help="no 10-minute file")
    parser.add_argument(
        "--models", type=lambda text: text.split(","), default=["mimi", "snac", "xcodec2"],
        help="comma-separated: mimi,snac,xcodec2",
    )  # fmt: skip
    args = parser.parse_args()
    torch.manual_seed(0)
    site = os.environ.get("ACADEMICODEC_REFERENCE_SITE")
    if site:
        sys.path.append(site)  # after ours: our torch stays the one imported
    try:
        import moshi  # noqa: F401
        import snac  # noqa: F401
    except ImportError as exc:
        report({"bench": "speech_lm_speed", "skipped": f"reference packages: {exc}"})
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = {"mimi": _mimi, "snac": _snac, "xcodec2": _xcodec2}
        rows = [runs[name](folder, args.repeats) for name in args.models]
        memory = {}
        if not args.skip_long:
            sources = {"mimi": "tokenizer-mimi.safetensors", "snac": "snac", "xcodec2": "xcodec2"}
            for name, source in ((n, sources[n]) for n in args.models):
                save_codec(load_codec(folder / source), folder / f"{name}_export")
                run = folder / f"long_{name}"
                run.mkdir()
                found = _ten_minutes(run, folder / f"{name}_export")
                memory.update({f"{name}_{k}": v for k, v in found.items()})
    for row in rows:
        print(json.dumps(row))
    ratios = {f"{row['model']}_{k}": round(row[k], 3) for row in rows for k in ("batch1", "batch8")}
    report({"bench": "speech_lm_speed", **ratios, **memory})


if __name__ == "__main__":
    main()
