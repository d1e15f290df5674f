"""GAN and reconstruction losses: LSGAN or hinge adversarial terms, feature matching, and
multi-resolution log-mel L1. Weights come from the preset (HiFi-Codec: mel 45, FM 2, VQ 10)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from academicodec.models.config import MelLossConfig
from academicodec.models.mel import MelSpectrogram


def generator_adversarial_loss(fake_logits: list[Tensor], kind: str) -> Tensor:
    if kind == "lsgan":
        losses = [torch.mean((1 - logit) ** 2) for logit in fake_logits]
    else:  # hinge
        losses = [torch.mean(F.relu(1 - logit)) for logit in fake_logits]
    return torch.stack(losses).sum()


def discriminator_loss(real_logits: list[Tensor], fake_logits: list[Tensor], kind: str) -> Tensor:
    losses = []
    for real, fake in zip(real_logits, fake_logits, strict=True):
        if kind == "lsgan":
            losses.append(torch.mean((1 - real) ** 2) + torch.mean(fake**2))
        else:
            losses.append(torch.mean(F.relu(1 - real)) + torch.mean(F.relu(1 + fake)))
    return torch.stack(losses).sum()


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Sum over sub-discriminators and layers of the mean |real - fake| (HiFi-GAN)."""
    losses = [
        torch.mean(torch.abs(r.detach() - f))
        for real_maps, fake_maps in zip(real, fake, strict=True)
        for r, f in zip(real_maps, fake_maps, strict=True)
    ]
    return torch.stack(losses).sum()


class MultiResolutionMelLoss(nn.Module):
    """Mean over resolutions of the L1 distance between log-mel spectrograms."""

    def __init__(self, sample_rate: int, config: MelLossConfig) -> None:
        super().__init__()
        self.mels = nn.ModuleList(
            MelSpectrogram(
                sample_rate, n_fft, hop, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax
            )
            for n_fft, hop in zip(config.n_ffts, config.hops, strict=True)
        )

    def forward(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        losses = [F.l1_loss(mel(reconstruction), mel(target)) for mel in self.mels]
        return torch.stack(losses).mean()
