"""What a training minute buys: a preset trained for a wall-clock budget, scored on held-out
audio every few seconds of training (issue 31).

Trains ``--preset`` with the ``Trainer``'s own step (GAN losses on unless ``--no-gan``;
bf16 on CUDA, ``--precision`` to change it) for ``--minutes`` of training time, on
``--data`` shards (``--val`` held out) or, without ``--data``, on generated speech-like
audio with held-out clips of another voice generator (``codebook_health.make_corpora``).
Every ``--every`` seconds of training (scoring time is not counted) it reconstructs the
held-out items and records mel L1 (``evaluation.metrics.mel_distance``), PESQ-WB, STOI and
each codebook's perplexity and fraction of codes used over every held-out frame.

Prints the curve as it goes, then one JSON line (``"bench": "learning_curve"``): the curve,
steps/s, audio-hours trained per device-hour (= audio-seconds per second), and the goals
of issue 31 for a GPU run (validation mel L1 falling after the first minute, every
codebook's perplexity >= 64 throughout) with whether each was met. On a CPU the same run
rehearses the script (``tests/test_learning_curve.py`` on given shards, the
``curve`` stage of ``tests/test_gpu_check.py`` on generated audio).

    python bench/learning_curve.py --preset hificodec_16k_320d --minutes 5   # one GPU
    python bench/learning_curve.py --device cpu --minutes 0.2 --every 3      # rehearsal
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from codebook_health import make_corpora
from common import report

from academicodec.evaluation.metrics import MetricError, mel_distance, pesq, stoi
from academicodec.models import load_codec_config
from academicodec.models.quantizers import codebook_stats
from academicodec.pipelines.readers import ExactOnceSamples
from academicodec.training import RunOptions, Trainer

PERPLEXITY_GOAL = 64.0
FIRST_MINUTE = 60.0


def held_out(source: Path, count: int) -> list[np.ndarray]:
    items = []
    for sample in ExactOnceSamples(source, rank=0, world_size=1):
        items.append(np.asarray(sample["audio"], dtype=np.float32))
        if len(items) >= count:
            break
    return items


@torch.no_grad()
def score(trainer: Trainer, items: list[np.ndarray]) -> dict[str, Any]:
    """Reconstruct ``items`` with the trainer's model and score them (``quality``)."""
    model = trainer.model
    model.eval()
    decoded, codes = [], []
    for audio in items:
        wav = torch.from_numpy(audio).to(trainer.device)[None, None]
        with trainer.autocast():
            item_codes = model.encode(wav)
            out = model.decode(item_codes)[..., : wav.shape[-1]]
        decoded.append(out.float()[0, 0].cpu().numpy())
        codes.append(item_codes[0])
    model.train()
    return quality(items, decoded, codes, trainer.config.sample_rate, model.codebook_size)


def quality(
    items: list[np.ndarray],
    decoded: list[np.ndarray],
    codes: list[torch.Tensor],
    rate: int,
    codebook_size: int,
) -> dict[str, Any]:
    """Mel L1, PESQ-WB, STOI (means over the items that have them) and each codebook's
    perplexity and fraction used over every item's frames (``codes``: [K, frames] each)."""
    mels, pesqs, stois = [], [], []
    for audio, out in zip(items, decoded, strict=True):
        mels.append(mel_distance(audio, out, rate))
        for metric, values in ((pesq, pesqs), (stoi, stois)):
            # silent or too short for this metric: the mean is over the other items
            with contextlib.suppress(MetricError):
                values.append(metric(audio, out, rate))
    frames = torch.cat([c.to("cpu", torch.long) for c in codes], dim=-1)[None]
    perplexity, used = codebook_stats(frames, None, codebook_size)
    return {
        "mel_l1": float(np.mean(mels)),
        "pesq_wb": float(np.mean(pesqs)) if pesqs else None,
        "stoi": float(np.mean(stois)) if stois else None,
        "perplexity": [round(v, 1) for v in perplexity.tolist()],
        "used": [round(v, 3) for v in used.tolist()],
    }


@dataclass(frozen=True)
class CurveSettings:
    preset: str = "tiny_hificodec_16k"
    device: str = "auto"
    minutes: float = 5.0  # training time, scoring apart
    every: float = 30.0  # seconds of training between scores
    val_items: int = 8
    batch: int = 0  # 0: the preset's
    precision: str = "auto"
    workers: int = 2
    seed: int = 0
    gan: bool = True

    def overrides(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.batch:
            values["train.batch_size"] = self.batch
        if not self.gan:
            values["train.disc_start_step"] = 10**9
        return values


def train_for(settings: CurveSettings, data: Path, val: Path, out: Path) -> dict[str, Any]:
    """Train ``settings.preset`` on ``data`` for ``settings.minutes``, scoring ``val``."""
    config = load_codec_config(settings.preset, settings.overrides())
    requested = settings.device
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    options = RunOptions(
        out=out, data=data, val=val, device=device.type, workers=settings.workers,
        precision=settings.precision, seed=settings.seed,
    )  # fmt: skip
    trainer = Trainer(config, options, device)
    items = held_out(val, settings.val_items)
    curve = [{"seconds": 0.0, "step": 0, **score(trainer, items)}]
    print_point(curve[-1])
    budget, trained, next_score = 60.0 * settings.minutes, 0.0, settings.every
    for _, seconds in timed_steps(trainer):
        trained += seconds
        if trained >= next_score or trained >= budget:
            curve.append({"seconds": round(trained, 2), "step": trainer.step,
                          **score(trainer, items)})  # fmt: skip
            print_point(curve[-1])
            next_score += settings.every
        if trained >= budget:
            break
    segment = config.train.segment_length / config.sample_rate
    audio_seconds = trainer.step * config.train.batch_size * segment
    return {
        "preset": settings.preset, "device": str(device), "precision": trainer.precision,
        "gan": settings.gan, "batch": config.train.batch_size, "segment_seconds": segment,
        "minutes": settings.minutes, "steps": trainer.step,
        "steps_per_s": trainer.step / trained,
        # audio-seconds trained on per second of training = audio-hours per device-hour
        "audio_hours_per_device_hour": audio_seconds / trained,
        "curve": curve, "goals": goals(curve),
    }  # fmt: skip


def timed_steps(trainer: Trainer) -> Iterator[tuple[dict[str, torch.Tensor], float]]:
    """The trainer's own steps, epoch after epoch, until the caller stops: each step's batch
    and the seconds the step alone took (not loading the batch, not the caller's scoring)."""
    while True:
        for batch, _ in trainer._batches():
            started = time.perf_counter()
            trainer.train_step(batch)
            trainer.batches_in_epoch += 1
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)
            yield batch, time.perf_counter() - started
        trainer.epoch, trainer.batches_in_epoch = trainer.epoch + 1, 0


def generated_curve(settings: CurveSettings, root: Path, clips: int = 36) -> dict[str, Any]:
    """``train_for`` on generated audio at the preset's rate (held-out: another voice)."""
    rate = load_codec_config(settings.preset, settings.overrides()).sample_rate
    data, val = make_corpora(root / "corpus", settings.seed, sample_rate=rate, clips=clips)
    return train_for(settings, data, val, root / "run")


def goals(curve: list[dict[str, Any]]) -> dict[str, bool]:
    """Issue 31's GPU goals: mel L1 falls at every point after the first minute, and every
    codebook's perplexity stays >= 64 at every scored point after the start."""
    later = [p["mel_l1"] for p in curve if p["seconds"] >= FIRST_MINUTE]
    trained = [p for p in curve if p["step"] > 0]
    return {
        "mel_falls_after_first_minute": len(later) >= 2
        and all(b < a for a, b in zip(later, later[1:], strict=False)),
        "perplexity_at_least_64": bool(trained)
        and all(min(p["perplexity"]) >= PERPLEXITY_GOAL for p in trained),
    }


def print_point(point: dict[str, Any]) -> None:
    print(f"{point['seconds']:>8.1f} s step {point['step']:>6} {scores(point)}", file=sys.stderr)


def scores(point: dict[str, Any]) -> str:
    """A scored point's metrics on one line (``quality``'s keys)."""
    metrics = " ".join(
        f"{name}={point[name]:.3f}" for name in ("mel_l1", "pesq_wb", "stoi") if point[name]
    )
    return f"{metrics} perplexity={point['perplexity']} used={point['used']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default=CurveSettings.preset)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--minutes", type=float, default=5.0, help="training, scoring apart")
    parser.add_argument("--every", type=float, default=30.0, help="training seconds a score")
    parser.add_argument("--data", type=Path, help="training shards (default: generated audio)")
    parser.add_argument("--val", type=Path, help="held-out shards (with --data)")
    parser.add_argument("--val-items", type=int, default=8)
    parser.add_argument("--clips", type=int, default=36, help="generated training clips")
    parser.add_argument("--batch", type=int, default=0, help="batch size (default: the preset's)")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on CUDA) | bf16 | fp32")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-gan", action="store_true", help="generator losses only")
    args = parser.parse_args()
    if (args.data is None) != (args.val is None):
        parser.error("--data and --val go together (or neither: generated audio)")
    settings = CurveSettings(
        args.preset, args.device, args.minutes, args.every, args.val_items, args.batch,
        args.precision, args.workers, args.seed, gan=not args.no_gan,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            result = generated_curve(settings, Path(tmp), args.clips)
        else:
            result = train_for(settings, args.data, args.val, Path(tmp) / "run")
    report({"bench": "learning_curve", **result})


if __name__ == "__main__":
    main()
