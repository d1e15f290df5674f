"""Meta's EnCodec 24 kHz onto our SEANet family (``models/seanet.py``, ``encodec:``).

- ``encodec_24khz-d7cc33bc.th``: a plain state dict with the ``encodec`` package's names,
  which are our SEANet's; it holds no config: widths, ratios and codebooks are read from
  the tensors.
- transformers' folders (``model_type: encodec``): their names mapped here, their
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
from academicodec.models.families.common import (
    SETTINGS,
    Converter,
    finish,
    our_names,
    refuse_unsupported,
    weight_norm_name,
)

META_ENCODEC_BANDWIDTHS_Q = (2, 4, 8, 16, 32)  # codebooks at 1.5/3/6/12/24 kbps (24 kHz)


def _import_meta_encodec(
    path: Path, state: dict[str, Tensor], preset: str | Path | None, overrides: dict[str, Any]
) -> CodecModel:
    if any(".norm." in k for k in state):
        raise UserError(
            f"{path} is an EnCodec 48 kHz model (stereo, time-group-norm, 1 s chunks); only "
            "EnCodec 24 kHz is supported so far"
        )
    weights = {weight_norm_name(k): v for k, v in state.items()}
    config = _meta_encodec_config(path, weights, preset, overrides)
    return finish(config, weights, path)


def _meta_encodec_config(
    path: Path, weights: dict[str, Tensor], preset: str | Path | None,
    overrides: dict[str, Any],
) -> CodecConfig:  # fmt: skip
    """Widths, ratios and codebooks read from the tensors (the file holds no config)."""
    try:
        first = weights["encoder.model.0.conv.conv.parametrizations.weight.original1"]
        embed = weights["quantizer.vq.layers.0._codebook.embed"]
    except KeyError as exc:
        raise UserError(f"{path} is not a Meta EnCodec state dict: no {exc.args[0]}") from exc
    stages = sorted(
        int(m.group(1))
        for k in weights
        if (
            m := re.match(
                r"encoder\.model\.(\d+)\.conv\.conv\.parametrizations\.weight\.original1$", k
            )
        )
    )
    # Downsampling convs have kernel 2 x ratio; the first and last conv are not downsampling.
    kernels = [weights[_conv_key(i)].shape[-1] for i in stages[1:-1]]
    ratios = [k // 2 for k in reversed(kernels)]
    layers = len({k.split(".")[3] for k in weights if k.startswith("quantizer.vq.layers.")})
    lstm = len([k for k in weights if k.startswith("encoder.") and ".lstm.weight_ih_l" in k])
    resblocks = {
        k.split(".")[2] for k in weights if re.match(r"encoder\.model\.\d+\.shortcut\.", k)
    }
    values: dict[str, Any] = {
        "ratios": ratios,
        "latent_dim": embed.shape[1],
        "codebook_size": embed.shape[0],
        "encodec.n_filters": first.shape[0],
        "encodec.n_residual_layers": max(1, len(resblocks) // max(1, len(ratios))),
        "encodec.lstm_layers": lstm,
        "encodec.kernel_size": first.shape[-1],
        "encodec.last_kernel_size": weights[_conv_key(stages[-1])].shape[-1],
        "source": f"meta-encodec {path.name}",
    }
    config = load_codec_config(preset or "meta_encodec_24khz", {**values, **overrides}, SETTINGS)
    per_q = config.frame_rate * config.bits_per_code / 1000
    bandwidths = [n * per_q for n in META_ENCODEC_BANDWIDTHS_Q if n <= layers]
    if not bandwidths or bandwidths[-1] < layers * per_q - 1e-9:
        bandwidths.append(layers * per_q)
    values["encodec.bandwidths"] = [round(b, 6) for b in bandwidths]
    return load_codec_config(preset or "meta_encodec_24khz", {**values, **overrides}, SETTINGS)


def _conv_key(index: int) -> str:
    return f"encoder.model.{index}.conv.conv.parametrizations.weight.original1"


def _hf_encodec_config(
    path: Path, hf: dict[str, Any], preset: str | Path | None, overrides: dict[str, Any]
) -> CodecConfig:
    unsupported = {
        "audio_channels": (hf.get("audio_channels", 1), 1),
        "norm_type": (hf.get("norm_type", "weight_norm"), "weight_norm"),
        "normalize": (hf.get("normalize", False), False),
        "chunk_length_s": (hf.get("chunk_length_s"), None),
        "use_conv_shortcut": (hf.get("use_conv_shortcut", True), True),
        "trim_right_ratio": (hf.get("trim_right_ratio", 1.0), 1.0),
    }
    refuse_unsupported(path, unsupported, "only EnCodec 24 kHz-style mono models,")
    hidden = hf.get("hidden_size", 128)
    if hf.get("codebook_dim", hidden) != hidden:
        raise UserError(f"{path}: codebook_dim must equal hidden_size ({hidden})")
    values = {
        "sample_rate": hf.get("sampling_rate", 24000),
        "ratios": hf.get("upsampling_ratios", [8, 5, 4, 2]),
        "latent_dim": hidden,
        "codebook_size": hf.get("codebook_size", 1024),
        "encodec.n_filters": hf.get("num_filters", 32),
        "encodec.n_residual_layers": hf.get("num_residual_layers", 1),
        "encodec.kernel_size": hf.get("kernel_size", 7),
        "encodec.last_kernel_size": hf.get("last_kernel_size", 7),
        "encodec.residual_kernel_size": hf.get("residual_kernel_size", 3),
        "encodec.dilation_base": hf.get("dilation_growth_rate", 2),
        "encodec.compress": hf.get("compress", 2),
        "encodec.lstm_layers": hf.get("num_lstm_layers", 2),
        "encodec.causal": hf.get("use_causal_conv", True),
        "encodec.pad_mode": hf.get("pad_mode", "reflect"),
        "encodec.bandwidths": hf.get("target_bandwidths", [1.5, 3.0, 6.0, 12.0, 24.0]),
    }
    return load_codec_config(preset or "meta_encodec_24khz", {**values, **overrides}, SETTINGS)


def _hf_encodec_keys(weights: dict[str, Tensor], ours: set[str]) -> dict[str, Tensor]:
    """``{encoder,decoder}.layers.N...`` -> ``.model.N...``; convs gain encodec's inner
    ``conv`` (``convtr.convtr`` for transposed ones); ``quantizer.layers.K.codebook`` ->
    ``quantizer.vq.layers.K._codebook``."""
    mapped = {}
    for key, value in weights.items():
        name = weight_norm_name(key)
        name = re.sub(
            r"^quantizer\.layers\.(\d+)\.codebook\.", r"quantizer.vq.layers.\1._codebook.", name
        )
        name = re.sub(r"^(encoder|decoder)\.layers\.", r"\1.model.", name)
        convolution = re.sub(r"\.conv\.(bias|parametrizations\.)", r".conv.conv.\1", name)
        transposed = re.sub(r"\.conv\.(bias|parametrizations\.)", r".convtr.convtr.\1", name)
        mapped[transposed if transposed in ours else convolution] = value
    return mapped


def _claims_file(state: dict[str, Any], safetensors: bool) -> bool:
    return not safetensors and any(str(k).startswith("encoder.model.") for k in state)


def _import_file(
    path: Path, state: dict[str, Tensor], config_json: str | Path | None,
    preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    return _import_meta_encodec(path, state, preset, overrides)


def _import_folder(
    folder: Path, config_path: Path, weights_path: Path, hf: dict[str, Any],
    weights: dict[str, Tensor], preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    source = {"source": f"hf-encodec {folder.name}"}
    config = _hf_encodec_config(config_path, hf, preset, {**source, **overrides})
    return finish(config, _hf_encodec_keys(weights, our_names(config)), weights_path)


CONVERTER = Converter(
    files="Meta EnCodec (encoder.model.*)",
    claims_file=_claims_file,
    import_file=_import_file,
    hf_model_types=("encodec",),
    import_folder=_import_folder,
)
