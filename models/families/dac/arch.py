"""The ``dac:`` section of a preset."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from academicodec.models.config import CodecConfig


@dataclass(frozen=True)
class DacArch:
    """Descript Audio Codec (``network.py``); ``ratios`` are its encoder rates."""

    encoder_dim: int = 64
    decoder_dim: int = 1536
    decoder_rates: tuple[int, ...] = (8, 8, 4, 2)
    n_codebooks: int = 9
    codebook_dim: int = 8
    codebook_loss_weight: float = 1.0
    commitment_loss_weight: float = 0.25

    # Real-valued keys and their ranges (models/config.py, REAL_RANGES: a section without
    # this attribute has none).
    real_ranges: ClassVar[dict[str, tuple[float, float, bool, bool]]] = {
        "codebook_loss_weight": (0.0, math.inf, True, False),
        "commitment_loss_weight": (0.0, math.inf, True, False),
    }

    def check(self, config: CodecConfig) -> None:
        if math.prod(self.decoder_rates) != config.hop_length:
            raise ValueError(
                f"dac.decoder_rates {list(self.decoder_rates)} must multiply to the "
                f"hop of ratios {list(config.ratios)} ({config.hop_length})"
            )
        if self.n_codebooks < 1 or self.codebook_dim < 1:
            raise ValueError("dac.n_codebooks and dac.codebook_dim must be >= 1")

    def hop_length(self, config: CodecConfig) -> int:
        return math.prod(config.ratios)

    @property
    def num_codebooks(self) -> int:
        return self.n_codebooks
