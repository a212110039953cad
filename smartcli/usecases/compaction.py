"""``smart compact``: rewrite segments to drop the rows of removed and replaced files."""

from __future__ import annotations

from pathlib import Path

from smartcli.store.catalog import reads
from smartcli.usecases.store_access import reading, writing


def compact(root: Path, wait: bool = False):
    """A :class:`~smartcli.store.compaction.CompactionResult`, with what the store holds afterwards:
    its ``segments`` and ``bytes``, and since the old segments stay for ``grace_seconds`` (searches
    that started before can finish) ``store_bytes_before`` and ``bytes_after_grace``."""
    from smartcli.store.catalog.retirement import SEGMENT_GRACE_SECONDS
    from smartcli.store.compaction import compact as rewrite

    # Sizes as `smart status` measures them, outside the writer (whose catalog log is not folded in yet).
    with reading(root, verify=False) as store:
        before = reads.stats(store)["bytes"]
    with writing(root, wait) as store:
        result = rewrite(store)
    with reading(root, verify=False) as store:
        stats = reads.stats(store)
    result.segments, result.bytes = stats["segments"], stats["bytes"]
    result.store_bytes_before, result.bytes_after_grace = before, stats["live_bytes"]
    result.grace_seconds = SEGMENT_GRACE_SECONDS
    return result
