"""Mixed precision in a training step: one autocast over the whole step, and the float32
islands inside it, listed here in one place.

Under ``--precision bf16`` the generator (encoder, decoder), every discriminator and the
feature-matching maps compute under autocast (CUDA, or CPU autocast on a CPU, so the
coverage is testable anywhere: ``tests/training/test_precision.py``). What stays float32,
and why:
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from academicodec.errors import UserError

TRAIN_PRECISIONS = ("auto", "bf16", "fp16", "fp32")

# Island -> why it stays float32. ``ISLAND_MODULES`` names the module paths inside the
# generator and discriminators that belong to one (their layers' outputs are float32).
FP32_ISLANDS = {
    "codebook distances": "the quantizer (nearest-codeword search, codebook and commitment "
    "losses, factorised-code projections) and the codebook upkeep (EMA, k-means, restarts): "
    "a distance rounded to 8 mantissa bits turns near-ties into other codes",
    "mel and STFT losses": "MultiResolutionMelLoss: logs of small magnitudes and the L1 "
    "between them need float32's range and mantissa",
    "loss reductions": "adversarial and feature-matching means are taken over float32 "
    "copies of the logits and maps (a bf16 sum over a million elements loses the small terms)",
    "loss balancer norms": "gradient norms and their EMAs (LossBalancer) are float32",
}
ISLAND_MODULES = {"model.quantizer": "codebook distances"}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 on CUDA, fp32 elsewhere (a CPU without bf16 units gains nothing);
    bf16 and fp32 run on any device, fp16 on CUDA only."""
    if precision not in TRAIN_PRECISIONS:
        raise UserError(f"--precision must be bf16, fp16, fp32 or auto, not {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device (use bf16 or fp32 on CPU)")
    return precision


@contextmanager
def training_autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Autocast at ``precision`` (resolved) on ``device``; nothing for fp32."""
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    with torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32"):
        yield


@contextmanager
def float32(device: torch.device | str) -> Iterator[None]:
    """An island: autocast off for the body (inputs must be cast up by the caller)."""
    with torch.autocast(torch.device(device).type, enabled=False):
        yield
