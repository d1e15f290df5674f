"""Import AcademiCodec's released checkpoints (HiFi-Codec and Encodec) onto our modules.

Formats (see tests/fixtures/academicodec_original/README.md): HiFi-Codec files are a dict
of three state dicts, ``generator``/``encoder``/``quantizer``; Encodec files are the flat
state dict of the DDP-wrapped model (every key starts with ``module.``). Both store
old-style weight norm (``weight_g``/``weight_v``), which is exactly our parametrisation's
``original0``/``original1``. The mapping is strict: every original key is used once and
every one of our tensors is filled, or the import fails naming the keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from academicodec.errors import UserError
from academicodec.models.codec import CodecModel, build_codec
from academicodec.models.config import CodecConfig, load_codec_config
from academicodec.models.families.common import (
    Converter,
    load_original_state,
    load_strict,
    weight_norm_name,
)

HIFI_PARTS = {"generator": "decoder", "encoder": "encoder", "quantizer": "quantizer"}
# config_*.json fields of the original -> our preset keys
HIFI_CONFIG_FIELDS = {
    "upsample_rates": "ratios",
    "upsample_kernel_sizes": "hificodec.upsample_kernel_sizes",
    "upsample_initial_channel": "hificodec.upsample_initial_channel",
    "resblock_kernel_sizes": "hificodec.resblock_kernel_sizes",
    "resblock_dilation_sizes": "hificodec.resblock_dilation_sizes",
    "n_code_groups": "hificodec.n_code_groups",
    "n_codes": "codebook_size",
    "codebook_loss_lambda": "hificodec.codebook_loss_weight",
    "commitment_loss_lambda": "hificodec.commitment_loss_weight",
    "sampling_rate": "sample_rate",
}
HIFI_PRESETS = {
    (16000, (8, 5, 4, 2)): "academicodec_hificodec_16k_320d",
    (24000, (8, 5, 4, 2)): "academicodec_hificodec_24k_320d",
    (24000, (8, 5, 3, 2)): "academicodec_hificodec_24k_240d",
}


def detect_family(state: dict[str, Any]) -> str:
    if set(HIFI_PARTS) <= set(state):
        return "hificodec"
    if any(str(k).startswith(("module.encoder.", "encoder.model.")) for k in state):
        return "encodec"
    raise UserError(
        "not an AcademiCodec checkpoint: expected generator/encoder/quantizer (HiFi-Codec) "
        "or module.encoder.* keys (Encodec)"
    )


def import_academicodec(
    checkpoint: str | Path,
    family: str | None = None,
    config_json: str | Path | None = None,
    preset: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> CodecModel:
    """Build our model for an original checkpoint and load its weights, strictly."""
    state = load_original_state(checkpoint)
    if not isinstance(state, dict):
        raise UserError(f"{checkpoint} does not hold a state dict")
    return _import_state(Path(checkpoint), state, family, config_json, preset, overrides)


def _import_state(
    checkpoint: Path,
    state: dict[str, Any],
    family: str | None,
    config_json: str | Path | None,
    preset: str | Path | None,
    overrides: dict[str, Any] | None,
) -> CodecModel:
    found = detect_family(state)
    if family is not None and family != found:
        raise UserError(f"--family {family}: {checkpoint} is a {found} checkpoint")
    if found == "hificodec":
        config = _hifi_config(state, config_json, preset, overrides or {})
        mapped = _hifi_keys(state)
    else:
        config = _encodec_config(state, preset, overrides or {})
        mapped = _encodec_keys(state)
    model = build_codec(config)
    load_strict(model, mapped, str(checkpoint))
    return model.eval()


def released_keys_map(family: str, keys: dict[str, Any], preset: str) -> list[str]:
    """Problems mapping a released key list (name -> shape) onto ``preset``; [] if none."""
    shapes = {
        k: torch.empty(v) for k, v in (keys.items() if family == "encodec" else _flatten(keys))
    }
    mapped = _encodec_keys(shapes) if family == "encodec" else _hifi_keys(_nest(shapes))
    model = build_codec(preset)
    try:
        load_strict(model, mapped, preset)
    except UserError as exc:
        return [str(exc)]
    return []


def _claims_file(state: dict[str, Any], safetensors: bool) -> bool:
    keys = [str(k) for k in state]
    return not safetensors and (
        set(HIFI_PARTS) <= set(state) or any(k.startswith("module.") for k in keys)
    )


def _import_file(
    path: Path, state: dict[str, Any], config_json: str | Path | None,
    preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    source = {"source": f"academicodec {path.name}"}
    return _import_state(path, state, None, config_json, preset, {**source, **overrides})


CONVERTER = Converter(
    files="AcademiCodec (generator/encoder/quantizer or module.*)",
    claims_file=_claims_file,
    import_file=_import_file,
)


def _strip_ddp(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def _hifi_keys(state: dict[str, Any]) -> dict[str, Tensor]:
    mapped = {}
    for part, ours in HIFI_PARTS.items():
        for key, value in state[part].items():
            mapped[weight_norm_name(f"{ours}.{key}")] = value
    return mapped


def _encodec_keys(state: dict[str, Any]) -> dict[str, Tensor]:
    return {
        weight_norm_name(k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in state.items()
    }


def _hifi_config(
    state: dict[str, Any],
    config_json: str | Path | None,
    preset: str | Path | None,
    overrides: dict[str, Any],
) -> CodecConfig:
    values: dict[str, Any] = {}
    if config_json is not None:
        try:
            original = json.loads(Path(config_json).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"--config {config_json}: {exc}") from exc
        values = {
            ours: original[name] for name, ours in HIFI_CONFIG_FIELDS.items() if name in original
        }
    if preset is None:
        key = (int(values.get("sample_rate", 16000)), tuple(values.get("ratios", (8, 5, 4, 2))))
        preset = HIFI_PRESETS.get(key, "academicodec_hificodec_16k_320d")
    encoder, quantizer = state["encoder"], state["quantizer"]
    groups = sum(
        1 for k in quantizer if k.startswith("quantizer_modules.") and k.endswith(".weight")
    )
    stages = len({k.split(".")[0] for k in quantizer})
    values.update(
        {
            # Widths the original hard-codes, read from the tensors themselves.
            "hificodec.encoder_base_channels": encoder["conv_pre.weight_v"].shape[0],
            "latent_dim": encoder["conv_post.weight"].shape[0],
            "hificodec.upsample_initial_channel": state["generator"]["conv_pre.weight_v"].shape[0],
            "hificodec.n_code_groups": groups,
            "hificodec.residual_layers": stages,
            "codebook_size": quantizer["quantizer_modules.0.embedding.weight"].shape[0],
        }
    )
    return load_codec_config(preset, {**values, **overrides})


def _encodec_config(
    state: dict[str, Any], preset: str | Path | None, overrides: dict[str, Any]
) -> CodecConfig:
    strip = {_strip_ddp(k): v for k, v in state.items()}
    layers = sorted({int(k.split(".")[3]) for k in strip if k.startswith("quantizer.vq.layers.")})
    embed = strip["quantizer.vq.layers.0._codebook.embed"]
    base = load_codec_config(preset or "academicodec_encodec_16k_320d", overrides)
    assert base.encodec is not None
    per_codebook = base.frame_rate * (embed.shape[0].bit_length() - 1) / 1000
    top = len(layers) * per_codebook
    bandwidths = [b for b in base.encodec.bandwidths if b <= top + 1e-9] or [top]
    if max(bandwidths) < top - 1e-9:
        bandwidths.append(top)
    values = {
        "encodec.n_filters": strip["encoder.model.0.conv.conv.weight_v"].shape[0],
        "latent_dim": embed.shape[1],
        "codebook_size": embed.shape[0],
        "encodec.bandwidths": bandwidths,
    }
    return load_codec_config(preset or "academicodec_encodec_16k_320d", {**values, **overrides})


def _flatten(nested: dict[str, dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(f"{part}/{k}", v) for part, sub in nested.items() for k, v in sub.items()]


def _nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        part, name = key.split("/", 1)
        nested.setdefault(part, {})[name] = value
    return nested
