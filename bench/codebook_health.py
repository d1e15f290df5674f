"""Codebook health over seeds, scored on held-out audio of another kind (issue 31).

For each preset and seed: a training corpus of generated speech (``voiced_signal``: a
LibriTTS layout and a folder, 36 clips, the corpus and shard seeds shifted with the seed),
and 8 held-out clips from another voice generator (``formant_speech``: a Klatt-style
formant synthesiser, other speakers, levels from -36 to -6 dBFS). Then N generator-only
steps on CPU (the discriminators start after the run; every other setting the preset's),
validation on the held-out clips every ``--every`` steps: each codebook's perplexity and
fraction of codes used over every held-out frame, and mel L1.

Goals (issue 31): every codebook's perplexity >= 32 at every validation from step 25 on and
>= 64 at the end, >= 25% of the codes used at the end. Prints a table per run, then one JSON
line (``"bench": "codebook_health"``) with every curve and which goals each run met.

    python bench/codebook_health.py --presets tiny_encodec_16k tiny_hificodec_16k --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import report
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from academicodec.cli import parse_overrides
from academicodec.manifests import prepare
from academicodec.manifests.synthetic import SpeechSource, make_folder, make_libritts
from academicodec.models import build_codec, load_codec_config
from academicodec.pipelines import ShardSettings, write_shards
from academicodec.training import RunOptions, train

FIRST_PERPLEXITY, FINAL_PERPLEXITY, FINAL_USED = 32.0, 64.0, 0.25


def make_corpora(
    root: Path, seed: int, held_out: str = "formant", sample_rate: int = 16000, clips: int = 36
) -> tuple[Path, Path]:
    """Training shards (harmonic voices: two thirds in a LibriTTS layout, a third in a
    folder) and 8 held-out clips (formant voices by default) for ``seed``, made once per
    seed and shared by the presets."""
    if (root / "val" / "index.json").is_file():
        return root / "train", root / "val"
    source = SpeechSource(seed=seed)
    libritts = clips * 2 // 3
    parts = {"dev-clean": libritts * 2 // 3, "test-clean": libritts - libritts * 2 // 3}
    make_libritts(root / "LibriTTS", parts, seed=seed, source=source)
    make_folder(root / "folder", clips - libritts, seed=seed + 1, source=source)
    other = SpeechSource(generator=held_out, seed=seed)
    make_folder(root / "held_out", 8, seed=seed + 1000, source=other, durations=(1.5, 3.0))
    for name, layout in (("LibriTTS", "libritts"), ("folder", "folder"), ("held_out", "folder")):
        prepare(layout, root / name, root / "manifests" / name)
    settings = ShardSettings(sample_rate, samples_per_shard=16, seed=seed)
    manifests = [root / "manifests" / "LibriTTS", root / "manifests" / "folder"]
    write_shards(manifests, root / "train", settings)
    write_shards([root / "manifests" / "held_out"], root / "val", settings)
    return root / "train", root / "val"


def run(
    preset: str,
    seed: int,
    steps: int,
    every: int,
    root: Path,
    sets: dict[str, Any],
    held_out: str = "formant",
) -> dict[str, Any]:
    data, val = make_corpora(root / f"data-{seed}", seed, held_out)
    overrides = {"train.disc_start_step": 10 * steps, **sets}
    out = root / f"run-{preset}-{seed}"
    options = RunOptions(
        out=out, data=data, val=val, max_steps=steps, device="cpu", workers=0,
        val_every=every, ckpt_every=steps, val_items=8, seed=seed,
    )  # fmt: skip
    started = time.perf_counter()
    train(preset, options, overrides)
    seconds = time.perf_counter() - started
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    books = build_codec(load_codec_config(preset, overrides)).num_codebooks
    perplexity = [[e.value for e in events.Scalars(f"val/codebook_perplexity_{k}")]
                  for k in range(books)]  # fmt: skip
    used = [[e.value for e in events.Scalars(f"val/codebook_used_{k}")] for k in range(books)]
    mel = [e.value for e in events.Scalars("val/mel_l1")]
    validated = [e.step for e in events.Scalars("val/mel_l1")]
    goals = {
        "perplexity_from_first": all(min(p) >= FIRST_PERPLEXITY for p in perplexity),
        "perplexity_final": all(p[-1] >= FINAL_PERPLEXITY for p in perplexity),
        "used_final": all(u[-1] >= FINAL_USED for u in used),
    }
    return {
        "preset": preset, "seed": seed, "seconds": round(seconds, 1), "steps": validated,
        "perplexity": [[round(v) for v in p] for p in perplexity],
        "used": [[round(v, 3) for v in u] for u in used],
        "mel_l1": [round(v, 3) for v in mel],
        "goals": goals, "met": all(goals.values()),
    }  # fmt: skip


def print_run(result: dict[str, Any]) -> None:
    print(f"{result['preset']} seed {result['seed']} ({result['seconds']} s)", file=sys.stderr)
    for i, step in enumerate(result["steps"]):
        perplexity = ", ".join(str(p[i]) for p in result["perplexity"])
        used = ", ".join(f"{100 * u[i]:.0f}%" for u in result["used"])
        print(f"  {step:>4} | {perplexity} | {used} | {result['mel_l1'][i]:.3f}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny_encodec_16k", "tiny_hificodec_16k"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE preset override")
    parser.add_argument(
        "--held-out", choices=["formant", "harmonic"], default="formant",
        help="the held-out voices: another generator (formant) or the training one's",
    )  # fmt: skip
    args = parser.parse_args()
    sets = parse_overrides(args.set)
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            for seed in args.seeds:
                results.append(
                    run(preset, seed, args.steps, args.every, Path(tmp), sets, args.held_out)
                )
                print_run(results[-1])
    report({
        "bench": "codebook_health", "steps": args.steps, "set": sets,
        "held_out": args.held_out, "runs": results,
        "met": {f"{r['preset']}/{r['seed']}": r["met"] for r in results},
    })  # fmt: skip


if __name__ == "__main__":
    main()
