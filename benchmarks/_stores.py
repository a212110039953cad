"""What the tune and fusion benchmarks share: a store opened for reading with its model, and its outline pairs."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from smartcli import defaults
from smartcli.index import _reading
from smartcli.ingest.outlines import mine_indexed
from smartcli.models.registry import load_encoder
from smartcli.search.searcher import Searcher
from smartcli.search.tuning import Pair


@contextmanager
def open_store(path, device: str = "cpu", shortlist: int | None = defaults.CANDIDATES):
    """(store, encoder, searcher) while the store is open for reading; the searcher is warm (the
    compiled 1-bit kernel, segments kept in memory), as `smart tune` and `smart serve` run it."""
    with _reading(Path(path)) as store, store.read_snapshot():
        info = store.model
        encoder = load_encoder(info.spec, device, info.extra)
        yield store, encoder, Searcher(store, encoder, device=device, cache_bytes=defaults.WARM_CACHE_BYTES, shortlist=shortlist)


def outline_pairs(searcher, heading_path: bool = False) -> list[Pair]:
    """The pairs `smart tune` mines from the outlines of the searcher's indexed PDFs."""
    found, _ = mine_indexed(searcher.items, heading_path)
    return [Pair(query, pages) for query, pages in found]
