"""Pooled vectors read in place from the segment files (search/pooled.py, Segment.mapped_pooled):
the same vectors and scores as the copy held in the process, on real pages and on an old store."""

import numpy as np
import pytest

from smartcli import Index
from smartcli.search import firststage
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store
from smartcli.store.catalog.reads import live_items
from tests.unit.test_kernel import _store_of, real_pages  # noqa: F401  (real_pages: a fixture)
from tests.unit.test_migration import schema1_copy

QUERIES = ["how do I change the default terminal", "tyre pressure", "watering houseplants in winter", "bash"]


def _searchers(store, monkeypatch):
    """(held, in place): two warm searchers of one store, the second reading its anchors in place."""
    monkeypatch.setattr(firststage, "INT8_SCAN_PAGES", 10**9)
    held = Searcher(store, None, device="cpu", cache_bytes=1 << 20, shortlist=3)
    monkeypatch.setattr(firststage, "INT8_SCAN_PAGES", 0)
    in_place = Searcher(store, None, device="cpu", cache_bytes=1 << 20, shortlist=3)
    assert not held.pooled.in_place and in_place.pooled.in_place
    return held, in_place


@pytest.mark.parametrize("fmt", ["binary", "int8"])
def test_pooled_vectors_read_in_place_equal_the_segments_and_score_as_before(tmp_path, real_pages, fmt, monkeypatch):  # noqa: F811
    pages, encoder = real_pages
    store = _store_of(tmp_path / fmt, pages, encoder, fmt)
    held, in_place = _searchers(store, monkeypatch)
    everything = np.arange(len(held))
    items = in_place.items.many(everything)
    for index, item in enumerate(items):  # bit for bit what the segment holds for the item's row
        with store.open_segment(item.segment) as segment:
            np.testing.assert_array_equal(in_place.pooled[index], segment.pooled([item.row])[0])
    np.testing.assert_array_equal(in_place.pooled[everything[::-2]], held.pooled[everything[::-2]])
    queries = encoder.encode_queries(QUERIES)
    q = np.stack([e.pooled for e in queries]).astype(np.float32)
    np.testing.assert_allclose(in_place.pooled.matmul(q), held.pooled.matmul(q), atol=1e-6)
    np.testing.assert_allclose(in_place.pooled.dot(q[0], everything[1::2]), held.pooled.dot(q[0], everything[1::2]), atol=1e-6)
    weights = Weights()
    for query in queries:  # two-stage search: the same pages, the same scores
        (a,) = held.search_encoded([query], weights, 5, snippets=False)
        (b,) = in_place.search_encoded([query], weights, 5, snippets=False)
        assert [h.item.item_id for h in a] == [h.item.item_id for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-6)
        np.testing.assert_allclose([h.anchor for h in a], [h.anchor for h in b], atol=1e-6)
    # The process holds the int8 copy and two integers a page, not the float32 vectors.
    assert in_place.pooled.nbytes < held.pooled.nbytes


def test_an_old_store_searches_with_its_pooled_vectors_in_place(tmp_path, monkeypatch):
    root, _ = schema1_copy(tmp_path)
    store = Store.open(root)
    try:
        held, in_place = _searchers(store, monkeypatch)
        items = [i for i in live_items(store) if i.n_tokens]
        assert items
        np.testing.assert_array_equal(in_place.pooled[np.arange(len(held))], held.pooled[np.arange(len(held))])
        query = in_place.stored_query(items[0].path, items[0].page)[0]
        (a,) = held.search_encoded([query], Weights(), 3, snippets=False)
        (b,) = in_place.search_encoded([query], Weights(), 3, snippets=False)
        assert [h.item.item_id for h in a] == [h.item.item_id for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-6)
    finally:
        store.close()
    monkeypatch.setattr(firststage, "INT8_SCAN_PAGES", 0)
    with Index.open(root) as index:
        hits = index.search("repotting ferns", k=1)
    assert hits[0].path.endswith("with-blank-page.pdf") and hits[0].page == 1
