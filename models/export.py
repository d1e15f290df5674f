"""Inference exports: ``model.safetensors`` + ``config.yaml``, and ``load_codec``.

Loading never unpickles code: exports are safetensors, original checkpoints are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from academicodec.config import dotted_keys, to_dict
from academicodec.errors import UserError
from academicodec.files import atomic_path, atomic_write_bytes
from academicodec.models.codec import CodecModel, build_codec
from academicodec.models.config import codec_config_from_dict

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.yaml"
SUMMARY_KEY = "summary"


def save_codec(model: CodecModel, out_dir: str | Path) -> Path:
    """Write ``out_dir/model.safetensors`` (every weight and codebook) and ``config.yaml``."""
    from safetensors.torch import save_file

    from academicodec.outputs import claim_output

    out = claim_output(out_dir, "export")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "preset": model.config.name})
    data = {**to_dict(model.config), SUMMARY_KEY: model_summary(model)}
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    atomic_write_bytes(out / CONFIG_NAME, text.encode("utf-8"))
    return out


def model_summary(model: CodecModel) -> dict[str, Any]:
    """What a reader of ``config.yaml`` wants without building the model; written beside
    the settings and checked against them on load (an edited file fails loudly)."""
    return {
        "channels": 1,
        "sample_rate": model.sample_rate,
        "hop_length": model.hop_length,
        "frame_rate": round(model.frame_rate, 6),
        "num_codebooks": model.num_codebooks,
        "codebook_size": model.codebook_size,
        "bitrates_kbps": {n: round(model.bitrate_kbps(n), 4) for n in model.supported_n_q()},
    }


def load_codec(path: str | Path, **overrides: Any) -> CodecModel:
    """A ready ``CodecModel`` in eval mode from an export folder (or its safetensors file),
    or straight from a released checkpoint or Hugging Face folder (``models/pretrained.py``).
    ``overrides`` set config keys (``compat``, or nested with ``__``)."""
    path = Path(path)
    dotted = dotted_keys(overrides)
    if (path.is_dir() and (path / CONFIG_NAME).is_file()) or (
        path.is_file() and path.suffix == ".safetensors"
    ):
        return _load_export(path if path.is_dir() else path.parent, dotted)
    if path.is_dir() and not (path / "config.json").is_file():
        raise UserError(f"{path} is not a codec export: {CONFIG_NAME} is missing")
    if path.exists():
        from academicodec.models.pretrained import import_codec

        return import_codec(path, overrides=dotted)
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
    if not isinstance(data, dict):
        raise UserError(f"{config_path} does not hold a codec config")
    summary = data.pop(SUMMARY_KEY, None)
    config = codec_config_from_dict(apply_overrides(data, overrides), str(config_path))
    model = build_codec(config)
    if summary is not None and summary != model_summary(model) and not overrides:
        raise UserError(
            f"{config_path}: its {SUMMARY_KEY} block does not match its settings (edited?): "
            f"{summary} != {model_summary(model)}"
        )
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{weights} is not a readable safetensors file: {exc}") from exc
    load_strict(model, tensors, str(weights))
    return model.eval()
