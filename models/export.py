"""Inference exports: ``model.safetensors`` + ``config.yaml``, and ``load_codec``.

Loading never unpickles code: exports are safetensors, original checkpoints are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from academicodec.config import dotted_keys, to_dict
from academicodec.errors import UserError
from academicodec.files import atomic_write_bytes
from academicodec.identity import SHORT
from academicodec.models.codec import CodecModel, build_codec
from academicodec.models.config import codec_config_from_dict
from academicodec.outputs import PLAN_NAME, claim_output, own_plan, record_plan
from academicodec.storage import Folder
from academicodec.writer_lock import stage_scope

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.yaml"
SUMMARY_KEY = "summary"
ORIGIN_KEY = "origin"  # where the weights came from (run, step, training data; or a source)


@stage_scope
def save_codec(
    model: CodecModel,
    out_dir: str | Path,
    origin: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``out_dir/model.safetensors`` (every weight and codebook) and ``config.yaml``.

    ``origin`` (where the weights came from: a run and step, an imported source) goes into
    ``config.yaml``. An OUT holding an export of other weights is refused, naming both
    sha256s, unless ``overwrite``; the same weights again rewrite the same files."""
    from safetensors.torch import save

    out = claim_output(out_dir, "export")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # One metadata key: safetensors orders several in a hash map, differently from run to
    # run, and the same weights must give the same bytes (the same sha256 everywhere).
    weights = save(tensors, metadata={"format": "pt"})
    described = {"weights": f"sha256 {hashlib.sha256(weights).hexdigest()[:SHORT]}"}
    folder = Folder.of(out)
    if (out / WEIGHTS_NAME).is_file() and not folder.is_file(PLAN_NAME):  # an older export
        record_plan(folder, "export", {"weights": _weights_identity(out / WEIGHTS_NAME)})
    own_plan(folder, "export", described, overwrite, write=False)
    atomic_write_bytes(out / WEIGHTS_NAME, weights)
    data = {**to_dict(model.config), SUMMARY_KEY: model_summary(model)}
    if origin:
        data[ORIGIN_KEY] = origin
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    atomic_write_bytes(out / CONFIG_NAME, text.encode("utf-8"))
    record_plan(folder, "export", described)
    return out


def _weights_identity(path: Path) -> str:
    """An existing export's weights as ``save_codec`` names them: the sha256 of their
    canonical bytes (older exports carried metadata whose order varied from run to run)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save

    try:
        canonical = save(load_file(str(path)), metadata={"format": "pt"})
    except (SafetensorError, OSError):
        return "an unreadable model.safetensors"
    return f"sha256 {hashlib.sha256(canonical).hexdigest()[:SHORT]}"


def export_origin(path: str | Path) -> dict[str, Any]:
    """The ``origin`` block of an export's ``config.yaml`` (empty when it has none)."""
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    config = folder / CONFIG_NAME
    if not config.is_file():
        return {}
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    origin = data.get(ORIGIN_KEY) if isinstance(data, dict) else None
    return origin if isinstance(origin, dict) else {}


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
        **({"code_layout": layout} if (layout := model.code_layout()) else {}),
    }


def load_codec(path: str | Path, **overrides: Any) -> CodecModel:
    """A ready ``CodecModel`` in eval mode from an export folder (or its safetensors file),
    or straight from a released checkpoint or Hugging Face folder (``models/pretrained.py``).
    ``overrides`` set config keys (``compat``, or nested with ``__``)."""
    from academicodec.models.hub import resolve_source

    path = resolve_source(path)
    dotted = dotted_keys(overrides)
    if (path.is_dir() and (path / CONFIG_NAME).is_file()) or (
        path.is_file() and path.suffix == ".safetensors" and (path.parent / CONFIG_NAME).is_file()
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
    from academicodec.models.families.common import load_strict

    config_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for needed in (config_path, weights):
        if not needed.is_file():
            raise UserError(f"{folder} is not a codec export: {needed.name} is missing")
    data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UserError(f"{config_path} does not hold a codec config")
    summary = data.pop(SUMMARY_KEY, None)
    data.pop(ORIGIN_KEY, None)
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
