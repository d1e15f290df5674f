"""Kyutai's Mimi releases onto ``network.py``.

- The moshi package's file (``tokenizer-e351c8d8-checkpoint125.safetensors``): plain
  weights, moshi's names (ours but for the top-level modules).
- transformers' folders (``model_type: mimi``, ``kyutai/mimi``): their names mapped onto
  moshi's, then imported as moshi's file is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from academicodec.errors import UserError
from academicodec.models.codec import CodecModel
from academicodec.models.config import CodecConfig, load_codec_config
from academicodec.models.families.common import (
    SETTINGS,
    Converter,
    finish,
    hf_rope,
    our_names,
    refuse_unsupported,
)


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
    return finish(config, mapped, path)


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
    rope_type, rope_theta = hf_rope(hf)
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
    refuse_unsupported(path, unsupported, "Mimi as Kyutai released it has")
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
    ours = our_names(config)
    for key in [k for k in mapped if k.startswith("decoder.seanet.") and k not in ours]:
        transposed = key.replace(".conv.conv.", ".convtr.convtr.")
        if transposed in ours:
            mapped[transposed] = mapped.pop(key)
    return finish(config, mapped, weights_path)


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


def _claims_file(state: dict[str, Any], safetensors: bool) -> bool:
    return safetensors and any(str(k).startswith("quantizer.rvq_first.") for k in state)


def _import_file(
    path: Path, state: dict[str, Tensor], config_json: str | Path | None,
    preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    return _import_moshi_mimi(path, state, preset, overrides)


def _import_folder(
    folder: Path, config_path: Path, weights_path: Path, hf: dict[str, Any],
    weights: dict[str, Tensor], preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    source = {"source": f"hf-mimi {folder.name}"}
    return _import_hf_mimi(config_path, weights_path, hf, weights, preset, {**source, **overrides})


CONVERTER = Converter(
    files="Kyutai's Mimi (quantizer.rvq_first.*)",
    safetensors=True,
    claims_file=_claims_file,
    import_file=_import_file,
    hf_model_types=("mimi",),
    import_folder=_import_folder,
)
