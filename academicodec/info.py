"""``academicodec info PATH``: what a folder or file of ours holds, without Python.

One function per kind of output (``outputs.detect_stage`` says which), each returning a flat
dict of what a user asks first: how much audio, at what rate, made by which model, in which
formats. A released checkpoint or Hugging Face folder is described as the export it would
import to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from academicodec.errors import UserError
from academicodec.outputs import detect_stage


def describe(path: str | Path, items: bool = False) -> dict[str, Any]:
    """A summary of ``path``; ``items`` adds per-item code shapes for a token folder."""
    target = Path(path).expanduser()
    if not target.exists():
        raise UserError(f"{target} does not exist")
    found = detect_stage(target)
    kind = found[0] if found else None
    if kind is None and (target.is_file() or (target / "config.json").is_file()):
        kind = "export"
    describers = {
        "prepare": _manifests,
        "shard": _shards,
        "tokenize": lambda p: _codes(p, items),
        "export": _model,
        "eval": _evaluation,
        "train": _run,
    }
    if kind not in describers:
        raise UserError(
            f"{target} holds no output of ours (manifests, shards, codes, an export, an "
            "evaluation or a training run) and is not a codec checkpoint"
        )
    return {"path": str(target), "kind": kind, **describers[kind](target)}


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not readable JSON: {exc}") from exc


def _manifests(folder: Path) -> dict[str, Any]:
    report_path = folder / "prepare_report.json"
    report = _json(report_path) if report_path.is_file() else {}
    splits = report.get("splits", {})
    return {
        "corpus": report.get("corpus"),
        "source": report.get("source"),
        "splits": {
            name: {"recordings": c["recordings"], "hours": c["hours"]} for name, c in splits.items()
        },
        "hours": report.get("totals", {}).get("hours"),
        "skipped": report.get("num_skipped"),
        "manifests": sorted(p.name for p in folder.glob("*.jsonl*")),
    }


def _shards(folder: Path) -> dict[str, Any]:
    from academicodec.pipelines.index import ShardIndex

    index = ShardIndex.load(folder)
    return {
        "sample_rate": index.sample_rate,
        "format": index.format,
        "shards": len(index.shards),
        "samples": index.total_samples,
        "hours": round(index.total_seconds / 3600, 4),
        "skipped": len(index.skipped),
        "manifests": index.manifests,
    }


def _codes(folder: Path, items: bool) -> dict[str, Any]:
    from academicodec.tokenizer.index import INDEX_NAME, CodesIndex

    index = CodesIndex.read(folder / INDEX_NAME)
    summary = {
        "items": index.totals.items,
        "hours": round(index.totals.seconds / 3600, 4),
        "num_codebooks": index.num_codebooks,
        "codebook_size": index.codebook_size,
        "frame_rate": index.frame_rate,
        "sample_rate": index.sample_rate,
        "model": index.model,
        "preset": index.preset,
        "checkpoint_sha256": index.checkpoint_sha256,
        "precision": index.precision,
        "formats": sorted(index.formats),
        "skipped": len(index.skipped),
    }
    if items:
        from academicodec.tokenizer.decode import iter_codes

        summary["item_shapes"] = {
            str(meta.get("id")): list(codes.shape) for codes, _, meta in iter_codes(folder)
        }
    return summary


def _model(path: Path) -> dict[str, Any]:
    from academicodec.models import load_codec
    from academicodec.models.export import model_summary

    model = load_codec(path)
    return {
        "preset": model.config.name,
        "family": model.config.family,
        "source": model.config.source or None,
        "parameters": model.generator_parameters(),
        **model_summary(model),
    }


def _evaluation(folder: Path) -> dict[str, Any]:
    from academicodec.evaluation.summary import SUMMARY_NAME, EvalSummary

    summary = EvalSummary.read(folder / SUMMARY_NAME)
    levels = {
        n_q: {"kbps": level.kbps, **{name: s.mean for name, s in level.overall.items()}}
        for n_q, level in summary.levels.items()
    }
    return {"preset": summary.preset, "items": summary.items, "levels": levels}


def _run(folder: Path) -> dict[str, Any]:
    steps = sorted(int(p.stem.split("_")[1]) for p in (folder / "checkpoints").glob("step_*.pt"))
    last = folder / "checkpoints" / "last.pt"
    return {
        "checkpoints": len(steps) + int(last.is_file()),
        "latest_step": steps[-1] if steps else None,
        "has_last": last.is_file(),
    }
