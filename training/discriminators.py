"""GAN discriminators: HiFi-GAN's multi-period (MPD) and multi-scale (MSD), and Encodec's
multi-scale STFT discriminator (MS-STFT). Each returns, per sub-discriminator, its logits
and the feature maps used for feature matching."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrizations

from academicodec.models.config import DiscriminatorConfig

Outputs = tuple[list[Tensor], list[list[Tensor]]]  # logits per sub-disc, feature maps per sub-disc


def _run_stack(
    convs: nn.ModuleList, conv_post: nn.Module, x: Tensor, slope: float
) -> tuple[Tensor, list[Tensor]]:
    """Leaky-ReLU conv stack; returns the flattened logits and every layer's feature map."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), slope)
        features.append(x)
    x = conv_post(x)
    features.append(x)
    return x.flatten(1), features


def _layout(x: Tensor, channels_last: bool) -> Tensor:
    """A 2-D discriminator's input in the memory layout its weights use (channels-last on
    CUDA: cuDNN's tensor-core kernels want NHWC, and NCHW costs a transpose per conv)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _width(channels: int, scale: float) -> int:
    return max(4, int(round(channels * scale)))


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's DiscriminatorP: the waveform folded into [T / p, p] and 2-D convs."""

    channels_last = False  # set by Discriminators.use_channels_last

    def __init__(self, period: int, width: float = 1.0) -> None:
        super().__init__()
        self.period = period
        channels = [1] + [_width(c, width) for c in (32, 128, 512, 1024, 1024)]
        self.convs = nn.ModuleList(
            parametrizations.weight_norm(
                nn.Conv2d(
                    channels[i], channels[i + 1], (5, 1), (3 if i < 4 else 1, 1), padding=(2, 0)
                )
            )
            for i in range(5)
        )
        self.conv_post = parametrizations.weight_norm(
            nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0))
        )

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        batch, channels, steps = x.shape
        if steps % self.period:
            pad = self.period - steps % self.period
            x = F.pad(x, (0, pad), mode="reflect" if pad < steps else "constant")
            steps += pad
        x = x.view(batch, channels, steps // self.period, self.period)
        return _run_stack(self.convs, self.conv_post, _layout(x, self.channels_last), 0.1)


class ScaleDiscriminator(nn.Module):
    """HiFi-GAN's DiscriminatorS (MelGAN's): grouped strided 1-D convs."""

    def __init__(self, width: float = 1.0, spectral: bool = False) -> None:
        super().__init__()
        norm = parametrizations.spectral_norm if spectral else parametrizations.weight_norm
        c = [_width(v, width) for v in (128, 128, 256, 512, 1024, 1024, 1024)]
        specs = [  # (in, out, kernel, stride, groups, padding)
            (1, c[0], 15, 1, 1, 7),
            (c[0], c[1], 41, 2, 4, 20),
            (c[1], c[2], 41, 2, 16, 20),
            (c[2], c[3], 41, 4, 16, 20),
            (c[3], c[4], 41, 4, 16, 20),
            (c[4], c[5], 41, 1, 16, 20),
            (c[5], c[6], 5, 1, 1, 2),
        ]
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(i, o, k, s, groups=_groups(g, i, o), padding=p))
            for i, o, k, s, g, p in specs
        )
        self.conv_post = norm(nn.Conv1d(c[6], 1, 3, 1, padding=1))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return _run_stack(self.convs, self.conv_post, x, 0.1)


def _groups(groups: int, channels_in: int, channels_out: int) -> int:
    """Shrunken widths may not divide by the original group count."""
    while groups > 1 and (channels_in % groups or channels_out % groups):
        groups //= 2
    return groups


class STFTDiscriminator(nn.Module):
    """Encodec's DiscriminatorSTFT: 2-D convs over the complex STFT (real, imag channels)."""

    channels_last = False  # set by Discriminators.use_channels_last

    def __init__(self, n_fft: int, filters: int = 32) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        kernel, norm = (3, 9), parametrizations.weight_norm
        self.convs = nn.ModuleList([norm(nn.Conv2d(2, filters, kernel, padding=(1, 4)))])
        for dilation in (1, 2, 4):
            self.convs.append(
                norm(
                    nn.Conv2d(
                        filters,
                        filters,
                        kernel,
                        (1, 2),
                        dilation=(dilation, 1),
                        padding=(dilation, 4),
                    )  # fmt: skip
                )
            )
        self.convs.append(norm(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1))))
        self.conv_post = norm(nn.Conv2d(filters, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        spec = torch.stft(
            x[:, 0].float(), self.n_fft, self.hop, window=self.window, normalized=True,
            center=False, return_complex=True,
        )  # fmt: skip
        z = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2, frames, freq]
        return _run_stack(self.convs, self.conv_post, _layout(z, self.channels_last), 0.2)


class Discriminators(nn.Module):
    """Every sub-discriminator a preset asks for, run on the same waveform batch."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.subs = nn.ModuleList()
        if "mpd" in config.kinds:
            self.subs.extend(PeriodDiscriminator(p, config.width) for p in config.periods)
        if "msd" in config.kinds:
            for scale in range(config.msd_scales):
                self.subs.append(ScaleDiscriminator(config.width, spectral=scale == 0))
        if "msstft" in config.kinds:
            self.subs.extend(STFTDiscriminator(n, config.stft_filters) for n in config.stft_n_ffts)

    def use_channels_last(self) -> None:
        """2-D discriminators' weights and inputs in channels-last layout (for CUDA)."""
        for sub in self.subs:
            if isinstance(sub, PeriodDiscriminator | STFTDiscriminator):
                sub.to(memory_format=torch.channels_last)
                sub.channels_last = True

    def forward(self, wav: Tensor) -> Outputs:
        logits, features = [], []
        msd_index = 0
        for sub in self.subs:
            x = wav
            if isinstance(sub, ScaleDiscriminator):
                for _ in range(msd_index):  # scale k sees the waveform average-pooled k times
                    x = F.avg_pool1d(x, 4, 2, padding=2)
                msd_index += 1
            out, feats = sub(x)
            logits.append(out)
            features.append(feats)
        return logits, features
