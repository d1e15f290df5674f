"""The one place that decides whether a folder may receive a stage's output.

Every stage writes into an OUT folder it may be re-run on (to resume), so an existing
folder is fine as long as it holds this stage's output or nothing of ours. What must never
happen is a stage writing into another stage's output - the forgotten OUT of
``shard manifests/libritts manifests/vctk`` would otherwise put LibriTTS shards into the
VCTK manifest folder - or into one of its own inputs. ``claim_output`` refuses both in one
line naming the folder and what it holds (OUT may be a bucket prefix: ``claim_folder``);
``removed_if_failed`` (used by the CLI) deletes an
OUT a failed command created and left empty.

Within one stage, ``own_plan`` is the rule every stage follows: OUT records (``.plan.json``)
what shaped its output - the inputs by identity (``academicodec.identity``), the model's
sha256, every option that changes the result - and a run with other ones is refused in one
line listing each difference (``--n-q: 8 -> 2``); ``--overwrite`` replaces the output
entirely (nothing of the old run stays); the same command again resumes, or is a no-op.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from academicodec import distrib, writer_lock
from academicodec.errors import UserError
from academicodec.storage import Folder, is_file, is_url, local, looks_like_url

PLAN_NAME = ".plan.json"
# What each stage's OUT holds, as a refusal names it.
STAGE_OUTPUTS = {
    "prepare": "manifests", "shard": "shards", "train": "a training run",
    "export": "a codec export", "tokenize": "codes", "decode": "decoded audio",
    "eval": "an evaluation",
}  # fmt: skip
# How deep a would-be OUT is searched for audio (LibriTTS: part/speaker/chapter/clip), and
# how many folders a level at most: a bounded look, not a scan of a terabyte corpus.
AUDIO_DEPTH = 3
MAX_FOLDERS_SCANNED = 2000
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")
WRITE_TEST = ".write-test-"


def detect_stage(folder: Folder | Path) -> tuple[str, str] | None:
    """``(stage, what shows it)`` for a folder (or bucket prefix) holding one of our
    stages' outputs."""
    folder = folder if isinstance(folder, Folder) else Folder.of(folder)
    if folder.local is not None and not folder.local.is_dir():
        return None
    recorded = _read_json(folder, PLAN_NAME).get("stage")
    if isinstance(recorded, str):
        return recorded, f"{STAGE_OUTPUTS.get(recorded, recorded)} (written by {recorded})"
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
    holding another stage's output; audio files where a stage writes no audio; a folder
    another live process writes as the same rank (``writer_lock``: held until the stage
    returns)."""
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
    own = found is not None and found[0] == stage  # its own earlier OUT (decode, prepare hf)
    if not own and _has_audio(folder):
        raise UserError(
            f"OUT {folder} holds audio files (a corpus?): {stage} would write among them; "
            "choose another folder"
        )
    _prove_writable(folder)
    if folder.local is not None:
        writer_lock.hold(folder.local, stage, distrib.rank())
    return folder


def _overlaps(folder: Folder, source: str | Path) -> bool:
    if is_url(source) != (folder.local is None):
        return False
    if folder.local is not None:
        src = Path(source)
        return folder.local == src or (src.is_dir() and folder.local in src.parents)
    src = str(source).rstrip("/")
    return folder.location == src or folder.location.startswith(src + "/")


def _has_audio(folder: Folder, depth: int = AUDIO_DEPTH) -> bool:
    """Audio in OUT or a few levels below it (a corpus root keeps its audio in speaker or
    chapter folders); a bucket prefix is checked at its top level only."""
    if folder.local is None:
        return any(Path(n).suffix.lower() in AUDIO_SUFFIXES for n in folder.files(pattern="*"))
    level = [folder.local]
    for _ in range(depth + 1):
        below = []
        for directory in level:
            try:
                entries = list(os.scandir(directory))
            except OSError:
                continue
            for entry in entries:
                if entry.is_file() and Path(entry.name).suffix.lower() in AUDIO_SUFFIXES:
                    return True
                if entry.is_dir() and not entry.name.startswith("."):
                    below.append(entry.path)
        level = below[:MAX_FOLDERS_SCANNED]
    return False


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


def own_plan(
    folder: Folder,
    stage: str,
    described: dict[str, Any],
    overwrite: bool,
    clear: bool = True,
    fingerprint: tuple[str, str] | None = None,
    write: bool = True,
) -> None:
    """Refuse OUT if it holds ``stage`` output of another plan (each differing key named),
    unless ``overwrite``; then (``clear``) empty OUT before anything is written - stages
    whose ranks write at once pass ``clear=False`` and remove what their new index does
    not list at the end instead. Records ``described`` for the next run to compare.
    ``fingerprint`` (plan, what): also ``refuse_other_plan``, for outputs whose files
    carry the plan's fingerprint (an OUT written before ``.plan.json`` existed).
    ``write=False``: a stage that writes its output in one go records the plan when it
    succeeds (``record_plan``), so a run that failed early leaves nothing to refuse."""
    described = {key: _plain(value) for key, value in described.items()}
    previous = _read_json(folder, PLAN_NAME).get("described")
    ours = detect_stage(folder) is not None or previous is not None
    unknown = previous is None and ours and fingerprint is None
    _refuse_changes(f"OUT {folder}", stage, previous, described, overwrite, unknown)
    if fingerprint is not None:
        refuse_other_plan(folder, fingerprint[0], overwrite, fingerprint[1])
    if overwrite and clear and ours:
        clear_folder(folder)
    if write:
        record_plan(folder, stage, described)


def _refuse_changes(
    where: str,
    stage: str,
    previous: dict[str, Any] | None,
    described: dict[str, Any],
    overwrite: bool,
    unknown: bool,
) -> None:
    if overwrite:
        return
    if previous is not None and previous != described:
        raise UserError(
            f"{where} holds {stage} output made with other inputs or settings "
            f"({plan_diff(previous, described)}); re-run with the same ones to resume, use "
            "another OUT, or add --overwrite to replace it"
        )
    if unknown:
        raise UserError(
            f"{where} holds {stage} output that does not say what made it (an earlier "
            f"version's, or an interrupted run's: no {PLAN_NAME}); use another OUT, or add "
            "--overwrite to replace it"
        )


def own_files(
    prefix: Path, stage: str, described: dict[str, Any], overwrite: bool, suffixes: Sequence[str]
) -> Callable[[], None]:
    """``own_plan`` for a stage whose OUT is a file prefix (``text train OUT``: OUT.model,
    OUT.vocab) in a folder it does not own: the plan lives in ``.OUT.plan.json`` beside
    them and ``overwrite`` removes only those files. Returns the call that records the
    plan once the files are written."""
    folder = Folder.of(prefix.parent)
    record = prefix_plan_name(prefix)
    described = {key: _plain(value) for key, value in described.items()}
    previous = _read_json(folder, record).get("described") if prefix.parent.is_dir() else None
    outputs = [prefix.parent / f"{prefix.name}{suffix}" for suffix in suffixes]
    unknown = previous is None and any(path.exists() for path in outputs)
    _refuse_changes(f"OUT {prefix}", stage, previous, described, overwrite, unknown)
    if overwrite:
        for path in outputs:
            path.unlink(missing_ok=True)

    return lambda: record_plan(folder, stage, described, record)


def record_plan(
    folder: Folder, stage: str, described: dict[str, Any], name: str = PLAN_NAME
) -> None:
    """Write OUT's ``.plan.json`` (or a prefix's, ``name``): which stage wrote it, and what
    shaped the output."""
    described = {key: _plain(value) for key, value in described.items()}
    folder.write_bytes(name, json.dumps({"stage": stage, "described": described}).encode())


def prefix_plan_name(prefix: Path) -> str:
    """The plan record of a file-prefix OUT (``text/spm`` -> ``text/.spm.plan.json``)."""
    return f".{prefix.name}{PLAN_NAME}"


def read_plan(folder: Folder, name: str = PLAN_NAME) -> dict[str, Any]:
    """What a plan record says shaped the output (empty when there is none)."""
    described = _read_json(folder, name).get("described")
    return described if isinstance(described, dict) else {}


def plan_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``key: old -> new`` for each key that differs, in one line."""
    keys = [k for k in [*old, *(k for k in new if k not in old)] if old.get(k) != new.get(k)]
    return "; ".join(f"{k}: {_shown(old.get(k))} -> {_shown(new.get(k))}" for k in keys)


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _plain(value: Any) -> Any:
    """A value as JSON keeps it (tuples as lists, paths as strings), so it compares equal
    after a round trip."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def clear_folder(folder: Folder) -> None:
    """Everything in OUT (hidden files included), OUT itself kept: ``--overwrite``."""
    if folder.local is None:
        for name in folder.files():
            folder.remove(name)
        return
    for path in folder.local.iterdir():
        if writer_lock.is_lock_file(path.name):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


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
