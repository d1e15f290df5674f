"""Progress reporting that library code can take without printing anything itself.

Long-running library functions accept a ``ProgressFactory``; the CLI passes ``tqdm_progress``
(bars on stderr), Python callers pass nothing and get silence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class ProgressBar(Protocol):
    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[int, str], ProgressBar]


class _Silent:
    def update(self, n: int = 1) -> None:
        return None

    def close(self) -> None:
        return None


def silent_progress(total: int, description: str) -> ProgressBar:
    return _Silent()


def tqdm_progress(total: int, description: str) -> ProgressBar:
    """A tqdm bar on stderr, for interactive use (the CLI)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="item", dynamic_ncols=True, leave=False)
