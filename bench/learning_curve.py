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

``--original CHECKOUT`` (a clone of the original AcademiCodec; a ``hificodec_16k_320d``
preset, GAN losses on): both start from the original's initial weights (as
``train_vs_original.py`` does), ours trains for the budget, then the original trains for
the same seconds of step time on the same batches in a child process
(``original/run_original.py budget``, on the same device, fp32 as it ships), scored by the
same code on the same held-out items. The JSON line adds the original's curve, steps/s and
audio-hours per device-hour, ``audio_seconds_per_second_vs_original`` (ours / its) and
``steps_to_original_mel`` (the first scored step of ours at or under its final mel L1),
and the GPU goals: >= 3x its audio per second, its mel L1 in no more steps.

    python bench/learning_curve.py --preset hificodec_16k_320d --minutes 5   # one GPU
    python bench/learning_curve.py --device cpu --minutes 0.2 --every 3      # rehearsal
    python bench/learning_curve.py --preset hificodec_16k_320d --original ~/AcademiCodec
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
ORIGINAL_SPEED_GOAL = 3.0  # ours trains >= 3x the original's audio-seconds per second (GPU)


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
    original: Path | None = None  # a checkout of the original AcademiCodec
    width: int = 0  # hificodec.upsample_initial_channel (0: the preset's)

    def overrides(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.width:
            values["hificodec.upsample_initial_channel"] = self.width
        if self.batch:
            values["train.batch_size"] = self.batch
        if not self.gan:
            values["train.disc_start_step"] = 10**9
        return values


def train_for(
    settings: CurveSettings, data: Path, val: Path, out: Path, original: Path | None = None
) -> dict[str, Any]:
    """Train ``settings.preset`` on ``data`` for ``settings.minutes``, scoring ``val``;
    with ``original`` (a checkout), the original trainer too, from the same start."""
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
    batches: list[torch.Tensor] | None = None
    job: dict[str, Any] = {}
    if original is not None:  # the original's initial weights, whole-hop held-out items
        from train_vs_original import start_from_original

        job = original_job(settings, trainer)
        start_from_original(trainer, original, job, out.parent)
        hop = trainer.model.hop_length
        items, batches = [a[: len(a) // hop * hop] for a in items], []
    curve = [{"seconds": 0.0, "step": 0, **score(trainer, items)}]
    print_point(curve[-1])
    budget, trained, next_score = 60.0 * settings.minutes, 0.0, settings.every
    for batch, seconds in timed_steps(trainer):
        if batches is not None:
            batches.append(batch["wav"][:, 0].cpu().clone())
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
    result = {
        "preset": settings.preset, "device": str(device), "precision": trainer.precision,
        "gan": settings.gan, "batch": config.train.batch_size, "segment_seconds": segment,
        "minutes": settings.minutes, "steps": trainer.step,
        "steps_per_s": trainer.step / trained,
        # audio-seconds trained on per second of training = audio-hours per device-hour
        "audio_hours_per_device_hour": audio_seconds / trained,
        "curve": curve, "goals": goals(curve),
    }  # fmt: skip
    if original is not None and batches is not None:
        job = {**job, "batches": batches, "val": [torch.from_numpy(a) for a in items]}
        result.update(versus_original(result, original, job, settings, trainer, out.parent))
    return result


def original_job(settings: CurveSettings, trainer: Trainer) -> dict[str, Any]:
    """The original recipe's config with our run's width, batch, segment and seed."""
    from train_vs_original import original_config

    config = trainer.config
    assert config.hificodec is not None
    shape = argparse.Namespace(
        width=config.hificodec.upsample_initial_channel, batch=config.train.batch_size,
        seconds=config.train.segment_length / config.sample_rate, seed=settings.seed,
    )  # fmt: skip
    return {"config": original_config(settings.original, shape), "seed": settings.seed}


def versus_original(
    ours: dict[str, Any], checkout: Path, job: dict[str, Any], settings: CurveSettings,
    trainer: Trainer, tmp: Path,
) -> dict[str, Any]:  # fmt: skip
    """The original trained for the same seconds on ``job``'s batches (again from the first
    if it is faster than ours), scored on its held-out items by the same code; the ratios."""
    from train_vs_original import run_original

    job = {**job, "device": trainer.device.type, "budget": 60.0 * settings.minutes,
           "every": settings.every}  # fmt: skip
    done = run_original(checkout, "budget", job, tmp)
    rate, size = trainer.config.sample_rate, trainer.model.codebook_size
    items, curve = [v.numpy() for v in job["val"]], []
    for point in done["points"]:
        decoded = [d.numpy() for d in point["decoded"]]
        scored = quality(items, decoded, point["codes"], rate, size)
        curve.append({"seconds": round(point["seconds"], 2), "step": point["step"], **scored})
        print_point(curve[-1], "original")
    audio = done["steps"] * ours["batch"] * ours["segment_seconds"]
    theirs = {
        "steps": done["steps"], "steps_per_s": done["steps"] / done["seconds"],
        "audio_hours_per_device_hour": audio / done["seconds"], "curve": curve,
    }  # fmt: skip
    target = curve[-1]["mel_l1"]
    reached = [p["step"] for p in ours["curve"] if p["step"] > 0 and p["mel_l1"] <= target]
    ratio = ours["audio_hours_per_device_hour"] / theirs["audio_hours_per_device_hour"]
    steps_to = reached[0] if reached else None
    return {
        "original": theirs,
        "audio_seconds_per_second_vs_original": ratio,
        "steps_to_original_mel": steps_to,
        "original_goals": {
            "trains_3x_original_audio_per_second": ratio >= ORIGINAL_SPEED_GOAL,
            "reaches_original_mel_in_no_more_steps": steps_to is not None
            and steps_to <= theirs["steps"],
        },
    }


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
    return train_for(settings, data, val, root / "run", settings.original)


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


def print_point(point: dict[str, Any], who: str = "ours") -> None:
    print(
        f"{who:>8} {point['seconds']:>8.1f} s step {point['step']:>6} {scores(point)}",
        file=sys.stderr,
    )


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
    parser.add_argument(
        "--original", type=Path,
        help="a clone of yangdongchao/AcademiCodec: its trainer for the same budget (a "
        "hificodec_16k_320d preset; --width narrows both generators alike)",
    )  # fmt: skip
    parser.add_argument("--width", type=int, default=0, help="upsample_initial_channel")
    args = parser.parse_args()
    if (args.data is None) != (args.val is None):
        parser.error("--data and --val go together (or neither: generated audio)")
    overrides = {"hificodec.upsample_initial_channel": args.width} if args.width else {}
    config = load_codec_config(args.preset, overrides)
    if args.original is not None:
        from train_vs_original import check_checkout

        if config.family != "hificodec" or config.hop_length != 320 or args.no_gan:
            parser.error(
                "--original trains the original HiFi-Codec 16k_320d recipe with GAN losses: "
                "give a hificodec 16 kHz, hop 320 preset (hificodec_16k_320d; --width to "
                "narrow both generators) and no --no-gan"
            )
        check_checkout(args.original.resolve())
    settings = CurveSettings(
        args.preset, args.device, args.minutes, args.every, args.val_items, args.batch,
        args.precision, args.workers, args.seed, gan=not args.no_gan,
        original=args.original.resolve() if args.original else None, width=args.width,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        if args.data is None:
            result = generated_curve(settings, Path(tmp), args.clips)
        else:
            run = Path(tmp) / "run"
            result = train_for(settings, args.data, args.val, run, settings.original)
    report({"bench": "learning_curve", **result})


if __name__ == "__main__":
    main()
