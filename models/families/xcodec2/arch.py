"""The ``xcodec2:`` section of a preset."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from academicodec.models.config import CodecConfig


@dataclass(frozen=True)
class Xcodec2Arch:
    """X-Codec2 (``network.py``); ``ratios`` are its acoustic encoder's rates and
    ``latent_dim`` = ``semantic_dim + hidden_size`` (what FSQ quantizes)."""

    encoder_dim: int = 48  # the acoustic encoder's first width
    hidden_size: int = 1024  # acoustic latent and decoder width
    num_layers: int = 12  # decoder transformer
    num_heads: int = 16
    head_dim: int = 64
    intermediate_size: int = 4096
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    levels: tuple[int, ...] = (4, 4, 4, 4, 4, 4, 4, 4)  # FSQ: one codebook of their product
    # w2v-BERT 2.0, the layers X-Codec2 keeps (16 of 24)
    semantic_dim: int = 1024
    semantic_layers: int = 16
    semantic_heads: int = 16
    semantic_intermediate: int = 4096
    semantic_kernel: int = 31
    semantic_left: int = 64  # relative-key distances are clamped to [-left, right]
    semantic_right: int = 8
    semantic_eps: float = 1e-5

    def check(self, config: CodecConfig) -> None:
        if config.latent_dim != self.semantic_dim + self.hidden_size:
            raise ValueError(
                f"latent_dim ({config.latent_dim}) must be xcodec2.semantic_dim + hidden_size "
                f"({self.semantic_dim + self.hidden_size})"
            )
        if config.codebook_size != math.prod(self.levels):
            raise ValueError(
                f"codebook_size ({config.codebook_size}) must be the product of xcodec2.levels "
                f"({math.prod(self.levels)})"
            )
        # The filterbank runs every 10 ms and two of its frames make one code frame.
        rate, hop = config.sample_rate, config.hop_length
        if rate % 100 or hop != 2 * (rate // 100):
            raise ValueError(
                f"xcodec2: the hop ({hop}) must be 20 ms of {rate} Hz (two 10 ms filterbank frames)"
            )
        if self.semantic_dim % self.semantic_heads or self.hidden_size % 32:
            raise ValueError(
                "xcodec2: semantic_heads must divide semantic_dim, and 32 GroupNorm groups "
                "hidden_size"
            )

    def hop_length(self, config: CodecConfig) -> int:
        return math.prod(config.ratios)

    @property
    def num_codebooks(self) -> int:
        return 1  # one FSQ codebook
