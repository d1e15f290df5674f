"""``academicodec demo``: the whole product on a small generated corpus, end to end.

Like the CLI, this module orchestrates the stages, so it may import every sub-package. It
builds two corpus layouts (LibriTTS and a plain folder at mixed rates; espeak-ng speech when
installed, synthetic voiced signals otherwise) and runs each stage that exists on them:
prepare, shard (the training splits), train a tiny HiFi-Codec, export, tokenize (all three
formats), decode, eval (on the held-out test-clean split). The corpus records how it was
made, so a re-run reports the voice it really has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from academicodec.progress import ProgressFactory, silent_progress

DEMO_SAMPLE_RATE = 16000
# The demo's own layout: bumped when what it writes changes (2: training splits only, eval
# on held-out test-clean), so a re-run never resumes into an older demo's outputs.
LAYOUT = "2"
LAYOUT_FILE = ".demo-layout"


@dataclass
class DemoResult:
    """One row per stage: (stage, short result, where its output is)."""

    rows: list[tuple[str, str, Path]] = field(default_factory=list)
    voice: str = ""  # what the corpus is: espeak-ng speech or synthetic voiced signals


def _check_layout(out: Path) -> None:
    """OUT is new, empty, or a demo of this layout (which a re-run resumes)."""
    from academicodec.errors import UserError

    marker = out / LAYOUT_FILE
    if out.is_dir() and any(out.iterdir()):
        found = marker.read_text().strip() if marker.is_file() else "1"
        if found != LAYOUT:
            raise UserError(
                f"{out} holds a demo of an earlier version (layout {found}, now {LAYOUT}): "
                "delete it or pass another OUT"
            )
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(LAYOUT + "\n")


def run_demo(
    out: Path,
    use_espeak: bool = True,
    train_steps: int = 200,
    progress: ProgressFactory = silent_progress,
    log: Callable[[str], object] = lambda _: None,
) -> DemoResult:
    from academicodec.evaluation import evaluate
    from academicodec.manifests import prepare
    from academicodec.manifests.synthetic import SpeechSource, make_folder, make_libritts
    from academicodec.pipelines import ShardSettings, write_shards
    from academicodec.pipelines.items import CUTS_GLOB
    from academicodec.tokenizer import TokenizeSettings, tokenize
    from academicodec.tokenizer.decode import decode_codes
    from academicodec.training import RunOptions, export_run, train

    out = Path(out).resolve()
    _check_layout(out)
    result = DemoResult()
    source = SpeechSource(use_espeak=use_espeak)
    corpus = out / "corpus"
    made = corpus / ".complete"  # records the voice it was made with, for re-runs
    if not made.is_file():
        voice = "espeak-ng speech" if source.use_espeak else "synthetic voiced signals"
        log(f"[1/7] generating the demo corpus ({voice}) in {corpus}")
        make_libritts(corpus / "LibriTTS", {"dev-clean": 16, "test-clean": 8}, source=source)
        make_folder(corpus / "folder", 12, source=source, seed=1)
        made.write_text(voice + "\n")
    voice = made.read_text().strip()
    if voice == "ok":  # a corpus of an earlier demo, which did not record its voice
        voice = "made by an earlier demo (voice not recorded)"
    result.voice = voice
    result.rows.append(("corpus", voice, corpus))

    log("[2/7] prepare: scanning both layouts into Lhotse manifests")
    manifests = []
    for name, src in (("libritts", corpus / "LibriTTS"), ("folder", corpus / "folder")):
        report = prepare(name, src, out / "manifests" / name, jobs=2, progress=progress)
        totals = report.totals
        result.rows.append(
            (
                f"prepare {name}",
                f"{totals.cuts} cuts, {totals.seconds / 60:.1f} min, {len(report.skipped)} skipped",
                report.path.parent,
            )
        )
        manifests.append(report.path.parent)

    # Training data: every split but test-clean, which stays held out for eval.
    held_out = [out / "manifests" / "libritts" / "libritts_cuts_test-clean.jsonl.gz"]
    training = [
        path
        for folder in manifests
        for path in sorted(folder.glob(CUTS_GLOB))
        if path not in held_out
    ]
    log(f"[3/7] shard: the training splits, resampled to {DEMO_SAMPLE_RATE} Hz")
    settings = ShardSettings(sample_rate=DEMO_SAMPLE_RATE, samples_per_shard=16)
    index = write_shards(training, out / "shards", settings, jobs=2, progress=progress)
    assert index is not None  # one process: rank 0
    splits = ", ".join(_split_name(path) for path in training)
    result.rows.append(
        (
            "shard",
            f"{len(index.shards)} shards, {index.total_samples} samples of {splits} "
            "(test-clean held out)",
            out / "shards" / "index.json",
        )
    )

    log(f"[4/7] train: tiny_hificodec_16k for {train_steps} steps (CPU)")
    run = out / "run"
    options = RunOptions(
        out=run, data=out / "shards", max_steps=train_steps, device="cpu", workers=1,
        ckpt_every=max(1, train_steps // 2), val_every=train_steps, val_items=4,
    )  # fmt: skip
    overrides = {
        "train.batch_size": 8,
        "train.segment_length": 8000,
        "train.lr": 1e-3,
        # Generator-only warm-up for the first three quarters: a short CPU run gets usable
        # audio, and the adversarial steps (3x slower on CPU) still run.
        "train.disc_start_step": 3 * train_steps // 4,
    }
    state = train("tiny_hificodec_16k", options, overrides)
    model_dir = export_run(run, out / "model")
    result.rows.append(("train", f"{state.step} steps", run / "checkpoints"))
    result.rows.append(("export", "tiny_hificodec_16k: use as --model", model_dir))
    log("[5/7] tokenize: the shards -> codes (webdataset, Lhotse Shar, parquet)")
    settings = TokenizeSettings(formats=("webdataset", "shar", "parquet"), items_per_shard=16)
    index = tokenize(model_dir, [out / "shards"], out / "codes", settings, progress=progress)
    assert index is not None
    result.rows.append(
        (
            "tokenize",
            f"{index.totals.items} items x {index.num_codebooks} codebooks",
            out / "codes" / "index.json",
        )
    )
    log("[6/7] decode: codes -> audio")
    written = decode_codes(out / "codes", out / "decoded", model_dir, progress=progress)
    result.rows.append(("decode", f"{len(written)} wav files", out / "decoded"))

    log("[7/7] eval: PESQ, STOI, SI-SDR of the tiny model on held-out test-clean")
    summary = evaluate(model_dir, held_out, out / "eval", progress=progress)
    level = next(iter(summary.levels.values()))
    result.rows.append(
        (
            "eval",
            f"PESQ-WB {level.overall['pesq_wb'].mean_or_nan():.2f}, "
            f"STOI {level.overall['stoi'].mean_or_nan():.2f} on held-out test-clean "
            f"({summary.items} clips the model never saw)",
            out / "eval" / "report.md",
        )
    )
    usage = ", ".join(f"{100 * used:.0f}%" for used in level.codebooks.used)
    perplexity = ", ".join(f"{value:.0f}" for value in level.codebooks.perplexity)
    result.rows.append(
        ("codebooks", f"used {usage}; perplexity {perplexity}", out / "eval" / "summary.json")
    )
    return result


def _split_name(manifest: Path) -> str:
    """``libritts_cuts_dev-clean.jsonl.gz`` -> ``libritts dev-clean``."""
    corpus, _, split = manifest.name.split(".")[0].partition("_cuts_")
    return f"{corpus} {split}" if split else corpus
