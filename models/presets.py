"""A summary of every shipped preset, built from the models themselves (``presets`` command)."""

from __future__ import annotations

from typing import Any

from academicodec.config import preset_names
from academicodec.models.codec import build_codec


def describe_presets() -> list[dict[str, Any]]:
    """One row per preset; ``parameters`` counts the built generator (weight norm folded)."""
    rows = []
    for name in preset_names():
        model = build_codec(name)
        rows.append(
            {
                "name": name,
                "family": model.config.family,
                "sample_rate": model.sample_rate,
                "hop_length": model.hop_length,
                "frame_rate": model.frame_rate,
                "num_codebooks": model.num_codebooks,
                "codebook_size": model.codebook_size,
                "bitrate_kbps": round(model.bitrate_kbps(), 3),
                "parameters": model.generator_parameters(),
            }
        )
    return rows
