"""Our HiFi-Codec trainer beside the original AcademiCodec's, same start, same batches (issue 31).

    git clone https://github.com/yangdongchao/AcademiCodec /path/to/AcademiCodec
    python bench/train_vs_original.py --original /path/to/AcademiCodec --steps 300

Both train the 16k_320d architecture (``--width`` sets the generator's
``upsample_initial_channel`` for both; the encoder and discriminators are the original's
fixed widths) from the same initial generator, encoder and quantizer weights (the
original's, built from ``--seed`` in its own process and imported into ours with our
AcademiCodec importer, which refuses any architecture mismatch), on the same batches in the
same order (ours draws them from the shards with its loader; they are recorded and handed to
the original), with GAN losses on from step 1 for both:

- ours: ``Trainer.train_step`` of the ``hificodec_16k_320d`` preset as shipped (its
  k-means codebook start, codebook upkeep, loss weights, AdamW);
- the original: its train.py step composed from its own modules (``original/run_original.py``),
  run in a child process whose path puts CHECKOUT first (its package is also named
  ``academicodec``); three calls adapted to current packages (``original/shim.py``;
  ``original/check_shim.py`` compares them with torchaudio 2.8 in a throwaway venv).

At steps 0, ``--every``, ... ``--steps`` both reconstruct the same held-out items (another
voice generator than the training audio by default, or ``--val`` shards) and are scored by
the same code (``learning_curve.quality``: mel L1, PESQ-WB, STOI, each codebook's perplexity
and fraction used). Seconds per step time the step alone (forward, both backward passes,
both optimizer steps; not data loading or scoring), the two runs one after the other on the
same machine.

Prints a table, then one JSON line (``"bench": "train_vs_original"``) with both curves,
``steps``, ``original_mel`` (its mel L1 at the last step), ``steps_to_original_mel`` (the
first scored step at which ours is at or under it; null if never), the seconds per step of
each and ``seconds_per_step_vs_original`` (ours / original), and the goals of issue 31
(ours reaches the original's last-step mel L1 in no more steps, at <= 0.8x its seconds per
step). Without ``--original`` (or ``ACADEMICODEC_ORIGINAL``) it prints a "skipped" line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from codebook_health import make_corpora
from common import report
from learning_curve import held_out, quality, score, scores, timed_steps

from academicodec.models import load_codec_config
from academicodec.models.families.academicodec.convert import import_academicodec
from academicodec.training import RunOptions, Trainer

RUNNER = Path(__file__).resolve().parent / "original" / "run_original.py"
RECIPE = Path("egs/HiFi-Codec-16k-320d/config_16k_320d.json")
ORIGINAL_MODELS = Path("academicodec/models/hificodec/models.py")
PRESET = "hificodec_16k_320d"
SPEED_GOAL = 0.8


def check_checkout(checkout: Path) -> None:
    for part in (ORIGINAL_MODELS, RECIPE):
        if not (checkout / part).is_file():
            raise SystemExit(
                f"--original {checkout}: no {part} there; give a clone of "
                "https://github.com/yangdongchao/AcademiCodec"
            )


def original_config(checkout: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The recipe's config_16k_320d.json with this run's width, batch, segment and seed."""
    config = json.loads((checkout / RECIPE).read_text(encoding="utf-8"))
    config.update(
        upsample_initial_channel=args.width, batch_size=args.batch,
        segment_size=int(args.seconds * config["sampling_rate"]), seed=args.seed, num_gpus=1,
    )  # fmt: skip
    return config


def run_original(checkout: Path, mode: str, job: dict[str, Any], tmp: Path) -> Any:
    """One child process on the checkout (its ``academicodec`` first on the path)."""
    job_path, out = tmp / f"{mode}_job.pt", tmp / f"{mode}_out.pt"
    torch.save(job, job_path)
    env = {**os.environ, "PYTHONWARNINGS": "ignore::FutureWarning"}
    command = [sys.executable, str(RUNNER), str(checkout), mode, str(job_path), str(out)]
    done = subprocess.run(command, env=env, stdout=sys.stderr, check=False)
    if done.returncode:
        raise SystemExit(f"the original's {mode} run failed (exit {done.returncode}), see above")
    return torch.load(out, weights_only=True)


def start_from_original(trainer: Trainer, checkout: Path, job: dict[str, Any], tmp: Path) -> None:
    """Our model starts from the original's initial generator, encoder and quantizer (built
    from ``job``'s config and seed in the original's own process, imported by our strict
    AcademiCodec importer, which refuses any architecture mismatch)."""
    torch.save(run_original(checkout, "init", job, tmp), tmp / "g_00000000")
    (tmp / "config.json").write_text(json.dumps(job["config"]), encoding="utf-8")
    imported = import_academicodec(tmp / "g_00000000", config_json=tmp / "config.json")
    trainer.model.load_state_dict(imported.state_dict())  # strict: the same architecture


def train_ours(
    trainer: Trainer, items: list[np.ndarray], steps: int, score_at: set[int]
) -> tuple[dict[int, dict[str, Any]], list[float], torch.Tensor]:
    """``steps`` of our step from the shards; the scores, each step's seconds, the batches."""
    segment = trainer.config.train.segment_length
    scored, seconds, batches = {0: score(trainer, items)}, [], []
    print_point("ours", 0, scored[0], 0.0)
    for batch, spent in timed_steps(trainer):
        if int(batch["lengths"].min()) < segment:
            seconds_asked = segment / trainer.config.sample_rate
            raise SystemExit(
                f"a training clip is shorter than --seconds {seconds_asked:g}: "
                "the original would train on its zero padding; give a shorter --seconds"
            )
        batches.append(batch["wav"][:, 0].clone())
        seconds.append(spent)
        if trainer.step in score_at:
            scored[trainer.step] = score(trainer, items)
            print_point("ours", trainer.step, scored[trainer.step], np.mean(seconds))
        if trainer.step >= steps:
            break
    return scored, seconds, torch.stack(batches)


def compare(args: argparse.Namespace, checkout: Path, tmp: Path) -> dict[str, Any]:
    data, val = args.data, args.val
    if data is None:
        data, val = make_corpora(tmp / "corpus", args.seed, clips=args.clips)
    h = original_config(checkout, args)
    config = load_codec_config(
        PRESET,
        {
            "hificodec.upsample_initial_channel": args.width,
            "train.batch_size": args.batch,
            "train.segment_length": h["segment_size"],
        },
    )
    options = RunOptions(out=tmp / "ours", data=data, val=val, device="cpu", workers=0,
                         seed=args.seed)  # fmt: skip
    trainer = Trainer(config, options, torch.device("cpu"))
    start_from_original(trainer, checkout, {"config": h, "seed": args.seed}, tmp)
    hop = trainer.model.hop_length
    items = [a[: len(a) // hop * hop] for a in held_out(val, args.val_items)]
    score_at = set(range(args.every, args.steps + 1, args.every)) | {args.steps}
    ours, our_seconds, batches = train_ours(trainer, items, args.steps, score_at)
    job = {
        "config": h, "seed": args.seed, "batches": batches,
        "val": [torch.from_numpy(a) for a in items], "score_at": sorted(score_at),
    }  # fmt: skip
    result = run_original(checkout, "train", job, tmp)
    rate, size = config.sample_rate, trainer.model.codebook_size
    theirs = {
        step: quality(items, [d.numpy() for d in s["decoded"]], s["codes"], rate, size)
        for step, s in result["scored"].items()
    }
    for step in sorted(theirs):
        spent = np.mean(result["seconds"][:step]) if step else 0.0
        print_point("original", step, theirs[step], spent)
    return summary(args, ours, theirs, our_seconds, result["seconds"])


def summary(
    args: argparse.Namespace,
    ours: dict[int, dict[str, Any]],
    theirs: dict[int, dict[str, Any]],
    our_seconds: list[float],
    their_seconds: list[float],
) -> dict[str, Any]:
    target = theirs[args.steps]["mel_l1"]
    reached = [step for step in sorted(ours) if step > 0 and ours[step]["mel_l1"] <= target]
    # the first step is the slowest (allocations, first-touch); the median is the rate
    ours_s, theirs_s = float(np.median(our_seconds)), float(np.median(their_seconds))
    ratio = ours_s / theirs_s
    steps_to = reached[0] if reached else None
    return {
        "steps": args.steps, "every": args.every, "batch": args.batch, "seconds": args.seconds,
        "width": args.width, "seed": args.seed, "val_items": args.val_items,
        "original_mel": target, "ours_mel": ours[args.steps]["mel_l1"],
        "steps_to_original_mel": steps_to,
        "seconds_per_step": {"ours": ours_s, "original": theirs_s},
        "seconds_per_step_vs_original": ratio,
        "curves": {
            "ours": [{"step": s, **ours[s]} for s in sorted(ours)],
            "original": [{"step": s, **theirs[s]} for s in sorted(theirs)],
        },
        "goals": {
            "reaches_original_mel_in_no_more_steps": steps_to is not None,
            "seconds_per_step_at_most_0.8x": ratio <= SPEED_GOAL,
        },
    }  # fmt: skip


def print_point(who: str, step: int, point: dict[str, Any], seconds: float) -> None:
    print(f"{who:>8} step {step:>5} {seconds:6.2f} s/step {scores(point)}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", type=Path, help="a clone of yangdongchao/AcademiCodec")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50, help="steps between scores")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.5, help="training segment")
    parser.add_argument("--width", type=int, default=512, help="upsample_initial_channel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="training shards (default: generated audio)")
    parser.add_argument("--val", type=Path, help="held-out shards (with --data)")
    parser.add_argument("--val-items", type=int, default=8)
    parser.add_argument("--clips", type=int, default=36, help="generated training clips")
    args = parser.parse_args()
    if (args.data is None) != (args.val is None):
        parser.error("--data and --val go together (or neither: generated audio)")
    if args.steps < 1 or args.every < 1:
        parser.error("--steps and --every must be >= 1")
    checkout = args.original or os.environ.get("ACADEMICODEC_ORIGINAL")
    if not checkout:
        report({"bench": "train_vs_original", "skipped": "no --original CHECKOUT given "
                "(git clone https://github.com/yangdongchao/AcademiCodec)"})  # fmt: skip
        return
    checkout = Path(checkout).resolve()
    check_checkout(checkout)
    with tempfile.TemporaryDirectory() as tmp:
        result = compare(args, checkout, Path(tmp))
    report({"bench": "train_vs_original", **result})


if __name__ == "__main__":
    main()
