"""Where a ``tokenize`` run's time went, and which encoder input shapes it fed.

A GPU that waits for the loader, for copies or for the writer looks the same from outside
as a slow encoder; ``tokenize_report.json`` says which it is. Spans are wall seconds on the
host; the encode span ends with a device synchronisation (the codes' copy back would wait
for it anyway), so it holds the GPU's compute and ``codes_back`` only the copy. Host to
device copies run on a side stream, overlapped with compute: they are timed by CUDA events
(GPU seconds, not on the critical path unless ``loader_wait`` is large too).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

SPANS = ("first_batch", "loader_wait", "encode", "codes_back", "write", "write_wait")


class Timer:
    """Seconds per span (thread-safe: the writer thread adds ``write``), CUDA copy events,
    and the set of encoder input shapes."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.device = device
        self.seconds = dict.fromkeys(SPANS, 0.0)
        self.shapes: set[tuple[int, ...]] = set()
        self.calls = 0
        self.copies: list[tuple[Any, Any]] = []
        self._lock = threading.Lock()

    @contextmanager
    def span(self, name: str, sync: bool = False) -> Iterator[None]:
        begin = time.perf_counter()
        try:
            yield
        finally:
            if sync and self.cuda:
                torch.cuda.synchronize(self.device)
            with self._lock:
                self.seconds[name] += time.perf_counter() - begin

    def shape(self, shape: torch.Size) -> None:
        """One encoder call at ``shape``."""
        self.shapes.add(tuple(shape))
        self.calls += 1

    def report(self, wall: float, shapes: bool) -> dict[str, Any]:
        """Seconds per span and their share of ``wall``; the shapes (with ``shapes``: a
        one-call run, whose shapes are a fixed grid)."""
        to_device = sum(start.elapsed_time(end) for start, end in self.copies) / 1000.0
        spans = {name: round(value, 3) for name, value in self.seconds.items()}
        spans["to_device_gpu"] = round(to_device, 3)
        return {
            "seconds": spans,
            "share_of_wall": {k: round(v / wall, 3) if wall else 0.0 for k, v in spans.items()},
            "encoder_calls": self.calls,
            "encoder_shapes": len(self.shapes),
            "shapes": sorted(list(s) for s in self.shapes) if shapes else None,
        }
