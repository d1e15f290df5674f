"""Shared bits of the benchmarks: best-of-N timing, machine description, the JSON last line."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any


def best_time(
    run: Callable[[], Any], repeats: int = 3, setup: Callable[[], Any] | None = None
) -> float:
    """The fastest of ``repeats`` runs (least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def report(result: dict[str, Any]) -> None:
    """Print the benchmark's result as its last line (one JSON object with "bench")."""
    print(json.dumps({**result, "machine": machine()}))
