"""The numerics codes are made with: ``fp32`` (IEEE float32 everywhere), ``tf32`` or ``bf16``.

Codes are training targets for months of LM training, so two runs over the same audio must
agree and the index must say how they were made. PyTorch's defaults are not a contract:
cuDNN convolutions use TF32 unless told otherwise (10-bit mantissa inputs), so ``fp32`` turns
TF32 off on every backend rather than trusting the defaults. ``tf32`` allows it on CUDA
(CPUs have no TF32 path: there it is fp32). ``bf16`` runs the encoder under bf16 autocast;
the nearest-codeword search always runs in float32, since a distance rounded to 8 bits of
mantissa turns near-ties into different codes.

cuDNN's autotuner (``cudnn.benchmark``) picks kernels by timing them, once per new input
shape, so two runs may round differently and a run of ever-new shapes pays a tuning per
conv layer per shape. It runs only where the caller says its shapes are few
(``autotune=True``: the tokenizer's one-call grid, at most one shape per length bucket)
and never for ``fp32``, whose codes must repeat bit for bit.

The backend switches are process-wide, autocast is thread-local: ``scheduling.run_groups``
carries the caller's autocast state into its worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from academicodec.errors import UserError

PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(precision: str) -> None:
    """One line naming ``--precision`` for a value that is none of ``PRECISIONS``."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision: choose from {', '.join(PRECISIONS)}, not {precision!r}")


def _switches() -> list[object]:
    backends = torch.backends
    return [backends.cuda.matmul, backends.cudnn.conv, backends.mkldnn.matmul, backends.mkldnn.conv]


@contextmanager
def numerics(precision: str, device: str | torch.device, autotune: bool = False) -> Iterator[None]:
    """Run the body with ``precision``'s matmul/conv settings and autocast on ``device``;
    ``autotune``: the body feeds few input shapes (cuDNN may tune, except at fp32). Every
    switch is restored on exit."""
    check_precision(precision)
    switches = _switches()
    saved = [switch.fp32_precision for switch in switches]
    tuning = torch.backends.cudnn.benchmark
    cuda_switches = switches[:2]
    for switch in switches:
        tf32 = precision == "tf32" and switch in cuda_switches
        switch.fp32_precision = "tf32" if tf32 else "ieee"
    torch.backends.cudnn.benchmark = autotune and precision != "fp32"
    try:
        device_type = torch.device(device).type
        with torch.autocast(device_type, torch.bfloat16, enabled=precision == "bf16"):
            yield
    finally:
        for switch, value in zip(switches, saved, strict=True):
            switch.fp32_precision = value
        torch.backends.cudnn.benchmark = tuning


@contextmanager
def exact_float32(device_type: str) -> Iterator[None]:
    """Autocast off: the body computes in float32 whatever the caller's precision."""
    with torch.autocast(device_type, enabled=False):
        yield


def autocast_state(device_type: str) -> tuple[bool, torch.dtype]:
    """This thread's autocast setting for ``device_type`` (to carry into another thread)."""
    return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
