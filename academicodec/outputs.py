"""The one place that decides whether a folder may receive a stage's output.

Every stage writes into an OUT folder it may be re-run on (to resume), so an existing
folder is fine as long as it holds this stage's output or nothing of ours. What must never
happen is a stage writing into another stage's output - the forgotten OUT of
``shard manifests/libritts manifests/vctk`` would otherwise put LibriTTS shards into the
VCTK manifest folder - or into one of its own inputs. ``claim_output`` refuses both in one
line naming the folder and what it holds (OUT may be a bucket prefix: ``claim_folder``);
``removed_if_failed`` (used by the CLI) deletes an
OUT a failed command created and left empty.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from academicodec.errors import UserError
from academicodec.storage import Folder, is_file, is_url, local, looks_like_url

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")
WRITE_TEST = ".write-test-"


def detect_stage(folder: Folder | Path) -> tuple[str, str] | None:
    """``(stage, what shows it)`` for a folder (or bucket prefix) holding one of our
    stages' outputs."""
    folder = folder if isinstance(folder, Folder) else Folder.of(folder)
    if folder.local is not None and not folder.local.is_dir():
        return None
    if folder.is_file("prepare_report.json") or folder.files(pattern="*_recordings_*.jsonl*"):
        return "prepare", "manifests"
    text = folder.read_text("index.json")
    if text is not None:
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        if isinstance(data, dict) and "num_codebooks" in data:
            return "tokenize", "codes (index.json of tokenize)"
        if isinstance(data, dict) and "shards" in data:
            return "shard", "shards (index.json of shard)"
    if folder.is_file("config.yaml") and folder.is_file("model.safetensors"):
        return "export", "a codec export (config.yaml + model.safetensors)"
    if folder.is_file("summary.json"):
        return "eval", "an evaluation (summary.json)"
    if folder.files("checkpoints"):
        return "train", "a training run (checkpoints/)"
    return None


def claim_output(out: str | Path, stage: str, inputs: Sequence[str | Path] = ()) -> Path:
    """``claim_folder`` for the stages that write to a local folder only: the resolved path
    (a URL is refused in one line - ``Path`` would quietly make a local ``s3:`` folder)."""
    if looks_like_url(out):
        raise UserError(
            f"OUT {out}: {stage} writes to a local folder (shard, tokenize and eval write to URLs)"
        )
    folder = claim_folder(out, stage, inputs)
    assert folder.local is not None
    return folder.local


def claim_folder(out: str | Path, stage: str, inputs: Sequence[str | Path] = ()) -> Folder:
    """OUT (a local folder or a URL prefix), created and proven writable, after refusing
    (one line): a regular file; one of the inputs, or a folder holding one; a folder
    holding another stage's output; audio files where a stage writes no audio."""
    folder = Folder.of(out)
    if folder.local is not None and folder.local.exists() and not folder.local.is_dir():
        raise UserError(f"OUT {folder} is a file, not a folder")
    if folder.local is None and is_file(folder.location):
        raise UserError(f"OUT {folder} is an object (a file), not a prefix")
    for source in inputs:
        if _overlaps(folder, local(source)):
            raise UserError(
                f"OUT {folder} overlaps the input {local(source)}: give {stage} its own folder"
            )
    found = detect_stage(folder)
    if found is not None and found[0] != stage:
        raise UserError(
            f"OUT {folder} holds {found[1]}, not {stage} output: is OUT missing from the "
            f"command? Give {stage} an empty folder (or its own earlier OUT to resume)"
        )
    if stage != "decode" and _has_audio(folder):
        raise UserError(f"OUT {folder} holds audio files (an input corpus?): choose another folder")
    _prove_writable(folder)
    return folder


def _overlaps(folder: Folder, source: str | Path) -> bool:
    if is_url(source) != (folder.local is None):
        return False
    if folder.local is not None:
        src = Path(source)
        return folder.local == src or (src.is_dir() and folder.local in src.parents)
    src = str(source).rstrip("/")
    return folder.location == src or folder.location.startswith(src + "/")


def _has_audio(folder: Folder) -> bool:
    return any(Path(name).suffix.lower() in AUDIO_SUFFIXES for name in folder.files(pattern="*"))


def _prove_writable(folder: Folder) -> None:
    if folder.local is None:  # one small object: a missing bucket or key fails here
        probe = f"{WRITE_TEST}{uuid.uuid4().hex}"  # ranks probe the same prefix at once
        folder.write_bytes(probe, b"")
        folder.remove(probe)
        return
    try:
        folder.local.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder.local, prefix=WRITE_TEST)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"OUT {folder} is not a writable directory: {exc.strerror}") from exc


def refuse_other_plan(out: Folder, plan: str, overwrite: bool, what: str) -> None:
    """The one check that OUT's outputs were made with these settings: ``index.json`` and
    every completion record (``.progress/*.json``) carry the ``plan`` fingerprint of the
    run that wrote them (inputs, settings, model); another plan there is refused in one
    line unless ``overwrite``. A resumable run's own records pass, so re-running the same
    command resumes."""
    if overwrite:
        return
    made_by = None
    previous = _read_json(out, "index.json")
    if previous and previous.get("plan") != plan:
        settings = previous.get("settings") or {"model": previous.get("model")}
        made_by = f"{what} made with other inputs or settings (there: {settings})"
    records = out.files(".progress", "*.json")
    if made_by is None and any(_read_json(out, r).get("plan") not in (None, plan) for r in records):
        made_by = f"{what} of an unfinished run with other inputs or settings"
    if made_by is not None:
        raise UserError(
            f"OUT {out} holds {made_by}; use another OUT, or --overwrite to replace "
            "them (files the new run does not write are removed)"
        )


def _read_json(folder: Folder, name: str) -> dict:
    try:
        data = json.loads(folder.read_text(name) or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@contextmanager
def removed_if_failed(out: str | Path) -> Iterator[None]:
    """Remove ``out`` again if the body fails after creating it and leaves nothing in it
    but hidden scratch (``.inputs``, ``.progress``); partial output of a long run that was
    interrupted stays, for the re-run to resume."""
    if is_url(out):  # a prefix is no folder to remove
        yield
        return
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
