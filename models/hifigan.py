"""HiFi-Codec's encoder and decoder: mirrors of the HiFi-GAN V1 generator (Kong et al., 2020).

Structure and parameter names follow AcademiCodec's ``models.py`` (``conv_pre``, ``ups``,
``resblocks``, ``normalize``, ``conv_post``) so its released checkpoints map one to one. Our
differences are length-awareness (masks after every conv, GroupNorm over valid frames) and
framing: callers pad the input to a multiple of the hop, so ``ceil(T / hop)`` frames come
out where the original emits ``floor(T / hop)`` and drops the tail.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from academicodec.models.config import CodecConfig
from academicodec.models.layers import (
    Mask,
    MaskedGroupNorm,
    apply_mask,
    conv_padding,
    length_mask,
    weight_norm,
)

LRELU_SLOPE = 0.1


class ResBlock1(nn.Module):
    """HiFi-GAN's multi-receptive-field block "1": dilated conv pairs with residuals."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(
                    channels,
                    channels,
                    kernel_size,
                    dilation=d,
                    padding=conv_padding(kernel_size, d),
                )
            )
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(
                nn.Conv1d(channels, channels, kernel_size, padding=conv_padding(kernel_size))
            )
            for _ in dilations
        )

    def forward(self, x: Tensor, mask: Mask = None) -> Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            xt = apply_mask(conv1(F.leaky_relu(x, LRELU_SLOPE)), mask)
            xt = apply_mask(conv2(F.leaky_relu(xt, LRELU_SLOPE)), mask)
            x = xt + x
        return x


class HiFiEncoder(nn.Module):
    """Waveform [B, 1, T] -> latent [B, D, T / hop], T a multiple of the hop."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.hificodec
        assert arch is not None
        base = arch.encoder_base_channels
        strides = list(reversed(config.ratios))
        kernels = list(reversed(arch.upsample_kernel_sizes))
        dilations = list(reversed(arch.resblock_dilation_sizes))
        self.strides = strides
        self.num_kernels = len(arch.encoder_resblock_kernel_sizes)
        self.conv_pre = weight_norm(nn.Conv1d(1, base, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        self.normalize = nn.ModuleList()
        for i, (stride, kernel) in enumerate(zip(strides, kernels, strict=True)):
            channels_in, channels = base * 2**i, base * 2 ** (i + 1)
            self.ups.append(
                weight_norm(
                    nn.Conv1d(channels_in, channels, kernel, stride, padding=(kernel - stride) // 2)
                )
            )
            for k, d in zip(arch.encoder_resblock_kernel_sizes, dilations, strict=True):
                self.resblocks.append(ResBlock1(channels, k, tuple(d)))
                groups = channels // arch.groupnorm_channels_per_group
                self.normalize.append(MaskedGroupNorm(groups, channels, eps=1e-6, affine=True))
        final = base * 2 ** len(strides)
        self.conv_post = nn.Conv1d(final, config.latent_dim, 3, padding=1)

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        """``frames``: valid latent frames per item (``None``: all valid)."""
        remaining = math.prod(self.strides)  # stride still to come: stage length = F x this
        mask = _stage_mask(frames, x.shape[-1], remaining)
        x = apply_mask(self.conv_pre(x), mask)
        for i, (up, stride) in enumerate(zip(self.ups, self.strides, strict=True)):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            remaining //= stride
            mask = _stage_mask(frames, x.shape[-1], remaining)
            x = apply_mask(x, mask)
            summed = None
            for j in range(self.num_kernels):
                index = i * self.num_kernels + j
                out = self.resblocks[index](x, mask)
                summed = out if summed is None else summed + out
                summed = self.normalize[index](summed, mask)
            x = summed / self.num_kernels
        x = F.leaky_relu(x)  # the original's default slope (0.01) here
        return apply_mask(self.conv_post(x), mask)


class HiFiGenerator(nn.Module):
    """Latent [B, D, F] -> waveform [B, 1, F * hop] (tanh output)."""

    def __init__(self, config: CodecConfig) -> None:
        super().__init__()
        arch = config.hificodec
        assert arch is not None
        initial = arch.upsample_initial_channel
        self.num_kernels = len(arch.resblock_kernel_sizes)
        self.ratios = list(config.ratios)
        self.conv_pre = weight_norm(nn.Conv1d(config.latent_dim, initial, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = initial
        for i, (rate, kernel) in enumerate(
            zip(config.ratios, arch.upsample_kernel_sizes, strict=True)
        ):
            channels = initial // 2 ** (i + 1)
            self.ups.append(
                weight_norm(
                    nn.ConvTranspose1d(
                        initial // 2**i, channels, kernel, rate, padding=(kernel - rate) // 2
                    )
                )
            )
            for k, d in zip(arch.resblock_kernel_sizes, arch.resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock1(channels, k, tuple(d)))
        self.conv_post = weight_norm(nn.Conv1d(channels, 1, 7, padding=3))

    def forward(self, x: Tensor, frames: Tensor | None = None) -> Tensor:
        scale = 1  # upsampling so far: stage length = F x this
        mask = _stage_mask(frames, x.shape[-1], scale)
        x = apply_mask(self.conv_pre(x), mask)
        for i, (up, rate) in enumerate(zip(self.ups, self.ratios, strict=True)):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            scale *= rate
            mask = _stage_mask(frames, x.shape[-1], scale)
            x = apply_mask(x, mask)
            summed = None
            for j in range(self.num_kernels):
                out = self.resblocks[i * self.num_kernels + j](x, mask)
                summed = out if summed is None else summed + out
            x = summed / self.num_kernels
        x = F.leaky_relu(x, LRELU_SLOPE)  # AcademiCodec's generator: 0.1 here too
        return apply_mask(self.conv_post(x).tanh(), mask)


def _stage_mask(frames: Tensor | None, length: int, factor: int) -> Mask:
    """Mask of a stage that holds ``factor`` steps per latent frame."""
    return None if frames is None else length_mask(frames * factor, length)
