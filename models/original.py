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
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from academicodec.errors import UserError
from academicodec.models.codec import CodecModel, build_codec
from academicodec.models.config import CodecConfig, load_codec_config

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
MAX_LISTED = 6


def load_original_state(path: str | Path) -> dict[str, Any]:
    """``torch.load`` without unpickling code; a one-line error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04" and magic[:1] != b"\x80":  # torch's zip format, legacy pickle
        raise UserError(f"{path} is not a PyTorch checkpoint (neither a zip nor a pickle file)")
    try:
        with warnings.catch_warnings():  # "pickle protocol N" chatter; errors come below
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        reason = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0]
        reason = reason.split(" was not an allowed global")[0]  # drop torch's allow-list advice
        raise UserError(
            f"{path} holds pickled objects other than tensors and containers; refusing to load "
            f"it (weights-only loading never runs code from a file): {reason}"
        ) from exc
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable PyTorch checkpoint: {first}") from exc


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


def load_strict(model: CodecModel, mapped: dict[str, Tensor], source: str) -> None:
    """Every key used once, every tensor filled, every shape equal - or a one-line error."""
    ours = model.state_dict()
    missing = sorted(set(ours) - set(mapped))
    unexpected = sorted(set(mapped) - set(ours))
    shapes = sorted(
        f"{k} {tuple(mapped[k].shape)} != {tuple(ours[k].shape)}"
        for k in set(ours) & set(mapped)
        if tuple(mapped[k].shape) != tuple(ours[k].shape)
    )
    problems = [
        (label, items)
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", shapes),
        )
        if items
    ]
    if problems:
        text = "; ".join(
            f"{label} ({len(items)}): {', '.join(_original_name(i) for i in items[:MAX_LISTED])}"
            + (", ..." if len(items) > MAX_LISTED else "")
            for label, items in problems
        )
        raise UserError(f"{source} does not match the architecture: {text}")
    model.load_state_dict(mapped, strict=True)


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


def _strip_ddp(key: str) -> str:
    return key[len("module.") :] if key.startswith("module.") else key


def weight_norm_name(key: str) -> str:
    """Old-style weight norm names -> ``torch.nn.utils.parametrizations`` names."""
    if key.endswith(".weight_g"):
        return key[: -len("weight_g")] + "parametrizations.weight.original0"
    if key.endswith(".weight_v"):
        return key[: -len("weight_v")] + "parametrizations.weight.original1"
    return key


def _original_name(key: str) -> str:
    return key.replace("parametrizations.weight.original0", "weight_g").replace(
        "parametrizations.weight.original1", "weight_v"
    )


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
