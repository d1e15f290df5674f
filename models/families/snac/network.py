"""SNAC (Siuzdak et al., 2024), the multi-scale codec Orpheus TTS speaks in: DAC-style Snake
convnets (depthwise), optional local windowed attention, and a residual VQ whose codebook k
runs every ``vq_strides[k]`` encoder frames (24 kHz: 12, 23 and 47 Hz).

Module names follow the ``snac`` package (``encoder.block.N.block.M``, ``decoder.model.N``,
``quantizer.quantizers.K.{in_proj,out_proj,codebook}``), so its ``pytorch_model.bin``
loads by renaming weight norm only.

Code layout (docs/tokenize.md, "Multi-rate codes"): one of our frames spans
``lcm(vq_strides[0], attn_window_size)`` encoder frames (24 kHz: 4, i.e. 2048 samples) and
holds every level's codes for that span, level by level: 24 kHz rows are
``[l0[f], l1[2f], l1[2f+1], l2[4f], ..., l2[4f+3]]`` - SNAC's own 1 + 2 + 4 grouping. So
every format, reader and tool that carries ``[K, F]`` codes carries SNAC's losslessly,
and a frame boundary is a boundary of every level.

Length-aware as DAC here (``models/families/dac/network.py``): every conv, the attention
and the noise re-zero each item past its own length, and the framing is SNAC's (zeros to a
whole frame), so batched codes equal the codes of each clip alone, and the reference's.
SNAC's decoder adds noise; ours draws it for each item from its own generator seeded
``NOISE_SEED``, so decoding is deterministic and batch-independent (the reference gives
the same audio for one clip under ``torch.manual_seed(NOISE_SEED)``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from academicodec.models.codec import CodecModel
from academicodec.models.config import CodecConfig
from academicodec.models.families.dac.network import (
    Block,
    FactorisedVQ,
    LengthAware,
    Snake1d,
    encoder_blocks,
    residual_units,
    run_layers,
    wn_conv,
)
from academicodec.models.families.snac.arch import SnacArch
from academicodec.models.layers import apply_mask, length_mask, weight_norm

NOISE_SEED = 0


class LocalAttention(LengthAware):
    """SNAC's ``LocalMHA``: pre-norm attention within non-overlapping windows of
    ``window`` steps, rotary positions inside each window, plus the input."""

    def __init__(self, dim: int, window: int, head_dim: int = 64) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.heads, self.window = dim // head_dim, window
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.rel_pos = _Rotary(head_dim)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        batch, channels, steps = x.shape
        windows = steps // self.window
        q, k, v = self.to_qkv(self.norm(x.transpose(1, 2))).chunk(3, dim=-1)

        def split(t: Tensor) -> Tensor:  # [B, T, H*d] -> [B, H, W, N, d]
            return t.reshape(batch, windows, self.window, self.heads, -1).permute(0, 3, 1, 2, 4)

        q, k, v = split(q), split(k), split(v)
        freqs = self.rel_pos(self.window)
        q = q * freqs.cos() + _rotate_half(q) * freqs.sin()
        k = k * freqs.cos() + _rotate_half(k) * freqs.sin()
        out = F.scaled_dot_product_attention(q, k, v)
        out = self.to_out(out.permute(0, 2, 3, 1, 4).reshape(batch, steps, channels))
        y = out.transpose(1, 2) + x
        return apply_mask(y, length_mask(lengths, steps)), lengths


class _Rotary(nn.Module):
    """Rotary angles within a window (SNAC's ``SinusoidalEmbeddings``, no xpos scaling)."""

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        self.register_buffer(
            "inv_freq", 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        )

    def forward(self, steps: int) -> Tensor:
        t = torch.arange(steps, device=self.inv_freq.device).type_as(self.inv_freq)
        freqs = torch.einsum("i , j -> i j", t, self.inv_freq)
        return torch.cat((freqs, freqs), dim=-1)


def _rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class NoiseBlock(LengthAware):
    """``x + noise * linear(x)``, the noise ``[1, 1, length]`` per item from that item's
    generator (set by ``SnacDecoder.forward``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = wn_conv(dim, dim, 1, bias=False)
        self.generators: list[torch.Generator] = []

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        batch, _, steps = x.shape
        valid = [steps] * batch if lengths is None else [int(n) for n in lengths]
        noise = torch.zeros(batch, 1, steps, dtype=x.dtype, device=x.device)
        for i, (count, generator) in enumerate(zip(valid, self.generators, strict=True)):
            draw = torch.randn((1, 1, count), generator=generator, dtype=x.dtype)
            noise[i, :, :count] = draw[0].to(x.device)
        return x + noise * self.linear(x), lengths


class SnacEncoder(nn.Module):
    """Waveform [B, 1, F * hop] -> latent [B, D, F * span] (encoder frames)."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.snac
        assert arch is not None
        layers, dim = encoder_blocks(arch.encoder_dim, config.ratios, arch.depthwise)
        if arch.attn_window_size:
            layers.append(LocalAttention(dim, arch.attn_window_size))
        layers.append(wn_conv(dim, dim, 7, padding=3, groups=dim if arch.depthwise else 1))
        self.block = nn.ModuleList(layers)
        self.hop_length = config.hop_length

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        lengths = None if frames is None else frames * self.hop_length
        return run_layers(self.block, x, lengths)[0]


class SnacDecoder(nn.Module):
    """Latent [B, D, F * span] -> waveform [B, 1, F * hop] (tanh output)."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.snac
        assert arch is not None
        latent, channels = config.latent_dim, arch.decoder_dim
        if arch.depthwise:
            layers: list[nn.Module] = [
                wn_conv(latent, latent, 7, padding=3, groups=latent),
                wn_conv(latent, channels, 1),
            ]
        else:
            layers = [wn_conv(latent, channels, 7, padding=3)]
        if arch.attn_window_size:
            layers.append(LocalAttention(channels, arch.attn_window_size))
        out = channels
        for i, stride in enumerate(arch.decoder_rates):
            dim, out = channels // 2**i, channels // 2 ** (i + 1)
            up = weight_norm(
                nn.ConvTranspose1d(
                    dim, out, 2 * stride, stride, padding=math.ceil(stride / 2),
                    output_padding=stride % 2,
                )
            )  # fmt: skip
            noise = [NoiseBlock(out)] if arch.noise else []
            units = residual_units(out, out if arch.depthwise else 1)
            layers.append(Block([Snake1d(dim), up, *noise, *units]))
        layers += [Snake1d(out), wn_conv(out, 1, 7, padding=3), nn.Tanh()]
        self.model = nn.ModuleList(layers)
        self.span = arch.span

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        # The generators are shared by every noise block: each item's draws follow one
        # another as the reference's single global stream does.
        shared = [torch.Generator().manual_seed(NOISE_SEED) for _ in range(x.shape[0])]
        for module in self.modules():
            if isinstance(module, NoiseBlock):
                module.generators = shared
        lengths = None if frames is None else frames * self.span
        return run_layers(self.model, x, lengths)[0]


class MultiRateVQ(nn.Module):
    """SNAC's residual VQ: level k averages ``vq_strides[k]`` frames, quantizes them as
    DAC does (factorised, L2-normalised) and repeats its codeword back over them."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.snac
        assert arch is not None
        self.arch: SnacArch = arch
        dim, size, code_dim = config.latent_dim, config.codebook_size, arch.codebook_dim
        self.quantizers = nn.ModuleList(FactorisedVQ(dim, size, code_dim) for _ in arch.vq_strides)

    @torch.no_grad()
    def encode(self, latent: Tensor, mask: Tensor | None = None, n_q: int | None = None) -> Tensor:
        """Codes [B, sum(levels), F] from a latent [B, D, F * span]."""
        residual, rows = latent, []
        for stage, stride, count in zip(
            self.quantizers, self.arch.vq_strides, self.arch.levels, strict=True
        ):
            pooled = F.avg_pool1d(residual, stride, stride) if stride > 1 else residual
            codes = stage.nearest(stage.in_proj(pooled))  # [B, F * count]
            part = stage.out_proj(stage.lookup(codes))
            residual = residual - part.repeat_interleave(stride, dim=-1)
            rows.append(codes.view(codes.shape[0], -1, count).transpose(1, 2))
        return torch.cat(rows, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        """Latent [B, D, F * span] from codes [B, sum(levels), F]."""
        latent, first = None, 0
        for stage, stride, count in zip(
            self.quantizers, self.arch.vq_strides, self.arch.levels, strict=True
        ):
            level = codes[:, first : first + count].transpose(1, 2).reshape(codes.shape[0], -1)
            first += count
            part = stage.out_proj(stage.lookup(level)).repeat_interleave(stride, dim=-1)
            latent = part if latent is None else latent + part
        assert latent is not None
        return latent


def split_levels(codes: Tensor, levels: tuple[int, ...]) -> list[Tensor]:
    """Our [..., sum(levels), F] layout -> one [..., F * levels[k]] array per level, in
    time order (what ``snac.SNAC.decode`` takes)."""
    parts, first = [], 0
    for count in levels:
        block = codes[..., first : first + count, :]
        parts.append(block.transpose(-1, -2).reshape(*codes.shape[:-2], -1))
        first += count
    return parts


class SnacCodec(CodecModel):
    """SNAC (this module): a frame holds every level's codes for its span."""

    default_framing = "SNAC's preprocess (zeros to a whole frame of every level)"

    def __init__(self, config: CodecConfig) -> None:
        super().__init__(config)
        self.encoder = SnacEncoder(config)
        self.quantizer = MultiRateVQ(config)
        self.decoder = SnacDecoder(config)

    @property
    def latent_steps(self) -> int:
        return self.config.snac.span  # type: ignore[union-attr]

    def supported_n_q(self) -> list[int]:
        """All levels: SNAC's decoder needs every one."""
        return [self.num_codebooks]

    def code_layout(self) -> dict[str, Any]:
        """Rows of a frame, level by level (docs/tokenize.md, "Multi-rate codes")."""
        arch = self.config.snac
        assert arch is not None
        encoder_rate = self.sample_rate / (self.hop_length // arch.span)
        return {
            "kind": "levels",
            "levels": list(arch.levels),
            "level_rates_hz": [round(encoder_rate / s, 4) for s in arch.vq_strides],
            "rows": "level by level; within a level, in time order",
        }


CODEC = SnacCodec
