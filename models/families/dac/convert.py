"""Descript Audio Codec's releases onto ``network.py``.

- ``weights*.pth`` (the ``dac`` package): ``{"state_dict", "metadata": {"kwargs"}}``, the
  names ``network.py`` uses (weight norm renamed only).
- transformers' folders (``model_type: dac``): their names mapped here, their
  ``config.json`` read without transformers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import Tensor

from academicodec.errors import UserError
from academicodec.models.codec import CodecModel
from academicodec.models.config import CodecConfig, load_codec_config
from academicodec.models.families.common import SETTINGS, Converter, finish, weight_norm_name


def _import_dac_file(
    path: Path, state: dict[str, Any], preset: str | Path | None, overrides: dict[str, Any]
) -> CodecModel:
    metadata = state["metadata"]
    kwargs = metadata.get("kwargs") if isinstance(metadata, dict) else None
    if not isinstance(kwargs, dict) or not isinstance(state["state_dict"], dict):
        raise UserError(f"{path} is not a DAC weights file: no metadata.kwargs / state_dict")
    defaults = {  # descript-audio-codec's DAC() defaults, for keys a file leaves out
        "encoder_dim": 64, "encoder_rates": [2, 4, 8, 8], "latent_dim": None,
        "decoder_dim": 1536, "decoder_rates": [8, 8, 4, 2], "n_codebooks": 9,
        "codebook_size": 1024, "codebook_dim": 8, "sample_rate": 44100,
    }  # fmt: skip
    args = {**defaults, **kwargs}
    config = _dac_config(
        path,
        sample_rate=args["sample_rate"],
        encoder_dim=args["encoder_dim"],
        encoder_rates=args["encoder_rates"],
        latent_dim=args["latent_dim"],
        decoder_dim=args["decoder_dim"],
        decoder_rates=args["decoder_rates"],
        n_codebooks=args["n_codebooks"],
        codebook_size=args["codebook_size"],
        codebook_dim=args["codebook_dim"],
        preset=preset,
        overrides={"source": f"dac {path.name}", **overrides},
    )
    weights = {weight_norm_name(k): v for k, v in state["state_dict"].items()}
    return finish(config, weights, path)


def _dac_config(
    path: Path, *, sample_rate: int, encoder_dim: int, encoder_rates: list[int],
    latent_dim: int | None, decoder_dim: int, decoder_rates: list[int], n_codebooks: int,
    codebook_size: int, codebook_dim: int | list[int], preset: str | Path | None,
    overrides: dict[str, Any],
) -> CodecConfig:  # fmt: skip
    if isinstance(codebook_dim, list):
        if len(set(codebook_dim)) != 1:
            raise UserError(
                f"{path}: codebooks of different widths {codebook_dim} are not supported"
            )
        codebook_dim = codebook_dim[0]
    values = {
        "sample_rate": int(sample_rate),
        "ratios": list(encoder_rates),
        "latent_dim": latent_dim or encoder_dim * 2 ** len(encoder_rates),
        "codebook_size": codebook_size,
        "dac.encoder_dim": encoder_dim,
        "dac.decoder_dim": decoder_dim,
        "dac.decoder_rates": list(decoder_rates),
        "dac.n_codebooks": n_codebooks,
        "dac.codebook_dim": codebook_dim,
    }
    named = {16000: "dac_16khz", 24000: "dac_24khz", 44100: "dac_44khz"}
    return load_codec_config(
        preset or named.get(int(sample_rate), "dac_44khz"), {**values, **overrides}, SETTINGS
    )


def _hf_dac_keys(
    weights: dict[str, Tensor], encoder_blocks: int, decoder_blocks: int
) -> dict[str, Tensor]:
    """transformers' DAC names -> the official package's (ours)."""
    blocks = {"encoder": encoder_blocks, "decoder": decoder_blocks}
    mapped = {}
    for key, value in weights.items():
        name = weight_norm_name(key)
        ends = re.match(r"^(encoder|decoder)\.(conv1|snake1|conv2)\.(.+)$", name)
        block = re.match(r"^(encoder|decoder)\.block\.(\d+)\.(.+)$", name)
        if ends:
            side, layer, rest = ends.groups()
            index = {"conv1": 0, "snake1": blocks[side] + 1, "conv2": blocks[side] + 2}[layer]
            name = f"{side}.{_DAC_TOP[side]}.{index}.{rest}"
        elif block:
            side, index, rest = block.groups()
            name = f"{side}.{_DAC_TOP[side]}.{int(index) + 1}.{_hf_dac_block_part(side, rest)}"
        mapped[name] = value
    return mapped


_DAC_TOP = {"encoder": "block", "decoder": "model"}


# Inside an encoder block: residual units 1-3 at 0-2, then Snake (3) and the strided conv (4);
# inside a decoder block: Snake (0), the transposed conv (1), then residual units at 2-4.
_DAC_BLOCK_PARTS = {
    "encoder": {"snake1": 3, "conv1": 4},
    "decoder": {"snake1": 0, "conv_t1": 1},
}


_DAC_UNIT_FIRST = {"encoder": 0, "decoder": 2}


_DAC_UNIT_PARTS = {"snake1": 0, "conv1": 1, "snake2": 2, "conv2": 3}


def _hf_dac_block_part(side: str, rest: str) -> str:
    unit = re.match(r"^res_unit(\d)\.(snake1|conv1|snake2|conv2)\.(.+)$", rest)
    if unit:
        number, layer, tail = unit.groups()
        index = _DAC_UNIT_FIRST[side] + int(number) - 1
        return f"block.{index}.block.{_DAC_UNIT_PARTS[layer]}.{tail}"
    part = re.match(r"^(snake1|conv1|conv_t1)\.(.+)$", rest)
    if part and part.group(1) in _DAC_BLOCK_PARTS[side]:
        return f"block.{_DAC_BLOCK_PARTS[side][part.group(1)]}.{part.group(2)}"
    return rest  # unknown: left as is, so the strict load names it


def _claims_file(state: dict[str, Any], safetensors: bool) -> bool:
    return not safetensors and "state_dict" in state and "metadata" in state


def _import_file(
    path: Path, state: dict[str, Any], config_json: str | Path | None,
    preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    return _import_dac_file(path, state, preset, overrides)


def _import_folder(
    folder: Path, config_path: Path, weights_path: Path, hf: dict[str, Any],
    weights: dict[str, Tensor], preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    config = _dac_config(
        config_path,
        sample_rate=hf.get("sampling_rate", 16000),
        encoder_dim=hf.get("encoder_hidden_size", 64),
        encoder_rates=hf.get("downsampling_ratios", [2, 4, 8, 8]),
        latent_dim=hf.get("hidden_size"),
        decoder_dim=hf.get("decoder_hidden_size", 1536),
        decoder_rates=hf.get("upsampling_ratios", [8, 8, 4, 2]),
        n_codebooks=hf.get("n_codebooks", 9),
        codebook_size=hf.get("codebook_size", 1024),
        codebook_dim=hf.get("codebook_dim", 8),
        preset=preset,
        overrides={"source": f"hf-dac {folder.name}", **overrides},
    )
    arch = config.dac
    assert arch is not None
    return finish(
        config, _hf_dac_keys(weights, len(config.ratios), len(arch.decoder_rates)), weights_path
    )


CONVERTER = Converter(
    files="DAC (state_dict + metadata)",
    claims_file=_claims_file,
    import_file=_import_file,
    hf_model_types=("dac",),
    import_folder=_import_folder,
)
