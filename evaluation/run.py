"""``eval``: encode -> decode every item and score it; items.csv, summary.json, report.md
and plots. Bad or too-short items are skipped and listed, never fatal."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch

from academicodec import storage
from academicodec.errors import UserError
from academicodec.evaluation import metrics
from academicodec.evaluation.overlap import audio_overlap, training_overlap
from academicodec.evaluation.plots import write_plots
from academicodec.evaluation.summary import (
    SUMMARY_NAME,
    CodebookStats,
    EvalSummary,
    LevelSummary,
    MetricStats,
)
from academicodec.identity import identity, inputs_identity
from academicodec.models import CodecModel, load_codec
from academicodec.models.hub import resolve_source
from academicodec.models.precision import check_precision, numerics
from academicodec.outputs import claim_folder, own_plan, record_plan
from academicodec.pipelines.items import ShardItem
from academicodec.pipelines.shard import read_item
from academicodec.pipelines.sources import collect_items
from academicodec.progress import ProgressFactory, silent_progress
from academicodec.storage import scratch_dir
from academicodec.writer_lock import stage_scope

METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_distance")
EXAMPLES = 3


@stage_scope
def evaluate(
    model_path: str | Path,
    inputs: list[str | Path],
    out: str | Path,
    n_q_values: list[int] | None = None,
    max_items: int | None = None,
    device: str = "cpu",
    progress: ProgressFactory = silent_progress,
    bandwidths: list[float] | None = None,
    precision: str = "fp32",
    verify: bool = False,
    overwrite: bool = False,
) -> EvalSummary:
    """Score ``model_path`` on ``inputs`` at each ``n_q_values`` / ``bandwidths`` (kbps)
    level; returns the summary written to summary.json.

    Codes are made at ``precision`` (as ``tokenize --precision`` makes them) and decoded in
    fp32, so the scores compare codes; at another precision than fp32 each level also
    reports the fraction of codes equal to fp32's. Input shards are checked against their
    index.json (``verify``: their sha256 too)."""
    check_precision(precision)
    folder = claim_folder(out, "eval", list(inputs))
    model_file = resolve_source(storage.local_copy(model_path))
    described = {
        "inputs": inputs_identity(list(inputs)),
        "model": identity(model_file),
        "--n-q": list(n_q_values or []) or None,
        "--bandwidth": list(bandwidths or []) or None,
        "--max-items": max_items,
        "--precision": precision,
    }
    own_plan(folder, "eval", described, overwrite, write=False)
    overlap = training_overlap(model_file, list(inputs))
    # Written locally (OUT, or a staging folder uploaded at the end for a bucket).
    out_dir = folder.local or scratch_dir("eval")
    model = load_codec(model_file).to(device)
    chosen = [model.resolve_n_q(n) for n in n_q_values or []]
    chosen += [model.resolve_n_q(kbps=k) for k in bandwidths or []]
    levels: list[int | None] = list(chosen) if chosen else [None]
    items, skipped = collect_items(list(inputs), folder.workdir(".inputs"), verify)
    items = items[:max_items] if max_items else items
    if not items:
        raise UserError(f"no audio items found in {[str(i) for i in inputs]}")
    # Printed once, by the caller (the CLI), from the summary; the report repeats it.
    overlap = overlap or audio_overlap(model_file, items)
    rows: list[dict[str, Any]] = []
    codes_by_level: dict[int, list[np.ndarray]] = {}
    examples: list[tuple[str, np.ndarray, np.ndarray]] = []
    bar = progress(len(items), "evaluating")
    with torch.inference_mode():
        for item in items:
            bar.update(1)
            audio = _audio(item, model, skipped)
            if audio is None:
                continue
            for n_q in levels:
                row, codes, reconstruction = _score(model, item, audio, n_q, precision)
                rows.append(row)
                codes_by_level.setdefault(row["n_q"], []).append(codes)
                if len(examples) < EXAMPLES and n_q == levels[-1]:
                    examples.append((row["id"], audio, reconstruction))
    bar.close()
    summary = _summary(model, rows, codes_by_level, skipped, precision)
    summary.training_data_overlap = overlap
    _write_csv(out_dir / "items.csv", rows)
    summary.write(out_dir / SUMMARY_NAME)
    plots = write_plots(out_dir / "plots", model, examples, codes_by_level, summary)
    (out_dir / "report.md").write_text(_report(summary, plots, out_dir), encoding="utf-8")
    if folder.local is None:
        folder.upload_tree(out_dir)
    record_plan(folder, "eval", described)
    return summary


def _audio(item: ShardItem, model: CodecModel, skipped: list[dict[str, Any]]) -> np.ndarray | None:
    try:
        audio = read_item(item, model.sample_rate)
    except Exception as exc:
        skipped.append({"id": item.meta.get("id", item.key), "reason": f"unreadable audio: {exc}"})
        return None
    if len(audio) < model.hop_length:
        reason = f"shorter than one frame ({len(audio)} samples)"
        skipped.append({"id": item.meta.get("id", item.key), "reason": reason})
        return None
    return audio


def _score(
    model: CodecModel, item: ShardItem, audio: np.ndarray, n_q: int | None, precision: str
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    device = next(model.parameters()).device
    wav = torch.from_numpy(audio)[None, None].to(device)
    with numerics(precision, device):
        codes = model.encode(wav, n_q=n_q)
    with numerics("fp32", device):
        reconstruction = model.decode(codes)[0, 0, : len(audio)].float().cpu().numpy()
        reference = codes if precision == "fp32" else model.encode(wav, n_q=n_q)
    books = codes.shape[1]
    row: dict[str, Any] = {
        "id": item.meta.get("id", item.key),
        "corpus": item.meta.get("corpus") or "unknown",
        "speaker": item.meta.get("speaker") or "unknown",
        "duration": round(len(audio) / model.sample_rate, 3),
        "n_q": books,
        "kbps": round(model.bitrate_kbps(books), 3),
        "equal_to_fp32": int((codes == reference).sum()),
        "codes": codes.numel(),
    }
    notes = []
    rate = model.sample_rate
    scorers = {
        "pesq_wb": lambda: metrics.pesq(audio, reconstruction, rate, "wb"),
        "pesq_nb": lambda: metrics.pesq(audio, reconstruction, rate, "nb"),
        "stoi": lambda: metrics.stoi(audio, reconstruction, rate),
        "estoi": lambda: metrics.stoi(audio, reconstruction, rate, extended=True),
        "si_sdr": lambda: metrics.si_sdr(audio, reconstruction),
        "mel_distance": lambda: metrics.mel_distance(audio, reconstruction, rate),
    }
    for name, score in scorers.items():
        try:
            row[name] = round(score(), 4)
        except metrics.MetricError as exc:
            row[name] = None
            notes.append(str(exc))
    row["notes"] = "; ".join(notes)
    return row, codes[0].t().cpu().numpy(), reconstruction


def _stats(values: list[float]) -> MetricStats:
    if not values:
        return MetricStats(0)
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return MetricStats(
        count=len(values),
        mean=round(mean, 4),
        median=round(statistics.median(values), 4),
        ci95=round(1.96 * spread / math.sqrt(len(values)), 4),
    )


def _group(rows: list[dict[str, Any]]) -> dict[str, MetricStats]:
    return {m: _stats([r[m] for r in rows if r.get(m) is not None]) for m in METRICS}


def _summary(
    model: CodecModel,
    rows: list[dict[str, Any]],
    codes_by_level: dict[int, list[np.ndarray]],
    skipped: list[dict[str, Any]],
    precision: str,
) -> EvalSummary:
    levels = {}
    for n_q, codes in sorted(codes_by_level.items()):
        mine = [r for r in rows if r["n_q"] == n_q]
        stats = CodebookStats(**metrics.code_statistics(np.concatenate(codes), model.codebook_size))
        bits = sum(stats.entropy_bits)
        equal = sum(r["equal_to_fp32"] for r in mine) / max(sum(r["codes"] for r in mine), 1)
        levels[str(n_q)] = LevelSummary(
            kbps=model.bitrate_kbps(n_q),
            codes_equal_to_fp32=round(equal, 6),
            entropy_bits_per_frame=round(bits, 3),
            entropy_coded_kbps=round(bits * model.frame_rate / 1000, 3),
            codebooks=stats,
            overall=_group(mine),
            by_corpus={
                c: _group([r for r in mine if r["corpus"] == c])
                for c in sorted({r["corpus"] for r in mine})
            },
            by_speaker={
                s: _group([r for r in mine if r["speaker"] == s])
                for s in sorted({r["speaker"] for r in mine})
            },
        )
    return EvalSummary(
        preset=model.config.name,
        precision=precision,
        sample_rate=model.sample_rate,
        frame_rate=model.frame_rate,
        codebook_size=model.codebook_size,
        items=len({r["id"] for r in rows}),
        levels=levels,
        skipped=skipped,
    )


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = ["id", "corpus", "speaker", "duration", "n_q", "kbps", *METRICS, "notes"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _report(summary: EvalSummary, plots: list[Path], out_dir: Path) -> str:
    agreement = ", ".join(
        f"{level.codes_equal_to_fp32:.2%} at n_q {n}" for n, level in summary.levels.items()
    )
    made = "" if summary.precision == "fp32" else f" (equal to fp32's: {agreement})"
    lines = [
        f"# Evaluation: {summary.preset}",
        "",
        f"{summary.items} items at {summary.sample_rate} Hz, "
        f"{len(summary.skipped)} skipped (see summary.json). Codes made at "
        f"{summary.precision}{made}, decoded in fp32.",
        "",
        *(
            [f"**Warning: {summary.training_data_overlap}.**", ""]
            if summary.training_data_overlap
            else []
        ),
        "| n_q | kbps | entropy-coded kbps | " + " | ".join(METRICS) + " |",
        "|---" * (3 + len(METRICS)) + "|",
    ]
    for n_q, level in summary.levels.items():
        cells = []
        for metric in METRICS:
            stats = level.overall[metric]
            cells.append(f"{stats.mean:.3f} ± {stats.ci95:.3f}" if stats.count else "–")
        lines.append(
            f"| {n_q} | {level.kbps:g} | {level.entropy_coded_kbps:g} | " + " | ".join(cells) + " |"
        )
    for level in summary.levels.values():
        if len(level.by_corpus) > 1:
            lines += ["", "Per corpus (mean PESQ-WB / STOI):", ""]
            for corpus, group in level.by_corpus.items():
                pesq_wb, stoi = group["pesq_wb"], group["stoi"]
                lines.append(
                    f"- {corpus}: {pesq_wb.mean_or_nan():.3f} / {stoi.mean_or_nan():.3f} "
                    f"({stoi.count} items)"
                )
            break
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.relative_to(out_dir)})" for p in plots]
    return "\n".join(lines) + "\n"
