"""X-Codec2 as transformers converted HKUSTAudio's release (``model_type: xcodec2``,
``hf-audio/xcodec2``) onto ``network.py``: names mapped by prefix, ``config.json`` (with the
w2v-BERT ``semantic_model_config`` inside it) read without transformers.
"""

from __future__ import annotations

import math
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
    hf_rope,
    refuse_unsupported,
)


def _hf_xcodec2_config(
    path: Path, hf: dict[str, Any], preset: str | Path | None, overrides: dict[str, Any]
) -> CodecConfig:
    """transformers' ``Xcodec2Config`` (its defaults for keys a config leaves out) and the
    w2v-BERT ``semantic_model_config`` inside it; settings our port lacks are refused."""
    semantic = hf.get("semantic_model_config") or {}
    hidden, heads = hf.get("hidden_size", 1024), hf.get("num_attention_heads", 16)
    semantic_dim = semantic.get("hidden_size", 1024)
    rope_type, rope_theta = hf_rope(hf)
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
    refuse_unsupported(path, unsupported, "X-Codec2 as HKUSTAudio released it has")
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


def _import_folder(
    folder: Path, config_path: Path, weights_path: Path, hf: dict[str, Any],
    weights: dict[str, Tensor], preset: str | Path | None, overrides: dict[str, Any],
) -> CodecModel:  # fmt: skip
    if "codec_encoder_hidden_size" in hf:  # HKUSTAudio's own upload: xcodec2's names
        raise UserError(
            f"{config_path}: the original X-Codec2 upload (the xcodec2 package's layout) "
            "is not supported; import transformers' conversion of the same weights: "
            "huggingface-cli download hf-audio/xcodec2"
        )
    source = {"source": f"hf-xcodec2 {folder.name}"}
    config = _hf_xcodec2_config(config_path, hf, preset, {**source, **overrides})
    return finish(config, _hf_xcodec2_keys(weights), weights_path)


CONVERTER = Converter(hf_model_types=("xcodec2",), import_folder=_import_folder)
