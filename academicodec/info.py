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
from academicodec.outputs import AUDIO_SUFFIXES, detect_stage, prefix_plan_name, read_plan
from academicodec.storage import Folder


def describe(path: str | Path, items: bool = False) -> dict[str, Any]:
    """A summary of ``path``; ``items`` adds per-item code shapes for a token folder."""
    target = Path(path).expanduser()
    if not target.exists() and target.with_name(target.name + ".model").is_file():
        target = target.with_name(target.name + ".model")  # a text model by its prefix
    if not target.exists():
        raise UserError(f"{target} does not exist")
    found = detect_stage(target)
    kind = found[0] if found else None
    if kind is None and target.is_file():
        kind = _file_kind(target)
    if kind is None and (target / "config.json").is_file():
        kind = "export"
    describers = {
        "prepare": _manifests,
        "shard": _shards,
        "tokenize": lambda p: _codes(p, items),
        "export": _model,
        "eval": _evaluation,
        "train": _run,
        "checkpoint": _checkpoint,
        "decode": _decoded,
        "text model": _text_model,
    }
    if kind not in describers:
        raise UserError(
            f"{target} holds no output of ours (manifests, shards, codes, an export, a run "
            "or checkpoint, decoded audio, an evaluation, a text model) and is not a codec "
            "checkpoint"
        )
    return {"path": str(target), "kind": kind, **describers[kind](target)}


def _file_kind(path: Path) -> str:
    if path.suffix == ".model":
        return "text model"
    if path.suffix.lower() in AUDIO_SUFFIXES:
        raise UserError(
            f"{path} is an audio file: info reads our outputs (manifests, shards, codes, an "
            "export, a run or checkpoint, decoded audio, an evaluation, a text model) and "
            "codec checkpoints; give the folder that holds the audio's manifests or shards"
        )
    if path.suffix == ".pt":
        from academicodec.models.hub import _is_training_checkpoint

        if _is_training_checkpoint(path):
            return "checkpoint"
    return "export"  # a released checkpoint: described as the export it imports to


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
    from academicodec.tokenizer.writers import code_dtype

    index = CodesIndex.read(folder / INDEX_NAME)
    summary = {
        "items": index.totals.items,
        "hours": round(index.totals.seconds / 3600, 4),
        "num_codebooks": index.num_codebooks,
        "codebook_size": index.codebook_size,
        "code_dtype": code_dtype(index.codebook_size).name,
        "frame_rate": index.frame_rate,
        **({"code_layout": index.code_layout} if index.code_layout else {}),
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
    from academicodec.models.export import export_origin, model_summary

    model = load_codec(path)
    origin = export_origin(path)
    data = origin.get("data") if isinstance(origin.get("data"), dict) else {}
    return {
        "preset": model.config.name,
        "family": model.config.family,
        "source": model.config.source or origin.get("source"),
        "run": origin.get("run"),
        "step": origin.get("step"),
        "trained_on": data.get("shards"),
        "framing": model.framing(),
        "parameters": model.generator_parameters(),
        **model_summary(model),
    }


def _checkpoint(path: Path) -> dict[str, Any]:
    from academicodec.training.checkpoint import load_state_file

    state = load_state_file(path)
    return {
        "preset": state.config.get("name"),
        "step": state.step,
        "epoch": state.epoch,
        "data": state.options.get("data"),
        "precision": state.options.get("precision"),
        "export_with": f"academicodec export {path} OUT",
    }


def _decoded(folder: Path) -> dict[str, Any]:
    import soundfile as sf

    files = sorted(folder.rglob("*.wav"))
    rates = sorted({sf.info(str(p)).samplerate for p in files})
    seconds = sum(sf.info(str(p)).duration for p in files)
    plan = read_plan(Folder.of(folder))
    return {
        "files": len(files),
        "sample_rates": rates,
        "hours": round(seconds / 3600, 4),
        "codes": plan.get("codes"),
        "model": plan.get("model"),
    }


def _text_model(path: Path) -> dict[str, Any]:
    import sentencepiece as spm

    try:
        processor = spm.SentencePieceProcessor(model_file=str(path))
    except (RuntimeError, OSError) as exc:
        raise UserError(f"{path} is not a sentencepiece model") from exc
    plan = read_plan(Folder.of(path.parent), prefix_plan_name(path.with_suffix("")))
    return {
        "vocab_size": processor.get_piece_size(),
        "model_type": plan.get("--model-type"),
        "trained_on": plan.get("inputs"),
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
    """A run: what it trains (preset, data), how far it is, and its last logged numbers."""
    from academicodec.training.checkpoint import load_state_file

    steps = sorted(int(p.stem.split("_")[1]) for p in (folder / "checkpoints").glob("step_*.pt"))
    last = folder / "checkpoints" / "last.pt"
    summary: dict[str, Any] = {
        "checkpoints": len(steps) + int(last.is_file()),
        "latest_step": steps[-1] if steps else None,
    }
    if last.is_file():
        state = load_state_file(last)
        summary.update(
            preset=state.config.get("name"), step=state.step, data=state.options.get("data"),
            precision=state.options.get("precision"),
        )  # fmt: skip
    log = folder / "train.log"
    if log.is_file():
        lines = log.read_text(encoding="utf-8").splitlines()
        summary["last_train"] = _last(lines, "step ")
        summary["last_validation"] = _last(lines, "validation step ")
    summary["export_with"] = f"academicodec export {folder} OUT"
    return summary


def _last(lines: list[str], start: str) -> str | None:
    """The newest log line whose text (after the date and time) starts with ``start``."""
    texts = [line.split(" ", 2)[-1] for line in lines]
    found = [text for text in texts if text.startswith(start)]
    return found[-1] if found else None
