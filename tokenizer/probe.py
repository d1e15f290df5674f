"""``--batch-seconds auto``: the smallest batch that runs the encoder near its best rate.

A GPU needs batches big enough to fill it, but no bigger: a batch that fills memory only
delays the first codes, makes the loader's work lumpy and leaves fewer batches to overlap
reading with encoding. So the probe encodes random audio at a few batch sizes (at the run's
precision, with cuDNN tuning as the run will) and keeps the smallest whose rate is within
``TARGET`` of the best; a size that runs out of memory ends the probe. It costs a few
seconds at the start of a run and changes only speed, never codes.
"""

from __future__ import annotations

import time

import torch

from academicodec.models import CodecModel
from academicodec.models.precision import numerics

PROBE_SECONDS = (30.0, 60.0, 120.0, 240.0, 480.0, 960.0)  # audio per batch tried
PROBE_ROW_SECONDS = 10.0  # each row's length
TARGET = 0.9


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def _rate(model: CodecModel, seconds: float, device: str, n_q: int | None) -> float:
    """Audio seconds encoded per second at a batch of ``seconds`` (after one warm-up)."""
    length = max(1, round(PROBE_ROW_SECONDS * model.sample_rate / model.hop_length))
    length *= model.hop_length
    rows = max(1, round(seconds / PROBE_ROW_SECONDS))
    wav = 0.1 * torch.randn(rows, 1, length, device=device)
    lengths = torch.full((rows,), length, device=device)
    model.encode(wav, lengths, n_q, one_call=True)  # warm-up: tuning, allocator
    _sync(device)
    begin = time.perf_counter()
    for _ in range(2):
        model.encode(wav, lengths, n_q, one_call=True)
    _sync(device)
    return 2 * rows * length / model.sample_rate / (time.perf_counter() - begin)


def probe_batch_seconds(
    model: CodecModel, device: str, precision: str, n_q: int | None
) -> tuple[float, dict[str, float]]:
    """The chosen batch seconds and the rate (audio-s/s) measured at each size tried."""
    rates: dict[str, float] = {}
    with torch.inference_mode(), numerics(precision, device, autotune=True):
        for seconds in PROBE_SECONDS:
            try:
                rates[f"{seconds:g}"] = round(_rate(model, seconds, device, n_q), 1)
            except torch.OutOfMemoryError:
                break
            finally:
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    if not rates:
        return PROBE_SECONDS[0], rates
    best = max(rates.values())
    chosen = min(float(s) for s, rate in rates.items() if rate >= TARGET * best)
    return chosen, rates
