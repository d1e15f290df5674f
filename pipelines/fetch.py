"""An item's encoded bytes, fetched ahead by threads where they live in a bucket.

Reading an object costs a round trip (tens of milliseconds on S3: more than decoding the
audio), so a reader that fetched one item at a time would mostly wait. ``prefetch`` keeps
up to ``ahead`` fetches in flight (threads: waiting on the network releases the GIL) and
hands the bytes out in order; local files are left to ``read_item``'s own reads (no
threads, no copies), so local runs are unchanged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from academicodec import storage
from academicodec.pipelines.items import ShardItem

AHEAD = 16


def source_bytes(item: ShardItem) -> bytes | None:
    """What ``read_item`` decodes, where it is one read: a shard member (a ranged read at
    its recorded offset) or an audio file at a URL that the item covers whole; ``None``
    for a local file or a window of a longer one (read in place, only the window's
    blocks) or a serialised cut."""
    if item.member is not None:
        assert item.span is not None, "shard members are listed with their offsets"
        offset, size = item.span
        return storage.read_bytes(item.source, offset, size)
    if _whole_remote_file(item):
        return storage.read_bytes(item.source)
    return None


def _whole_remote_file(item: ShardItem) -> bool:
    return item.is_file and item.whole_file and storage.is_url(item.source)


def prefetch(items: list[ShardItem], ahead: int = AHEAD) -> Iterator[bytes | Exception | None]:
    """For each item, in order: its bytes if they come from a bucket (fetched up to
    ``ahead`` items early; a failed fetch is its exception, for the caller to report),
    else ``None``."""
    remote = [
        _whole_remote_file(item) or (item.member is not None and storage.is_url(item.source))
        for item in items
    ]
    if not any(remote):
        yield from (None for _ in items)
        return
    with ThreadPoolExecutor(max_workers=ahead) as pool:
        window: deque[Future[bytes | None] | None] = deque()
        upcoming = iter(zip(items, remote, strict=True))

        def submit_next() -> None:
            for item, fetch in upcoming:
                window.append(pool.submit(source_bytes, item) if fetch else None)
                return

        for _ in range(ahead):
            submit_next()
        while window:
            future = window.popleft()
            submit_next()
            if future is None:
                yield None
            else:
                yield future.exception() or future.result()  # type: ignore[misc]
