"""The ``mimi:`` section of a preset."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from academicodec.models.config import CodecConfig


@dataclass(frozen=True)
class MimiArch:
    """Kyutai's Mimi (``network.py``): causal SEANet (``ratios`` in the decoder's order),
    a causal transformer on each side, stride-``downsample_stride`` resampling, split RVQ."""

    n_filters: int = 64
    n_residual_layers: int = 1
    kernel_size: int = 7
    last_kernel_size: int = 3
    residual_kernel_size: int = 3
    dilation_base: int = 2
    compress: int = 2
    downsample_stride: int = 2
    d_model: int = 512
    num_heads: int = 8
    num_layers: int = 8
    dim_feedforward: int = 2048
    context: int = 250  # attention span in encoder frames (10 s at 25 Hz)
    layer_scale: bool = True
    max_period: float = 10000.0
    codebook_dim: int = 256
    n_q: int = 32
    n_q_semantic: int = 1

    def check(self, config: CodecConfig) -> None:
        if not 1 <= self.n_q_semantic < self.n_q:
            raise ValueError("mimi: need 1 <= n_q_semantic < n_q")
        if self.d_model % self.num_heads:
            raise ValueError("mimi.num_heads must divide mimi.d_model")

    def hop_length(self, config: CodecConfig) -> int:
        """The SEANet's hop, then the transformer's stride-``downsample_stride`` resampling."""
        return math.prod(config.ratios) * self.downsample_stride

    @property
    def num_codebooks(self) -> int:
        return self.n_q
