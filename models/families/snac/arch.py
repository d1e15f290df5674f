"""The ``snac:`` section of a preset."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from academicodec.models.config import CodecConfig


@dataclass(frozen=True)
class SnacArch:
    """Multi-scale neural audio codec (``network.py``); ``ratios`` are its encoder rates.
    Codebook k runs every ``vq_strides[k]`` encoder frames; one of our frames is
    ``lcm(vq_strides[0], attn_window_size)`` encoder frames and holds every level's codes
    for that span (``levels``)."""

    encoder_dim: int = 48
    decoder_dim: int = 1024
    decoder_rates: tuple[int, ...] = (8, 8, 4, 2)
    attn_window_size: int = 0  # 0: no local attention (the 24 kHz speech model)
    codebook_dim: int = 8
    vq_strides: tuple[int, ...] = (4, 2, 1)
    noise: bool = True
    depthwise: bool = True

    @property
    def span(self) -> int:
        """Encoder frames in one of our frames."""
        return math.lcm(self.vq_strides[0], self.attn_window_size or 1)

    @property
    def levels(self) -> tuple[int, ...]:
        """Codes each level puts in one of our frames (24 kHz: 1, 2, 4)."""
        return tuple(self.span // stride for stride in self.vq_strides)

    def check(self, config: CodecConfig) -> None:
        strides = self.vq_strides
        if not strides or any(s < 1 or strides[0] % s for s in strides):
            raise ValueError(f"snac.vq_strides must divide the first, got {list(strides)}")
        if math.prod(self.decoder_rates) != math.prod(config.ratios):
            raise ValueError("snac.decoder_rates must multiply to the encoder rates' hop")

    def hop_length(self, config: CodecConfig) -> int:
        """A frame spans ``span`` encoder frames."""
        return math.prod(config.ratios) * self.span

    @property
    def num_codebooks(self) -> int:
        return sum(self.levels)
