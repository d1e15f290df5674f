"""Import released codecs onto our length-aware modules: one entry, ``import_codec``.

This module only finds whose a checkpoint is: each family's conversion lives in its own
folder (``models/families/``, docs/models.md has the table) and says which files and
Hugging Face folders it claims. A file is a torch checkpoint (read weights-only) or a
safetensors file; a folder is a transformers one (``config.json`` + ``model.safetensors``
or ``pytorch_model.bin``), or a repo id of one in the local Hugging Face cache
(``models.hub``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from academicodec.errors import UserError
from academicodec.models.codec import CodecModel
from academicodec.models.config import FAMILIES
from academicodec.models.families import converters
from academicodec.models.families.common import hf_weights, load_original_state, load_safetensors
from academicodec.models.hub import resolve_source

HF_CONFIG, HF_WEIGHTS, HF_BIN = "config.json", "model.safetensors", "pytorch_model.bin"
# What an import can build (SoundStream is trained here only).
SOURCE_FAMILIES = tuple(f for f in FAMILIES if f != "soundstream")


def import_codec(
    source: str | Path,
    family: str | None = None,
    config_json: str | Path | None = None,
    preset: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> CodecModel:
    """Our model, in eval mode, for a released checkpoint file, a Hugging Face folder, or
    the repo id of one in the local Hugging Face cache (``models.hub``)."""
    path = resolve_source(source)
    if family is not None and family not in SOURCE_FAMILIES:
        raise UserError(f"--family must be one of {list(SOURCE_FAMILIES)}, not {family!r}")
    overrides = overrides or {}
    if path.is_dir():
        model, kind = _import_hf_folder(path, preset, overrides), "folder"
    elif path.is_file():
        model, kind = _import_file(path, config_json, preset, overrides), "file"
    else:
        raise UserError(f"{path} does not exist")
    if family is not None and model.config.family != family:
        raise UserError(f"--family {family}: {path} is a {model.config.family} {kind}")
    return model


def _import_file(
    path: Path, config_json: str | Path | None, preset: str | Path | None,
    overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    safetensors = path.suffix in (".safetensors", ".sft")
    state = load_safetensors(path) if safetensors else load_original_state(path)
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a state dict")
    claimed = [c for c in converters() if c.claims_file]
    for converter in claimed:
        if converter.claims_file(state, safetensors):
            return converter.import_file(path, state, config_json, preset, overrides)
    if safetensors:
        raise UserError(
            f"{path} is not a codec checkpoint we know: a safetensors file of a codec is "
            + _either([c.files for c in claimed if c.safetensors])
            + "; for a Hugging Face model give its folder"
        )
    raise UserError(
        f"{path} is not a codec checkpoint we know: expected "
        + _either([c.files for c in claimed if not c.safetensors])
    )


def _import_hf_folder(
    folder: Path, preset: str | Path | None, overrides: dict[str, Any]
) -> CodecModel:
    from academicodec.models.export import CONFIG_NAME

    if (folder / CONFIG_NAME).is_file():
        raise UserError(f"{folder} is already an academicodec export; use it as --model directly")
    config_path = folder / HF_CONFIG
    weights_path = next((folder / n for n in (HF_WEIGHTS, HF_BIN) if (folder / n).is_file()), None)
    if not config_path.is_file() or weights_path is None:
        missing = HF_CONFIG if not config_path.is_file() else f"{HF_WEIGHTS} (or {HF_BIN})"
        raise UserError(f"{folder} is not a Hugging Face model folder: {missing} is missing")
    try:
        hf = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{config_path} is not readable JSON: {exc}") from exc
    kind = hf.get("model_type")
    available = converters()
    known = [t for c in available for t in c.hf_model_types]
    owner = next(
        (
            c
            for c in available
            if kind in c.hf_model_types or (c.claims_folder is not None and c.claims_folder(hf))
        ),
        None,
    )
    if owner is None or owner.import_folder is None:  # refused before reading its weights
        raise UserError(
            f"{config_path}: model_type {kind!r} is not supported "
            f"({', '.join(known[:-1])} and {known[-1]} are)"
        )
    weights = hf_weights(weights_path)
    return owner.import_folder(folder, config_path, weights_path, hf, weights, preset, overrides)


def _either(described: list[str]) -> str:
    """``A``, ``A or B``, ``A, B, or C``."""
    if len(described) < 3:
        return " or ".join(described)
    return ", ".join(described[:-1]) + ", or " + described[-1]
