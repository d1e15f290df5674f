"""Import released codecs onto our length-aware modules: one entry, ``import_codec``.

Sources (docs/models.md has the table):

- Meta EnCodec 24 kHz, ``encodec_24khz-d7cc33bc.th``: a plain state dict with the
  ``encodec`` package's names, which are our SEANet's (``models/seanet.py``).
- Descript Audio Codec, ``weights*.pth``: ``{"state_dict", "metadata": {"kwargs"}}``, names
  as ``models/dac.py``.
- Hugging Face ``transformers`` folders (``config.json`` + ``model.safetensors``) of EnCodec
  (``model_type: encodec``) and DAC (``model_type: dac``): their names are mapped here, and
  their ``config.json`` read without transformers.
- AcademiCodec's released files (``models/original.py``).

Weights are read without unpickling code (``torch.load(weights_only=True)``, safetensors).
Weight norm comes as ``weight_g``/``weight_v`` (official files, older HF files),
``parametrizations.weight.original0/1`` (newer HF files) or a plain ``weight`` (HF DAC); all
three load onto our weight-normed layers exactly. The mapping is strict: every source tensor
is used once and every one of ours is filled with the same shape, or the import stops with
one line listing what is missing, unexpected or of the wrong shape.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from academicodec.errors import UserError
from academicodec.models.codec import CodecModel, build_codec
from academicodec.models.config import CodecConfig, load_codec_config
from academicodec.models.hub import resolve_source
from academicodec.models.original import (
    HIFI_PARTS,
    import_academicodec,
    load_original_state,
    load_strict,
    weight_norm_name,
)

SOURCE_FAMILIES = ("hificodec", "encodec", "dac", "mimi", "snac", "xcodec2")
HF_CONFIG, HF_WEIGHTS, HF_BIN = "config.json", "model.safetensors", "pytorch_model.bin"
HF_MODEL_TYPES = ("encodec", "dac", "mimi", "xcodec2")  # transformers folders we import
# What an error in the settings a source implies is attributed to (not "--set").
SETTINGS = "the source's settings (and --set)"
META_ENCODEC_BANDWIDTHS_Q = (2, 4, 8, 16, 32)  # codebooks at 1.5/3/6/12/24 kbps (24 kHz)


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


# --- files --------------------------------------------------------------------------------


def _import_file(
    path: Path, config_json: str | Path | None, preset: str | Path | None,
    overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    if path.suffix in (".safetensors", ".sft"):
        weights = _load_safetensors(path)
        if any(k.startswith("quantizer.rvq_first.") for k in weights):
            return _import_moshi_mimi(path, weights, preset, overrides)
        raise UserError(
            f"{path} is not a codec checkpoint we know: a safetensors file of a codec is "
            "Kyutai's Mimi (quantizer.rvq_first.*); for a Hugging Face model give its folder"
        )
    state = load_original_state(path)
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a state dict")
    if "state_dict" in state and "metadata" in state:
        return _import_dac_file(path, state, preset, overrides)
    keys = [str(k) for k in state]
    if set(HIFI_PARTS) <= set(state) or any(k.startswith("module.") for k in keys):
        source = {"source": f"academicodec {path.name}"}
        return import_academicodec(path, None, config_json, preset, {**source, **overrides})
    if any(k.startswith("encoder.model.") for k in keys):
        return _import_meta_encodec(path, state, preset, overrides)
    raise UserError(
        f"{path} is not a codec checkpoint we know: expected Meta EnCodec (encoder.model.*), "
        "DAC (state_dict + metadata), or AcademiCodec (generator/encoder/quantizer or module.*)"
    )


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
    return _finish(config, weights, path)


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


def _import_moshi_mimi(
    path: Path, weights: dict[str, Tensor], preset: str | Path | None,
    overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    """The moshi package's Mimi file (``tokenizer-e351c8d8-checkpoint125.safetensors``):
    plain weights, moshi's names. It holds no config: widths, ratios and codebooks are read
    from the tensors; heads and attention context (not in any tensor) are Mimi's (8, 250)
    unless ``--set mimi.num_heads=... mimi.context=...`` says otherwise."""
    mapped = {_moshi_name(k): v for k, v in weights.items()}
    config = _mimi_config(path, mapped, preset, {"source": f"mimi {path.name}", **overrides})
    return _finish(config, mapped, path)


# moshi's top-level modules -> ours (our encoder holds SEANet, transformer and downsample).
_MOSHI_PARTS = (
    ("encoder_transformer.", "encoder.transformer."),
    ("decoder_transformer.", "decoder.transformer."),
    ("downsample.", "encoder.downsample."),
    ("upsample.", "decoder.upsample."),
    ("encoder.", "encoder.seanet."),
    ("decoder.", "decoder.seanet."),
)


def _moshi_name(key: str) -> str:
    for theirs, ours in _MOSHI_PARTS:
        if key.startswith(theirs):
            key = ours + key[len(theirs) :]
            break
    # moshi's load hook accepts the fused names of its older files
    key = re.sub(r"\.self_attn\.in_proj_weight$", ".self_attn.in_projs.0.weight", key)
    key = re.sub(r"\.self_attn\.in_proj\.weight$", ".self_attn.in_projs.0.weight", key)
    return re.sub(r"\.self_attn\.out_proj\.weight$", ".self_attn.out_projs.0.weight", key)


def _mimi_config(
    path: Path, weights: dict[str, Tensor], preset: str | Path | None,
    overrides: dict[str, Any],
) -> CodecConfig:  # fmt: skip
    def tensor(key: str) -> Tensor:
        if key not in weights:
            raise UserError(f"{path} is not a Mimi checkpoint: no {key}")
        return weights[key]

    def count(pattern: str) -> int:
        return len({m.group(1) for k in weights if (m := re.match(pattern, k))})

    first = tensor("encoder.seanet.model.0.conv.conv.weight")
    convs = sorted(
        int(m.group(1))
        for k in weights
        if (m := re.match(r"encoder\.seanet\.model\.(\d+)\.conv\.conv\.weight$", k))
    )
    kernels = [weights[f"encoder.seanet.model.{i}.conv.conv.weight"].shape[-1] for i in convs]
    last = weights[f"encoder.seanet.model.{convs[-1]}.conv.conv.weight"]
    resblocks = count(r"encoder\.seanet\.model\.(\d+)\.block\.")
    layer = "encoder.transformer.transformer.layers.0."
    book = tensor("quantizer.rvq_first.vq.layers.0._codebook.embedding_sum")
    semantic = count(r"quantizer\.rvq_first\.vq\.layers\.(\d+)\.")
    acoustic = count(r"quantizer\.rvq_rest\.vq\.layers\.(\d+)\.")
    values: dict[str, Any] = {
        "ratios": [k // 2 for k in reversed(kernels[1:-1])],
        "latent_dim": last.shape[0],
        "codebook_size": book.shape[0],
        "mimi.n_filters": first.shape[0],
        "mimi.kernel_size": first.shape[-1],
        "mimi.last_kernel_size": last.shape[-1],
        "mimi.n_residual_layers": max(1, resblocks // max(1, len(kernels) - 2)),
        "mimi.residual_kernel_size": tensor(
            f"encoder.seanet.model.{convs[0] + 1}.block.1.conv.conv.weight"
        ).shape[-1],
        "mimi.downsample_stride": tensor("encoder.downsample.conv.conv.conv.weight").shape[-1] // 2,
        "mimi.d_model": tensor(layer + "norm1.weight").shape[0],
        "mimi.num_layers": count(r"encoder\.transformer\.transformer\.layers\.(\d+)\."),
        "mimi.dim_feedforward": tensor(layer + "linear1.weight").shape[0],
        "mimi.layer_scale": layer + "layer_scale_1.scale" in weights,
        "mimi.codebook_dim": book.shape[1],
        "mimi.n_q": semantic + acoustic,
        "mimi.n_q_semantic": semantic,
    }
    return load_codec_config(preset or "kyutai_mimi", {**values, **overrides}, SETTINGS)


def _import_hf_mimi(
    path: Path, weights_path: Path, hf: dict[str, Any], weights: dict[str, Tensor],
    preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    """transformers' Mimi folder (``kyutai/mimi``): its names mapped onto moshi's, then
    imported as moshi's file is. Heads, attention window and RoPE base come from
    ``config.json`` (no tensor holds them); settings our Mimi does not have are refused."""
    hidden = hf.get("hidden_size", 512)
    heads = hf.get("num_attention_heads", 8)
    rope_type, rope_theta = _hf_rope(hf)
    unsupported = {
        "audio_channels": (hf.get("audio_channels", 1), 1),
        "use_causal_conv": (hf.get("use_causal_conv", True), True),
        "use_conv_shortcut": (hf.get("use_conv_shortcut", False), False),
        "pad_mode": (hf.get("pad_mode", "constant"), "constant"),
        "trim_right_ratio": (hf.get("trim_right_ratio", 1.0), 1.0),
        "hidden_act": (hf.get("hidden_act", "gelu"), "gelu"),
        "attention_bias": (hf.get("attention_bias", False), False),
        "norm_eps": (hf.get("norm_eps", 1e-5), 1e-5),
        "num_key_value_heads": (hf.get("num_key_value_heads", heads), heads),
        "head_dim": (hf.get("head_dim") or hidden // heads, hidden // heads),
        "upsample_groups": (hf.get("upsample_groups", hidden), hidden),
        "rope_type": (rope_type, "default"),
    }
    _refuse_unsupported(path, unsupported, "Mimi as Kyutai released it has")
    values = {
        "sample_rate": hf.get("sampling_rate", 24000),
        "mimi.num_heads": heads,
        "mimi.context": hf.get("sliding_window", 250),
        "mimi.max_period": rope_theta,
        "mimi.dilation_base": hf.get("dilation_growth_rate", 2),
        "mimi.compress": hf.get("compress", 2),
    }
    renamed = _hf_mimi_to_moshi(weights_path, weights, heads)
    mapped = {_moshi_name(k): v for k, v in renamed.items()}
    config = _mimi_config(weights_path, mapped, preset, {**values, **overrides})
    given = hf.get("frame_rate") or hf.get("_frame_rate")
    if given is not None and abs(float(given) - config.frame_rate) > 1e-6:
        raise UserError(
            f"{path}: frame_rate {given} does not match its weights' {config.frame_rate} Hz "
            f"({config.sample_rate} Hz / hop {config.hop_length})"
        )
    # The SEANet decoder's transposed convs hold the same names as its convs in transformers.
    ours = _our_names(config)
    for key in [k for k in mapped if k.startswith("decoder.seanet.") and k not in ours]:
        transposed = key.replace(".conv.conv.", ".convtr.convtr.")
        if transposed in ours:
            mapped[transposed] = mapped.pop(key)
    return _finish(config, mapped, weights_path)


# transformers' Mimi names -> moshi's (regex, replacement), applied in order.
_HF_MIMI_NAMES = (
    (r"^(encoder|decoder)\.layers\.(\d+)\.conv\.", r"\1.model.\2.conv.conv."),
    (
        r"^(encoder|decoder)\.layers\.(\d+)\.block\.(\d+)\.conv\.",
        r"\1.model.\2.block.\3.conv.conv.",
    ),
    (r"^downsample\.conv\.", "downsample.conv.conv.conv."),
    (r"^upsample\.conv\.", "upsample.convtr.convtr.convtr."),
    (r"^(encoder|decoder)_transformer\.layers\.", r"\1_transformer.transformer.layers."),
    (r"\.input_layernorm\.", ".norm1."),
    (r"\.post_attention_layernorm\.", ".norm2."),
    (r"\.mlp\.fc1\.", ".linear1."),
    (r"\.mlp\.fc2\.", ".linear2."),
    (r"\.self_attn_layer_scale\.", ".layer_scale_1."),
    (r"\.mlp_layer_scale\.", ".layer_scale_2."),
    (r"\.self_attn\.o_proj\.weight$", ".self_attn.out_proj.weight"),
    (r"^quantizer\.semantic_residual_vector_quantizer\.", "quantizer.rvq_first."),
    (r"^quantizer\.acoustic_residual_vector_quantizer\.", "quantizer.rvq_rest."),
    (r"\.layers\.(\d+)\.codebook\.embed_sum$", r".vq.layers.\1._codebook.embedding_sum"),
    (r"\.layers\.(\d+)\.codebook\.cluster_usage$", r".vq.layers.\1._codebook.cluster_usage"),
    (r"\.layers\.(\d+)\.codebook\.initialized$", r".vq.layers.\1._codebook._initialized"),
)


def _hf_mimi_to_moshi(path: Path, weights: dict[str, Tensor], heads: int) -> dict[str, Tensor]:
    """Renamed, and each layer's q/k/v fused into moshi's ``in_proj_weight``. transformers'
    conversion reordered the q and k rows of every head for its half-split RoPE (pairs
    ``(i, i + d/2)``); moshi's (ours) rotates interleaved pairs ``(2i, 2i + 1)``: undone
    here."""
    mapped: dict[str, Tensor] = {}
    parts: dict[str, dict[str, Tensor]] = {}
    for key, value in weights.items():
        fused = re.match(r"^(.+\.self_attn)\.([qkv])_proj\.weight$", key)
        if fused:
            parts.setdefault(fused.group(1), {})[fused.group(2)] = value
            continue
        for pattern, replacement in _HF_MIMI_NAMES:
            key = re.sub(pattern, replacement, key)
        mapped[key] = value
    for stem, qkv in parts.items():
        if set(qkv) != {"q", "k", "v"}:
            missing = sorted(f"{stem}.{p}_proj.weight" for p in "qkv" if p not in qkv)
            raise UserError(f"{path} is not a complete Mimi checkpoint: no {', '.join(missing)}")
        q, k = (_interleave_rope_rows(qkv[p], heads) for p in "qk")
        name = stem.replace("_transformer.layers.", "_transformer.transformer.layers.")
        mapped[name + ".in_proj_weight"] = torch.cat([q, k, qkv["v"]])
    return mapped


def _interleave_rope_rows(weight: Tensor, heads: int) -> Tensor:
    rows, columns = weight.shape
    return weight.view(heads, 2, rows // heads // 2, columns).transpose(1, 2).reshape(rows, columns)


def _conv_key(index: int) -> str:
    return f"encoder.model.{index}.conv.conv.parametrizations.weight.original1"


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
    return _finish(config, weights, path)


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


# --- Hugging Face folders -----------------------------------------------------------------


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
    snac = kind is None and "vq_strides" in hf  # the snac package's folders: no model_type
    if not snac and kind not in HF_MODEL_TYPES:  # refused before reading its weights
        raise UserError(
            f"{config_path}: model_type {kind!r} is not supported "
            f"({', '.join(HF_MODEL_TYPES[:-1])} and {HF_MODEL_TYPES[-1]} are)"
        )
    weights = _hf_weights(weights_path)
    if snac:
        config = _snac_config(
            config_path, hf, preset, {"source": f"snac {folder.name}", **overrides}
        )
        return _finish(config, {weight_norm_name(k): v for k, v in weights.items()}, weights_path)
    source = {"source": f"hf-{kind} {folder.name}"}
    if kind == "encodec":
        config = _hf_encodec_config(config_path, hf, preset, {**source, **overrides})
        mapped = _hf_encodec_keys(weights, _our_names(config))
    elif kind == "mimi":
        return _import_hf_mimi(
            config_path, weights_path, hf, weights, preset, {**source, **overrides}
        )
    elif kind == "xcodec2":
        if "codec_encoder_hidden_size" in hf:  # HKUSTAudio's own upload: xcodec2's names
            raise UserError(
                f"{config_path}: the original X-Codec2 upload (the xcodec2 package's layout) "
                "is not supported; import transformers' conversion of the same weights: "
                "huggingface-cli download hf-audio/xcodec2"
            )
        config = _hf_xcodec2_config(config_path, hf, preset, {**source, **overrides})
        return _finish(config, _hf_xcodec2_keys(weights), weights_path)
    else:  # dac
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
            overrides={**source, **overrides},
        )
        mapped = _hf_dac_keys(weights, len(config.ratios), len(config.dac.decoder_rates))  # type: ignore[union-attr]
    return _finish(config, mapped, weights_path)


def _hf_xcodec2_config(
    path: Path, hf: dict[str, Any], preset: str | Path | None, overrides: dict[str, Any]
) -> CodecConfig:
    """transformers' ``Xcodec2Config`` (its defaults for keys a config leaves out) and the
    w2v-BERT ``semantic_model_config`` inside it; settings our port lacks are refused."""
    semantic = hf.get("semantic_model_config") or {}
    hidden, heads = hf.get("hidden_size", 1024), hf.get("num_attention_heads", 16)
    semantic_dim = semantic.get("hidden_size", 1024)
    rope_type, rope_theta = _hf_rope(hf)
    unsupported = {
        "hidden_act": (hf.get("hidden_act", "silu"), "silu"),
        "attention_bias": (hf.get("attention_bias", False), False),
        "num_key_value_heads": (hf.get("num_key_value_heads") or heads, heads),
        "rope_type": (rope_type, "default"),
        "quantization_dim": (hf.get("quantization_dim", 2048), hidden + semantic_dim),
        "semantic_model_config.model_type": (
            semantic.get("model_type", "wav2vec2-bert"), "wav2vec2-bert"
        ),
        "semantic_model_config.hidden_act": (semantic.get("hidden_act", "swish"), "swish"),
        "semantic_model_config.position_embeddings_type": (
            semantic.get("position_embeddings_type", "relative_key"), "relative_key"
        ),
        "semantic_model_config.add_adapter": (semantic.get("add_adapter", False), False),
        "semantic_model_config.use_intermediate_ffn_before_adapter": (
            semantic.get("use_intermediate_ffn_before_adapter", False), False
        ),
        "semantic_model_config.feature_projection_input_dim": (
            semantic.get("feature_projection_input_dim", 160), 160
        ),
    }  # fmt: skip
    _refuse_unsupported(path, unsupported, "X-Codec2 as HKUSTAudio released it has")
    levels = list(hf.get("quantization_levels", [4] * 8))
    values = {
        "sample_rate": hf.get("sampling_rate", 16000),
        "ratios": list(hf.get("downsampling_ratios", [2, 2, 4, 4, 5])),
        "latent_dim": hidden + semantic_dim,
        "codebook_size": math.prod(levels),
        "xcodec2.encoder_dim": hf.get("encoder_hidden_size", 48),
        "xcodec2.hidden_size": hidden,
        "xcodec2.num_layers": hf.get("num_hidden_layers", 12),
        "xcodec2.num_heads": heads,
        "xcodec2.head_dim": hf.get("head_dim") or hidden // heads,
        "xcodec2.intermediate_size": hf.get("intermediate_size", 4096),
        "xcodec2.rope_theta": rope_theta,
        "xcodec2.rms_norm_eps": hf.get("rms_norm_eps", 1e-6),
        "xcodec2.levels": levels,
        "xcodec2.semantic_dim": semantic_dim,
        "xcodec2.semantic_layers": semantic.get("num_hidden_layers", 16),
        "xcodec2.semantic_heads": semantic.get("num_attention_heads", 16),
        "xcodec2.semantic_intermediate": semantic.get("intermediate_size", 4096),
        "xcodec2.semantic_kernel": semantic.get("conv_depthwise_kernel_size", 31),
        "xcodec2.semantic_left": semantic.get("left_max_position_embeddings", 64),
        "xcodec2.semantic_right": semantic.get("right_max_position_embeddings", 8),
        "xcodec2.semantic_eps": semantic.get("layer_norm_eps", 1e-5),
    }
    return load_codec_config(preset or "xcodec2", {**values, **overrides}, SETTINGS)


# transformers' X-Codec2 prefixes -> ours (the rest of each name is the same).
_HF_XCODEC2_PREFIXES = (
    ("semantic_encoder.", "encoder.semantic_encoder."),
    ("semantic_adapter.", "encoder.semantic_adapter."),
    ("acoustic_encoder.", "encoder.acoustic_encoder."),
    ("fc_encoder.", "encoder.fc_encoder."),
    ("acoustic_decoder.", "decoder."),
)  # quantizer.* keeps its name
# SpecAugment's learned mask vector: used only when training w2v-BERT.
_HF_XCODEC2_TRAINING_ONLY = ("semantic_encoder.masked_spec_embed",)


def _hf_xcodec2_keys(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    mapped = {}
    for key, value in weights.items():
        if key in _HF_XCODEC2_TRAINING_ONLY:
            continue
        prefix = next((p for p in _HF_XCODEC2_PREFIXES if key.startswith(p[0])), None)
        # unknown names are kept as they are, so the strict load names them
        mapped[key if prefix is None else prefix[1] + key[len(prefix[0]) :]] = value
    return mapped


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


def _hf_weights(path: Path) -> dict[str, Tensor]:
    """A folder's weights: ``model.safetensors``, or ``pytorch_model.bin`` read weights-only
    (older uploads have only the latter)."""
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    state = load_original_state(path)
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if len(tensors) != len(state):
        raise UserError(f"{path} is not a plain state dict of tensors")
    return tensors


def _load_safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{path} is not a readable safetensors file: {exc}") from exc


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
    _refuse_unsupported(path, unsupported, "only EnCodec 24 kHz-style mono models,")
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


# --- shared -------------------------------------------------------------------------------


def _refuse_unsupported(path: Path, settings: dict[str, tuple[Any, Any]], holds: str) -> None:
    """``settings``: name -> (the source's value, the only one we build); one line for the
    first that differs, ``holds`` saying which models have the wanted value."""
    for key, (value, wanted) in settings.items():
        if value != wanted:
            raise UserError(
                f"{path}: {key} = {value!r} is not supported ({holds} {key} = {wanted!r})"
            )


def _hf_rope(hf: dict[str, Any]) -> tuple[str, float]:
    """A transformers config's RoPE type and base: transformers 5 keeps them in
    ``rope_parameters``, older configs (the Hub's) in a top-level ``rope_theta``."""
    rope = hf.get("rope_parameters") or {}
    theta = rope.get("rope_theta", hf.get("rope_theta", 10000.0))
    return rope.get("rope_type", "default"), float(theta)


def _our_names(config: CodecConfig) -> set[str]:
    """Our tensor names for ``config``, from a model built on the meta device (nothing
    allocated: the real one is built once, by ``_finish``)."""
    with torch.device("meta"):
        return set(build_codec(config).state_dict())


def _fold_plain_weights(mapped: dict[str, Tensor], ours: dict[str, Tensor]) -> dict[str, Tensor]:
    """A plain ``weight`` where we hold a weight-normed one: direction = the weight,
    magnitude = its norm, computed as torch's weight norm computes it, so g / ||v|| is
    exactly 1 and the weight comes back bit-exact."""
    out = dict(mapped)
    for key, value in mapped.items():
        if not key.endswith(".weight") or key in ours:
            continue
        stem = key[: -len("weight")] + "parametrizations.weight."
        if stem + "original1" in ours:
            del out[key]
            out[stem + "original1"] = value
            out[stem + "original0"] = torch.norm_except_dim(value, 2, 0)
    return out


def _finish(config: CodecConfig, weights: dict[str, Tensor], source: Path) -> CodecModel:
    model = build_codec(config)
    ours = model.state_dict()
    mapped = _fold_plain_weights(weights, ours)
    mapped = {k: v.to(ours[k].dtype) if k in ours else v for k, v in mapped.items()}
    load_strict(model, mapped, str(source))
    return model.eval()
