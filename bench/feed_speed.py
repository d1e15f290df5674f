"""How fast the tokenizer's loader alone feeds an encoder (no model): read + decode +
downmix + resample + pad, in DataLoader workers, as ``tokenize`` runs it.

A GPU that encodes 5,000 audio-hours per GPU-hour eats 1,389 audio-seconds per second; if
one CPU core feeds >= 400 audio-s/s, 4 cores keep up and 12-16 (what a GPU node gives each
GPU) leave a wide margin. Two corpora, each of 2-14 s clips:

- LibriTTS-like: 24 kHz FLAC -> 16 kHz (HiFi-Codec 16 kHz);
- 44.1 kHz FLAC -> 24 kHz (EnCodec 24 kHz).

Each is read through ``tokenizer.feed.audio_batches`` with batches on the one-call grid
(300 s of audio, 1 s buckets) by 1 and by 2 workers. Prints per corpus audio-s/s in all
and per worker; ``scaling`` is the 2-worker rate over the 1-worker rate (2.0 = linear).
The goal, >= 400 audio-s/s per worker (= per core), is checked per corpus.

    .venv/bin/python bench/feed_speed.py [--seconds 600]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from common import report

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder
from academicodec.pipelines.sources import collect_items
from academicodec.tokenizer.feed import audio_batches
from academicodec.tokenizer.plan import ShapeGrid, expected_samples, grid_batches

GOAL_PER_WORKER = 400.0
CORPORA = {"libritts_24k_flac_to_16k": (24000, 16000), "flac_44k_to_24k": (44100, 24000)}


def feed_rate(items: list[Any], rate: int, workers: int) -> float:
    """Audio seconds per second the loader delivers (its start-up excluded)."""
    bucket = rate  # 1 s buckets
    grid = ShapeGrid(bucket=bucket, budget=300 * rate, chunk=20 * rate, max_samples=20 * rate)
    specs = grid_batches([expected_samples(item, rate) for item in items], grid)
    loader = audio_batches(items, specs, rate, workers, bucket, pin_memory=False)
    batches = iter(loader)
    first = next(batches)
    begin = time.perf_counter()
    samples = 0
    for batch in batches:
        samples += int(batch["lengths"].sum())
    elapsed = time.perf_counter() - begin
    del first
    return samples / rate / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0, help="audio per corpus")
    args = parser.parse_args()
    result: dict[str, Any] = {"bench": "feed_speed", "goal_per_worker": GOAL_PER_WORKER}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (source_rate, model_rate) in CORPORA.items():
            root = Path(tmp) / name
            make_folder(
                root / "src", max(8, round(args.seconds / 8)), source=SpeechSource(pool=8),
                rates=(source_rate,), formats=("flac",), durations=(2.0, 14.0),
            )  # fmt: skip
            prepare("folder", root / "src", root / "manifests", jobs=2)
            items, _ = collect_items([root / "manifests"], root / "work")
            one = feed_rate(items, model_rate, 1)
            two = feed_rate(items, model_rate, 2)
            result[name] = {
                "audio_seconds": round(sum(item.seconds for item in items), 1),
                "workers_1_audio_s_per_s": round(one, 1),
                "workers_2_audio_s_per_s": round(two, 1),
                "per_worker": round(one, 1),
                "scaling_2_over_1": round(two / one, 2),
                "goal_met": one >= GOAL_PER_WORKER,
            }
    report(result)


if __name__ == "__main__":
    main()
