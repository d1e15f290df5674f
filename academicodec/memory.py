"""Peak resident memory of this process while a block runs (benchmarks and memory tests)."""

from __future__ import annotations

import resource
import threading
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class RssSampler:
    """``with RssSampler() as rss: ...`` then ``rss.peak - rss.baseline`` (MB), sampled
    every 2 ms from /proc (``ru_maxrss`` cannot be reset, so it cannot measure a block)."""

    def __enter__(self) -> RssSampler:
        self.baseline = self.peak = rss_mb()
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, rss_mb())
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.baseline
