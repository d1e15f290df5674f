"""Model sources named the way users name them, resolved offline.

- A Hugging Face repo id (``facebook/encodec_24khz``) is looked up in the local Hugging
  Face cache - ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub`` -
  as ``huggingface-cli download`` leaves it (``models--org--name/snapshots/<revision>``,
  the one ``refs/main`` names). Nothing is downloaded: a repo id not in the cache is one
  line saying the command that fetches it.
- Our own training outputs are not models yet: a run folder or a ``.pt`` checkpoint is one
  line saying ``academicodec export RUN OUT`` first.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from academicodec.errors import UserError

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
TRAINING_KEYS = {"generator", "discriminator", "optimizer_g", "step"}


def hf_cache() -> Path:
    """Where ``huggingface_hub`` keeps downloaded repos on this machine."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def resolve_source(source: str | Path) -> Path:
    """``source`` as a local path: itself when it exists, else the cached snapshot of the
    Hugging Face repo it names. One line when it is neither."""
    path = Path(source).expanduser()
    if path.exists():
        refuse_training_output(path)
        return path
    text = str(source)
    if not REPO_ID.match(text):
        raise UserError(f"{path} does not exist")
    snapshot = cached_snapshot(text)
    if snapshot is None:
        raise UserError(
            f"{text} is neither a file nor a folder here, nor a Hugging Face repo in the local "
            f"cache ({hf_cache()}): fetch it with `huggingface-cli download {text}` (on a "
            "machine with internet; copy the cache, or pass the downloaded folder), then "
            "re-run"
        )
    return snapshot


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id`` (``refs/main``'s, else the newest)."""
    repo = hf_cache() / f"models--{repo_id.replace('/', '--')}"
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    main = repo / "refs" / "main"
    if main.is_file():
        named = snapshots / main.read_text(encoding="utf-8").strip()
        if named.is_dir():
            return named
    found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def refuse_training_output(path: Path) -> None:
    """A run folder or one of its checkpoints, given where a model is expected."""
    run = None
    if path.is_dir() and (path / "checkpoints").is_dir():
        run = path
    elif path.is_file() and path.suffix == ".pt" and _is_training_checkpoint(path):
        run = path.parent.parent if path.parent.name == "checkpoints" else path
    if run is not None:
        raise UserError(
            f"{path} is a training run's {'folder' if path.is_dir() else 'checkpoint'}, not a "
            f"model: run `academicodec export {run} OUT` first, then pass OUT"
        )


def _is_training_checkpoint(path: Path) -> bool:
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return False
    return isinstance(data, dict) and set(data) >= TRAINING_KEYS


# Licences of released weights that do not allow every use, by family, for sources that
# carry no model card (a bare folder): said at import all the same.
RESTRICTED_FAMILIES = {
    "xcodec2": "cc-by-nc-4.0 (HKUSTAudio's X-Codec2 release: non-commercial use only)",
}


def card_licence(folder: Path) -> str | None:
    """The ``license:`` of a model card's front matter (``README.md`` beside the weights,
    as the Hub keeps it), or None without one."""
    card = folder / "README.md"
    if not folder.is_dir() or not card.is_file():
        return None
    lines = card.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            return None
        key, _, value = line.partition(":")
        if key.strip() == "license" and value.strip():
            return value.strip().strip("'\"")
    return None
