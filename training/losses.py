"""GAN and reconstruction losses: LSGAN or hinge adversarial terms, feature matching, and
multi-resolution log-mel L1. Weights come from the preset (HiFi-Codec: mel 45, FM 2, VQ 10)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from academicodec import distrib
from academicodec.models.config import MelLossConfig
from academicodec.models.mel import MelSpectrogram

# Losses take float32 copies of bf16 logits and maps: their means are an fp32 island
# (training/precision.py).


def generator_adversarial_loss(fake_logits: list[Tensor], kind: str) -> Tensor:
    fake_logits = [logit.float() for logit in fake_logits]
    if kind == "lsgan":
        losses = [torch.mean((1 - logit) ** 2) for logit in fake_logits]
    else:  # hinge
        losses = [torch.mean(F.relu(1 - logit)) for logit in fake_logits]
    return torch.stack(losses).sum()


def discriminator_loss(real_logits: list[Tensor], fake_logits: list[Tensor], kind: str) -> Tensor:
    losses = []
    for real, fake in zip(real_logits, fake_logits, strict=True):
        real, fake = real.float(), fake.float()
        if kind == "lsgan":
            losses.append(torch.mean((1 - real) ** 2) + torch.mean(fake**2))
        else:
            losses.append(torch.mean(F.relu(1 - real)) + torch.mean(F.relu(1 + fake)))
    return torch.stack(losses).sum()


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Sum over sub-discriminators and layers of the mean |real - fake| (HiFi-GAN)."""
    losses = [
        torch.mean(torch.abs(r.detach().float() - f.float()))
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
        """Always float32, whatever autocast the caller runs under (an fp32 island)."""
        with torch.autocast(reconstruction.device.type, enabled=False):
            reconstruction, target = reconstruction.float(), target.float()
            losses = [F.l1_loss(mel(reconstruction), mel(target)) for mel in self.mels]
            return torch.stack(losses).mean()


class LossBalancer:
    """Encodec's loss balancer (Défossez et al., 2022, §3.4), for presets with
    ``train.use_balancer: true``.

    Each loss's gradient with respect to the model output is rescaled so that its norm is
    ``weight / sum(weights) * total_norm`` (norms smoothed by an EMA, averaged over ranks),
    which makes the weights mean "share of the gradient" independent of each loss's scale.
    ``gradient`` returns the combined output gradient; the caller backpropagates it together
    with the losses that do not depend on the output (the quantizer's) in one backward, so
    the graph is walked once and DDP all-reduces the gradients once (audiocraft's order).
    """

    def __init__(
        self,
        weights: dict[str, float],
        total_norm: float = 1.0,
        ema_decay: float = 0.999,
        epsilon: float = 1e-12,
    ) -> None:
        self.weights = weights
        self.total_norm = total_norm
        self.ema_decay = ema_decay
        self.epsilon = epsilon
        self.norms: dict[str, Tensor] = {}
        self.fix: dict[str, float] = {}
        # Each loss's share of the combined output gradient's norm at the last call.
        self.shares: dict[str, float] = {}

    def gradient(self, losses: dict[str, Tensor], output: Tensor) -> Tensor:
        """The balanced sum of the losses' gradients with respect to ``output``."""
        total_weight = sum(self.weights[name] for name in losses)
        combined = torch.zeros_like(output)
        scaled_norms = {}
        grads = {
            name: torch.autograd.grad(loss, [output], retain_graph=True)[0]
            for name, loss in losses.items()
        }
        norms = distrib.all_reduce_mean(torch.stack([g.detach().norm() for g in grads.values()]))
        if not bool(torch.isfinite(norms).all()):
            # A non-finite gradient: the trainer skips this step, and the smoothed norms
            # must not remember it (one NaN in an EMA would poison every later step).
            return combined + float("nan")
        for (name, grad), norm in zip(grads.items(), norms, strict=True):
            previous = self.norms.get(name)
            previous = None if previous is None else previous.to(norm.device)
            smoothed = norm if previous is None else self.ema_decay * previous + norm
            fix = self.ema_decay * self.fix.get(name, 0.0) + 1.0  # EMA bias correction
            self.norms[name], self.fix[name] = smoothed, fix
            scale = self.weights[name] / total_weight * self.total_norm
            divisor = smoothed / fix + self.epsilon
            combined += scale * grad / divisor
            scaled_norms[name] = float(scale * norm / divisor)  # rank-averaged already
        everything = sum(scaled_norms.values()) or 1.0
        self.shares = {name: value / everything for name, value in scaled_norms.items()}
        return combined

    def state_dict(self) -> dict[str, Any]:
        return {"norms": {k: v.detach().cpu() for k, v in self.norms.items()}, "fix": self.fix}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.norms = {k: v.clone() for k, v in state["norms"].items()}
        self.fix = dict(state["fix"])
