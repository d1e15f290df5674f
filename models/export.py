"""Inference exports: ``model.safetensors`` + ``config.yaml``, and ``load_codec``.

Loading never unpickles code: exports are safetensors, original checkpoints are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from academicodec.config import dotted_keys, to_dict
from academicodec.errors import UserError
from academicodec.files import atomic_write_bytes
from academicodec.models.codec import CodecModel, build_codec
from academicodec.models.config import codec_config_from_dict

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.yaml"


def save_codec(model: CodecModel, out_dir: str | Path) -> Path:
    """Write ``out_dir/model.safetensors`` (every weight and codebook) and ``config.yaml``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{WEIGHTS_NAME}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": "pt", "preset": model.config.name})
        os.replace(tmp, out / WEIGHTS_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    text = yaml.safe_dump(to_dict(model.config), sort_keys=False, allow_unicode=True)
    atomic_write_bytes(out / CONFIG_NAME, text.encode("utf-8"))
    return out


def load_codec(path: str | Path, **overrides: Any) -> CodecModel:
    """A ready ``CodecModel`` in eval mode from an export folder (or its safetensors file),
    or from an original AcademiCodec checkpoint. ``overrides`` set config keys (``compat``,
    or nested with ``__``)."""
    path = Path(path)
    dotted = dotted_keys(overrides)
    if path.is_dir() or path.suffix == ".safetensors":
        return _load_export(path if path.is_dir() else path.parent, dotted)
    if path.is_file():
        from academicodec.models.original import import_academicodec

        return import_academicodec(path, overrides=dotted)
    raise UserError(f"model {path} does not exist")


def _load_export(folder: Path, overrides: dict[str, Any]) -> CodecModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from academicodec.config import apply_overrides
    from academicodec.models.original import load_strict

    config_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for needed in (config_path, weights):
        if not needed.is_file():
            raise UserError(f"{folder} is not a codec export: {needed.name} is missing")
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config = codec_config_from_dict(apply_overrides(data, overrides), str(config_path))
    model = build_codec(config)
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{weights} is not a readable safetensors file: {exc}") from exc
    load_strict(model, tensors, str(weights))
    return model.eval()
