"""SNAC's releases (the snac package's Hugging Face folders: ``config.json`` without a
``model_type`` + ``pytorch_model.bin``) onto ``network.py``: its names are ours, weight norm
renamed only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from academicodec.errors import UserError
from academicodec.models.codec import CodecModel
from academicodec.models.config import CodecConfig, load_codec_config
from academicodec.models.families.common import SETTINGS, Converter, finish, weight_norm_name


def _snac_config(
    path: Path, hf: dict[str, Any], preset: str | Path | None, overrides: dict[str, Any]
) -> CodecConfig:
    defaults = {  # snac.SNAC()'s defaults, for keys a config leaves out
        "sampling_rate": 44100, "encoder_dim": 64, "encoder_rates": [3, 3, 7, 7],
        "latent_dim": None, "decoder_dim": 1536, "decoder_rates": [7, 7, 3, 3],
        "attn_window_size": 32, "codebook_size": 4096, "codebook_dim": 8,
        "vq_strides": [8, 4, 2, 1], "noise": True, "depthwise": True,
    }  # fmt: skip
    unknown = sorted(set(hf) - set(defaults))
    if unknown:
        raise UserError(f"{path}: SNAC settings {unknown} are not supported")
    args = {**defaults, **hf}
    rates = list(args["encoder_rates"])
    latent = args["latent_dim"] or args["encoder_dim"] * 2 ** len(rates)
    if latent != args["encoder_dim"] * 2 ** len(rates):
        raise UserError(
            f"{path}: latent_dim {latent} other than the encoder's width is not supported"
        )
    values = {
        "sample_rate": int(args["sampling_rate"]),
        "ratios": rates,
        "latent_dim": latent,
        "codebook_size": args["codebook_size"],
        "snac.encoder_dim": args["encoder_dim"],
        "snac.decoder_dim": args["decoder_dim"],
        "snac.decoder_rates": list(args["decoder_rates"]),
        "snac.attn_window_size": args["attn_window_size"] or 0,
        "snac.codebook_dim": args["codebook_dim"],
        "snac.vq_strides": list(args["vq_strides"]),
        "snac.noise": bool(args["noise"]),
        "snac.depthwise": bool(args["depthwise"]),
    }
    return load_codec_config(preset or "snac_24khz", {**values, **overrides}, SETTINGS)


def _claims_folder(hf: dict[str, Any]) -> bool:
    return hf.get("model_type") is None and "vq_strides" in hf


def _import_folder(
    folder: Path, config_path: Path, weights_path: Path, hf: dict[str, Any],
    weights: dict[str, Tensor], preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    config = _snac_config(config_path, hf, preset, {"source": f"snac {folder.name}", **overrides})
    return finish(config, {weight_norm_name(k): v for k, v in weights.items()}, weights_path)


CONVERTER = Converter(claims_folder=_claims_folder, import_folder=_import_folder)
