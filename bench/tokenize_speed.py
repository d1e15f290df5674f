"""tokenize: audio seconds/s of ``academicodec tokenize`` against two baselines.

- ``ratio_vs_loop``: vs the per-file loop codec repositories ship (load one file, resample,
  encode it alone, save one .npy), on >= 200 utterances of 2-15 s stored as 44.1 kHz FLAC,
  with ``tiny_hificodec_16k`` (cheap model: I/O dominates, as on a GPU). Target >= 3.
- ``ratio_vs_forward``: with ``hificodec_16k_320d``, tokenize vs the bare model forward over
  the same batches already in memory (pipeline overhead). Target >= 0.85.
- peak RSS growth while tokenizing 200 and 2,000 items (must stay flat).
Random-init weights (fine for speed).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from common import report

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder
from academicodec.memory import RssSampler
from academicodec.models import build_codec, load_codec, save_codec
from academicodec.models.scheduling import GroupRunner
from academicodec.pipelines.items import find_manifests, plan_items
from academicodec.pipelines.shard import read_item
from academicodec.tokenizer import TokenizeSettings, tokenize
from academicodec.tokenizer.plan import batches
from academicodec.tokenizer.run import CPU_BATCH_SECONDS


def corpus(root: Path, count: int, durations: tuple[float, float], rate: int) -> Path:
    make_folder(
        root / "audio", count, source=SpeechSource(pool=8), rates=(rate,), formats=("flac",),
        durations=durations,
    )  # fmt: skip
    prepare("folder", root / "audio", root / "manifests", jobs=2)
    return root / "manifests"


def per_file_loop(manifests: Path, model_dir: Path, out: Path) -> float:
    """What codec repositories ship: one file at a time, one .npy per file."""
    model = load_codec(model_dir)
    items, _ = plan_items(find_manifests([manifests]), 1e9, 0.0)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with torch.inference_mode():
        for item in items:
            audio, rate = sf.read(item.source, dtype="float32")
            audio = soxr.resample(audio, rate, model.sample_rate)
            codes = model.encode(torch.from_numpy(audio)[None, None])[0]
            np.save(out / f"{item.key}.npy", codes.numpy().astype(np.int16))
    return time.perf_counter() - start


def ours(manifests: Path, model_dir: Path, out: Path, workers: int = 2) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    tokenize(model_dir, [manifests], out, TokenizeSettings(workers=workers))
    return time.perf_counter() - start


def bare_forward(manifests: Path, model_dir: Path) -> float:
    """The model alone over tokenize's own batches, audio already decoded in memory."""
    model = load_codec(model_dir)
    items, _ = plan_items(find_manifests([manifests]), 1e9, 0.0)
    settings = TokenizeSettings()  # on CPU its batches are CPU_BATCH_SECONDS long
    groups = batches([i.seconds for i in items], CPU_BATCH_SECONDS, settings.max_chunk_seconds)
    audio = [read_item(item, model.sample_rate) for item in items]
    prepared = []
    for group in groups:
        longest = max(len(audio[i]) for i in group)
        wav = torch.zeros(len(group), 1, longest)
        for row, i in enumerate(group):
            wav[row, 0, : len(audio[i])] = torch.from_numpy(audio[i])
        prepared.append((wav, torch.tensor([len(audio[i]) for i in group])))
    start = time.perf_counter()
    with torch.inference_mode(), GroupRunner() as runner:
        for wav, lengths in prepared:
            model.encode(wav, lengths, runner=runner)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--forward-items", type=int, default=24)
    parser.add_argument("--rss-items", type=int, default=2000)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = save_codec(build_codec("tiny_hificodec_16k"), root / "tiny")
        full = save_codec(build_codec("hificodec_16k_320d"), root / "full")
        main_set = corpus(root / "main", args.items, (2.0, 15.0), 44100)
        seconds = sum(i.seconds for i in plan_items(find_manifests([main_set]), 1e9, 0)[0])
        loop_s = per_file_loop(main_set, tiny, root / "loop")
        ours_s = ours(main_set, tiny, root / "ours")

        forward_set = corpus(root / "forward", args.forward_items, (2.0, 15.0), 44100)
        forward_seconds = sum(
            i.seconds for i in plan_items(find_manifests([forward_set]), 1e9, 0)[0]
        )
        forward_s = bare_forward(forward_set, full)
        ours_full_s = ours(forward_set, full, root / "ours-full")

        rss = {}
        for count in (200, args.rss_items):
            small = corpus(root / f"rss{count}", count, (1.0, 2.0), 16000)
            with RssSampler() as sampler:
                ours(small, tiny, root / f"rss-out{count}")
            rss[count] = round(sampler.growth, 1)
    report(
        {
            "bench": "tokenize",
            "items": args.items,
            "audio_seconds": round(seconds, 1),
            "loop_audio_s_per_s": round(seconds / loop_s, 1),
            "tokenize_audio_s_per_s": round(seconds / ours_s, 1),
            "ratio_vs_loop": round(loop_s / ours_s, 2),
            "forward_items": args.forward_items,
            "forward_audio_s_per_s": round(forward_seconds / forward_s, 2),
            "tokenize_full_audio_s_per_s": round(forward_seconds / ours_full_s, 2),
            "ratio_vs_forward": round(forward_s / ours_full_s, 2),
            "peak_rss_growth_mb": rss,
        }
    )


if __name__ == "__main__":
    main()
