"""train: steps/s with the real shard loader vs the same loop fed from batches in memory.

The loader must never be the bottleneck: ratio = loader steps/s / in-memory steps/s
(target >= 0.95), for ``tiny_hificodec_16k`` and ``hificodec_16k_320d`` (small batch).
Both runs use the trainer's own step function; only where batches come from differs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import report

from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder
from academicodec.models import build_codec, load_codec_config
from academicodec.models.discriminators import Discriminators
from academicodec.models.losses import MultiResolutionMelLoss
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.training.loop import RunOptions, _loader, _optimizer, _train_step


def steps_per_second(preset: str, shards: Path, steps: int, batch: int, in_memory: bool) -> float:
    overrides = {"train.batch_size": batch, "train.segment_length": 16000}
    config = load_codec_config(preset, overrides)
    torch.manual_seed(0)
    model, disc = build_codec(config), Discriminators(config.train.discriminator)
    opt_g, opt_d = _optimizer(model, config), _optimizer(disc, config)
    mel = MultiResolutionMelLoss(config.sample_rate, config.train.mel_loss)
    options = RunOptions(out=Path("unused"), data=shards, workers=2)
    loader, _ = _loader(config, options, torch.device("cpu"))
    batches = iter(loader)
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
                    batches = iter(loader)
                    data = next(batches)
            _train_step(
                model, disc, model, mel, opt_g, opt_d, None, config, data["wav"],
                data["lengths"], i, torch.autocast("cuda", enabled=False),
            )  # fmt: skip
        return count / (time.perf_counter() - start)

    run(2)  # warm-up
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
            results[preset] = {
                "batch": batch,
                "loader_steps_per_s": round(loader, 3),
                "in_memory_steps_per_s": round(memory, 3),
                "ratio": round(loader / memory, 3),
            }
    report(
        {
            "bench": "train",
            "ratio": min(r["ratio"] for r in results.values()),
            "presets": results,
        }
    )


if __name__ == "__main__":
    main()
