"""Descript Audio Codec (Kumar et al., 2023): Snake convnets and a factorised residual VQ.

Module names follow the official ``dac`` package (``encoder.block.N.block.M``,
``decoder.model.N``, ``quantizer.quantizers.K.{in_proj,out_proj,codebook}``), so its
``weights*.pth`` files map by renaming weight norm only (``convert.py`` maps the
Hugging Face names).

Length-aware as every family here: every convolution pads with zeros, so a clip encoded
alone sees zeros past its end; in a batch each layer re-zeroes the positions past the
item's own length at that layer (computed with the layer's length formula, which also
covers DAC's odd-stride transposed convolutions that end a few samples short). A batched
clip therefore gets exactly the codes it gets alone, and those are the reference's codes:
DAC's framing (zero-pad to a multiple of the hop) is ours, so no ``compat`` switch is needed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from academicodec.models.codec import CodecModel
from academicodec.models.config import CodecConfig
from academicodec.models.layers import apply_mask, length_mask, weight_norm
from academicodec.models.quantizers import QuantizerResult, _masked_mean, _Recorder


class Snake1d(nn.Module):
    """``x + sin^2(alpha x) / alpha`` per channel, computed in DAC's operation order."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        inverse = (self.alpha + 1e-9).reciprocal()
        if torch.is_grad_enabled():
            return x + inverse * torch.sin(self.alpha * x).pow(2)
        # Inference: the same operations in place, one buffer instead of four (Snake runs
        # after every layer at full rate; DAC scripts it for the same reason).
        y = self.alpha * x
        return y.sin_().pow_(2).mul_(inverse).add_(x)


def wn_conv(
    channels_in: int, channels_out: int, kernel: int, stride: int = 1, dilation: int = 1,
    padding: int = 0, groups: int = 1, bias: bool = True,
) -> nn.Module:  # fmt: skip
    return weight_norm(
        nn.Conv1d(
            channels_in,
            channels_out,
            kernel,
            stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
    )


def _output_lengths(layer: nn.Module, lengths: Tensor) -> Tensor:
    """What ``layer`` makes of an input of each length when run alone (torch's formulas)."""
    if isinstance(layer, nn.Conv1d):
        span = layer.dilation[0] * (layer.kernel_size[0] - 1)
        return (lengths + 2 * layer.padding[0] - span - 1) // layer.stride[0] + 1
    if isinstance(layer, nn.ConvTranspose1d):
        span = layer.dilation[0] * (layer.kernel_size[0] - 1)
        return (
            (lengths - 1) * layer.stride[0] - 2 * layer.padding[0] + span
            + layer.output_padding[0] + 1
        )  # fmt: skip
    return lengths


class LengthAware(nn.Module):
    """A layer run as ``x, lengths = layer(x, lengths)``: it masks by itself."""


class ResidualUnit(LengthAware):
    """Snake, dilated conv 7, Snake, conv 1, plus the input (lengths unchanged); SNAC's
    depthwise variant groups the dilated conv."""

    def __init__(self, dim: int, dilation: int, groups: int = 1) -> None:
        super().__init__()
        self.block = nn.ModuleList(
            [
                Snake1d(dim),
                wn_conv(dim, dim, 7, dilation=dilation, padding=3 * dilation, groups=groups),
                Snake1d(dim),
                wn_conv(dim, dim, 1),
            ]
        )

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return x + run_layers(self.block, x, lengths)[0], lengths


def residual_units(dim: int, groups: int = 1) -> list[nn.Module]:
    return [ResidualUnit(dim, dilation, groups) for dilation in (1, 3, 9)]


class Block(LengthAware):
    """An encoder or decoder block: its ``block`` layers in order."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.block = nn.ModuleList(layers)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return run_layers(self.block, x, lengths)


def run_layers(
    layers: nn.ModuleList, x: Tensor, lengths: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """Run ``layers`` in order; after every convolution, zero each item past the length it
    would have there alone (Snake and tanh keep zeros zero). A layer that takes lengths
    itself (a block, SNAC's attention and noise) gets them."""
    for layer in layers:
        if isinstance(layer, LengthAware):
            x, lengths = layer(x, lengths)
            continue
        x = layer(x)
        if lengths is not None and isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)):
            lengths = _output_lengths(layer, lengths)
            x = apply_mask(x, length_mask(lengths, x.shape[-1]))
    return x, lengths


def encoder_blocks(
    dim: int, rates: tuple[int, ...], depthwise: bool = False
) -> tuple[list[nn.Module], int]:
    """The input conv and one downsampling block per rate (DAC's, and SNAC's with
    ``depthwise`` residual units); the layers and the width they end at."""
    layers: list[nn.Module] = [wn_conv(1, dim, 7, padding=3)]
    for stride in rates:
        groups = dim if depthwise else 1
        down = wn_conv(dim, dim * 2, 2 * stride, stride, padding=math.ceil(stride / 2))
        layers.append(Block([*residual_units(dim, groups), Snake1d(dim), down]))
        dim *= 2
    return layers, dim


class DacEncoder(nn.Module):
    """Waveform [B, 1, F * hop] -> latent [B, D, F]."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.dac
        assert arch is not None
        layers, dim = encoder_blocks(arch.encoder_dim, config.ratios)
        layers += [Snake1d(dim), wn_conv(dim, config.latent_dim, 3, padding=1)]
        self.block = nn.ModuleList(layers)
        self.hop_length = config.hop_length

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        return run_layers(self.block, x, None if frames is None else frames * self.hop_length)[0]


class DacDecoder(nn.Module):
    """Latent [B, D, F] -> waveform [B, 1, F * hop] (tanh output). DAC's odd-stride
    transposed convolutions end a few samples short of F * hop; the rest is zeros."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.dac
        assert arch is not None
        channels = arch.decoder_dim
        layers: list[nn.Module] = [wn_conv(config.latent_dim, channels, 7, padding=3)]
        out = channels
        for i, stride in enumerate(arch.decoder_rates):
            dim, out = channels // 2**i, channels // 2 ** (i + 1)
            up = weight_norm(
                nn.ConvTranspose1d(dim, out, 2 * stride, stride, padding=math.ceil(stride / 2))
            )
            layers.append(Block([Snake1d(dim), up, *residual_units(out)]))
        layers += [Snake1d(out), wn_conv(out, 1, 7, padding=3), nn.Tanh()]
        self.model = nn.ModuleList(layers)
        self.hop_length = config.hop_length

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        audio = run_layers(self.model, x, frames)[0]
        return F.pad(audio, (0, x.shape[-1] * self.hop_length - audio.shape[-1]))


class FactorisedVQ(nn.Module):
    """One DAC codebook: project to ``code_dim``, nearest L2-normalised codeword, project back."""

    def __init__(self, dim: int, size: int, code_dim: int) -> None:
        super().__init__()
        self.in_proj = wn_conv(dim, code_dim, 1)
        self.out_proj = wn_conv(code_dim, dim, 1)
        self.codebook = nn.Embedding(size, code_dim)

    def nearest(self, projected: Tensor) -> Tensor:
        """Codes [B, F] of projected latents [B, d, F], by DAC's distance formula."""
        rows = F.normalize(projected.transpose(1, 2).reshape(-1, projected.shape[1]))
        book = F.normalize(self.codebook.weight)
        distances = (
            rows.pow(2).sum(1, keepdim=True) - 2 * rows @ book.t() + book.pow(2).sum(1)[None, :]
        )
        return (-distances).max(1)[1].reshape(projected.shape[0], -1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Codewords [B, d, F] (not normalised, as DAC decodes)."""
        return F.embedding(codes, self.codebook.weight).transpose(1, 2)

    def forward(self, residual: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Quantized residual (straight-through), codes, projected input, its codeword."""
        projected = self.in_proj(residual)
        codes = self.nearest(projected)
        codeword = self.lookup(codes)
        straight = projected + (codeword - projected).detach()
        return self.out_proj(straight), codes, projected, codeword


class FactorisedResidualVQ(nn.Module):
    """DAC's residual VQ: every stage quantizes what the previous stages left."""

    def __init__(
        self, dim: int, size: int, stages: int, code_dim: int,
        codebook_weight: float = 1.0, commitment_weight: float = 0.25,
    ) -> None:  # fmt: skip
        super().__init__()
        self.size = size
        self.codebook_weight, self.commitment_weight = codebook_weight, commitment_weight
        self.quantizers = nn.ModuleList(FactorisedVQ(dim, size, code_dim) for _ in range(stages))

    @property
    def num_codebooks(self) -> int:
        return len(self.quantizers)

    def stages(self, n_q: int | None) -> list[FactorisedVQ]:
        n_q = self.num_codebooks if n_q is None else n_q
        if not 0 < n_q <= self.num_codebooks:
            raise ValueError(f"n_q must be in 1..{self.num_codebooks}, got {n_q}")
        return list(self.quantizers[:n_q])  # type: ignore[arg-type]

    def forward(
        self, latent: Tensor, mask: Tensor | None = None, n_q: int | None = None
    ) -> QuantizerResult:
        residual, quantized = latent, torch.zeros_like(latent)
        codes, losses = [], []
        recorder = _Recorder(self.training, mask)
        for stage in self.stages(n_q):
            part, indices, projected, codeword = stage(residual)
            rows = projected.transpose(1, 2).reshape(-1, projected.shape[1])
            recorder.add(rows, indices.reshape(-1))
            commitment = _masked_mean((projected - codeword.detach()) ** 2, mask)
            codebook = _masked_mean((codeword - projected.detach()) ** 2, mask)
            losses.append(self.commitment_weight * commitment + self.codebook_weight * codebook)
            quantized = quantized + part
            residual = residual - part
            codes.append(indices)
        return recorder.result(quantized, codes, losses, self.size)

    @torch.no_grad()
    def encode(self, latent: Tensor, mask: Tensor | None = None, n_q: int | None = None) -> Tensor:
        residual, codes = latent, []
        for stage in self.stages(n_q):
            part, indices, _, _ = stage(residual)
            residual = residual - part
            codes.append(indices)
        return torch.stack(codes, dim=1)

    def decode(self, codes: Tensor) -> Tensor:
        latent = None
        for k, stage in enumerate(self.stages(codes.shape[1])):
            part = stage.out_proj(stage.lookup(codes[:, k]))
            latent = part if latent is None else latent + part
        assert latent is not None
        return latent


class DacCodec(CodecModel):
    """Descript Audio Codec: Snake convnets with a factorised, L2-normalised residual VQ."""

    default_framing = "DAC's preprocess (zeros to a whole hop, ceil(T / hop) frames)"

    def __init__(self, config: CodecConfig) -> None:
        super().__init__(config)
        arch = config.dac
        assert arch is not None
        self.encoder = DacEncoder(config)
        self.quantizer = FactorisedResidualVQ(
            config.latent_dim,
            config.codebook_size,
            arch.n_codebooks,
            arch.codebook_dim,
            arch.codebook_loss_weight,
            arch.commitment_loss_weight,
        )
        self.decoder = DacDecoder(config)


CODEC = DacCodec
