"""The one place that decides whether a folder may receive a stage's output.

Every stage writes into an OUT folder it may be re-run on (to resume), so an existing
folder is fine as long as it holds this stage's output or nothing of ours. What must never
happen is a stage writing into another stage's output - the forgotten OUT of
``shard manifests/libritts manifests/vctk`` would otherwise put LibriTTS shards into the
VCTK manifest folder - or into one of its own inputs. ``claim_output`` refuses both in one
line naming the folder and what it holds; ``removed_if_failed`` (used by the CLI) deletes an
OUT a failed command created and left empty.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from academicodec.errors import UserError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")


def detect_stage(folder: Path) -> tuple[str, str] | None:
    """``(stage, what shows it)`` for a folder holding one of our stages' outputs."""
    if not folder.is_dir():
        return None
    if (folder / "prepare_report.json").is_file() or any(folder.glob("*_recordings_*.jsonl*")):
        return "prepare", "manifests"
    index = folder / "index.json"
    if index.is_file():
        try:
            data = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and "num_codebooks" in data:
            return "tokenize", "codes (index.json of tokenize)"
        if isinstance(data, dict) and "shards" in data:
            return "shard", "shards (index.json of shard)"
    if (folder / "config.yaml").is_file() and (folder / "model.safetensors").is_file():
        return "export", "a codec export (config.yaml + model.safetensors)"
    if (folder / "summary.json").is_file():
        return "eval", "an evaluation (summary.json)"
    if (folder / "checkpoints").is_dir():
        return "train", "a training run (checkpoints/)"
    return None


def claim_output(out: str | Path, stage: str, inputs: Sequence[str | Path] = ()) -> Path:
    """The resolved OUT folder, created and proven writable, after refusing (one line):
    a regular file; one of the inputs, or a folder holding one; a folder
    holding another stage's output; audio files where a stage writes no audio."""
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"OUT {path} is a file, not a folder")
    for source in inputs:
        src = Path(source).expanduser().resolve()
        if path == src or (src.is_dir() and path in src.parents):
            raise UserError(f"OUT {path} overlaps the input {src}: give {stage} its own folder")
    found = detect_stage(path)
    if found is not None and found[0] != stage:
        raise UserError(
            f"OUT {path} holds {found[1]}, not {stage} output: is OUT missing from the "
            f"command? Give {stage} an empty folder (or its own earlier OUT to resume)"
        )
    if stage != "decode" and path.is_dir() and _has_audio(path):
        raise UserError(f"OUT {path} holds audio files (an input corpus?): choose another folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"OUT {path} is not a writable directory: {exc.strerror}") from exc
    return path


def _has_audio(folder: Path) -> bool:
    return any(p.suffix.lower() in AUDIO_SUFFIXES for p in folder.iterdir() if p.is_file())


def refuse_other_plan(out_dir: Path, plan: str, overwrite: bool, what: str) -> None:
    """The one check that OUT's outputs were made with these settings: ``index.json`` and
    every completion record (``.progress/*.json``) carry the ``plan`` fingerprint of the
    run that wrote them (inputs, settings, model); another plan there is refused in one
    line unless ``overwrite``. A resumable run's own records pass, so re-running the same
    command resumes."""
    if overwrite:
        return
    made_by = None
    index = out_dir / "index.json"
    if index.is_file():
        previous = _read_json(index)
        if previous.get("plan") != plan:
            settings = previous.get("settings") or {"model": previous.get("model")}
            made_by = f"{what} made with other inputs or settings (there: {settings})"
    records = sorted((out_dir / ".progress").glob("*.json"))
    if made_by is None and any(_read_json(r).get("plan") not in (None, plan) for r in records):
        made_by = f"{what} of an unfinished run with other inputs or settings"
    if made_by is not None:
        raise UserError(
            f"OUT {out_dir} holds {made_by}; use another OUT, or --overwrite to replace "
            "them (files the new run does not write are removed)"
        )


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextmanager
def removed_if_failed(out: str | Path) -> Iterator[None]:
    """Remove ``out`` again if the body fails after creating it and leaves nothing in it
    but hidden scratch (``.inputs``, ``.progress``); partial output of a long run that was
    interrupted stays, for the re-run to resume."""
    path = Path(out).expanduser()
    existed = path.exists()
    try:
        yield
    except BaseException:
        if not existed and path.is_dir():
            visible = [p for p in path.iterdir() if not p.name.startswith(".")]
            if not visible:
                shutil.rmtree(path, ignore_errors=True)
        raise
