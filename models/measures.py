"""Signal measures shared by training's validation and the evaluation stage, which may not
import each other (docs/architecture.md): the lowest layer both may use is ``models``."""

from __future__ import annotations

import torch
from torch import Tensor


def si_sdr(estimate: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant SDR in dB per item ([B, T] or [B, 1, T]), higher is better."""
    estimate = estimate.reshape(estimate.shape[0], -1).double()
    target = target.reshape(target.shape[0], -1).double()
    estimate = estimate - estimate.mean(dim=1, keepdim=True)
    target = target - target.mean(dim=1, keepdim=True)
    scale = (estimate * target).sum(1, keepdim=True) / (target.pow(2).sum(1, keepdim=True) + eps)
    projection = scale * target
    noise = estimate - projection
    ratio = projection.pow(2).sum(1) / (noise.pow(2).sum(1) + eps)
    return (10 * torch.log10(ratio + eps)).float()
