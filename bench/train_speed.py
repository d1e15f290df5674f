"""train: steps/s with the real shard loader vs the same loop fed from batches in memory,
and steps/s with the codebook upkeep vs the original quantizer settings.

The loader must never be the bottleneck: ratio = loader steps/s / in-memory steps/s
(target >= 0.95), for ``tiny_hificodec_16k`` and ``hificodec_16k_320d`` (small batch).
Codebook health must not cost speed: ``upkeep_ratio`` = steps/s with the default upkeep
(k-means init, usage EMA, restarts, codebooks that follow the encoder's update) / steps/s
with ``codebooks.init: none``, ``dead_code_ratio: 0`` and ``follow_encoder: false`` (the
original's quantizer), both in memory (target >= 0.95).
Every run uses the ``Trainer``'s own step; only where batches come from, or the upkeep
settings, differ.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import report

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder
from academicodec.models import load_codec_config
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.training import RunOptions, Trainer

ORIGINAL_QUANTIZER = {
    "codebooks.init": "none",
    "codebooks.dead_code_ratio": 0.0,
    "codebooks.follow_encoder": False,
}


def steps_per_second(
    preset: str, shards: Path, steps: int, batch: int, in_memory: bool, **changes: Any
) -> float:
    overrides = {"train.batch_size": batch, "train.segment_length": 16000, **changes}
    config = load_codec_config(preset, overrides)
    options = RunOptions(out=Path("unused"), data=shards, workers=2, device="cpu")
    trainer = Trainer(config, options, torch.device("cpu"))
    batches = iter(trainer.loader)
    cached = [next(batches) for _ in range(2)] if in_memory else None

    def run(count: int) -> float:
        nonlocal batches
        start = time.perf_counter()
        for i in range(count):
            if cached is not None:
                data = cached[i % len(cached)]
            else:
                data = next(batches, None)
                if data is None:
                    batches = iter(trainer.loader)
                    data = next(batches)
            trainer.train_step(data)
        return count / (time.perf_counter() - start)

    run(2)  # warm-up (and the k-means initialisation, a one-off)
    return run(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_folder(root / "src", 200, source=SpeechSource(pool=8), rates=(16000,),
                    formats=("flac",), durations=(1.5, 4.0))  # fmt: skip
        prepare("folder", root / "src", root / "m", jobs=2)
        write_shards([root / "m"], root / "s", ShardSettings(16000, samples_per_shard=50), jobs=2)
        results = {}
        for preset, batch, steps in (
            ("tiny_hificodec_16k", 8, args.steps),
            ("hificodec_16k_320d", 2, max(3, args.steps // 5)),
        ):
            loader = steps_per_second(preset, root / "s", steps, batch, in_memory=False)
            memory = steps_per_second(preset, root / "s", steps, batch, in_memory=True)
            original = steps_per_second(
                preset, root / "s", steps, batch, in_memory=True, **ORIGINAL_QUANTIZER
            )
            results[preset] = {
                "batch": batch,
                "loader_steps_per_s": round(loader, 3),
                "in_memory_steps_per_s": round(memory, 3),
                "original_quantizer_steps_per_s": round(original, 3),
                "ratio": round(loader / memory, 3),
                "upkeep_ratio": round(memory / original, 3),
            }
    report(
        {
            "bench": "train",
            "ratio": min(r["ratio"] for r in results.values()),
            "upkeep_ratio": min(r["upkeep_ratio"] for r in results.values()),
            "presets": results,
        }
    )


if __name__ == "__main__":
    main()
