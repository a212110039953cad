"""The scalable first stage (search/firststage.py): its lexical term from the segments' postings,
the int8 anchor scan, and the postings of both segment layouts (format 3 writes them; older
segments keep per-token ids they are made from)."""

import math

import numpy as np
import pytest

from smartcli import Index
from smartcli.search import firststage
from smartcli.search.firststage import FirstStage
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store
from smartcli.store.catalog.reads import live_items
from tests.unit.test_kernel import _store_of, real_pages  # noqa: F401  (real_pages: a fixture)
from tests.unit.test_migration import schema1_copy

QUERIES = ["how do I change the default terminal", "tyre pressure", "watering houseplants in winter", "bash"]


def expected_lexical(pages, query_ids, common_share=None) -> np.ndarray:
    """Per page: sum over the query's tokens of idf(v) / ln(N) where the page holds v, over the
    query's token count; a word on more than ``common_share`` of the pages counts nothing."""
    held = [set(np.asarray(e.token_ids).tolist()) for _, _, _, e in pages]
    n = len(held)
    out = np.zeros(n)
    for v in np.asarray(query_ids).tolist():
        df = sum(v in h for h in held)
        if not df or (common_share is not None and df > common_share * n):
            continue
        weight = max(math.log(n / df), 0.0) / math.log(n) / len(query_ids)
        out += [weight if v in h else 0.0 for h in held]
    return out


@pytest.mark.parametrize("compiled", [True, False])
def test_the_lexical_term_on_real_pages_counts_the_query_words_each_page_holds(tmp_path, real_pages, compiled, monkeypatch):  # noqa: F811
    pages, encoder = real_pages
    monkeypatch.setattr(firststage, "LEXICAL_FROM_PAGES", 0)
    store = _store_of(tmp_path / "s", pages, encoder, "binary")
    searcher = Searcher(store, None, device="cpu", cache_bytes=(1 << 20) if compiled else 0, shortlist=None)
    first = searcher.first_stage()
    assert first.compiled == compiled and first.vocabularies
    by_text = {i.text: n for n, i in enumerate(searcher.items.many(range(len(searcher))))}
    assert len(by_text) == len(pages)
    order = [by_text[text] for _, _, text, _ in pages]
    for query in encoder.encode_queries(QUERIES):
        got = first.lexical(query.token_ids)
        np.testing.assert_allclose(got[order], expected_lexical(pages, query.token_ids, firststage.COMMON_SHARE), atol=1e-6)


@pytest.mark.parametrize("compiled", [True, False])
def test_words_on_most_pages_are_skipped_and_the_shortlist_is_its_definitions(tmp_path, real_pages, compiled, monkeypatch):  # noqa: F811
    """With COMMON_SHARE, a word held by more than that share of the pages adds nothing (its
    postings are not read), and the shortlist is still exactly the top pages by anchor cosine +
    LEXICAL_WEIGHT * that lexical term, computed here from the pages themselves (the int8 scan
    and the in-place anchors included when compiled)."""
    pages, encoder = real_pages
    monkeypatch.setattr(firststage, "LEXICAL_FROM_PAGES", 0)
    monkeypatch.setattr(firststage, "INT8_SCAN_PAGES", 0)
    monkeypatch.setattr(firststage, "COMMON_SHARE", 0.4)
    store = _store_of(tmp_path / "s", pages, encoder, "binary")
    searcher = Searcher(store, None, device="cpu", cache_bytes=(1 << 20) if compiled else 0, shortlist=None)
    first = searcher.first_stage()
    assert first.compiled == compiled and searcher.pooled.in_place == compiled
    by_text = {i.text: n for n, i in enumerate(searcher.items.many(range(len(searcher))))}
    order = np.array([by_text[text] for _, _, text, _ in pages])
    anchors = np.stack([e.pooled for _, _, _, e in pages]).astype(np.float32)
    skipped = 0
    for query in encoder.encode_queries(QUERIES + ["the terminal of the shell and its default settings"]):
        lexical = expected_lexical(pages, query.token_ids, common_share=0.4)
        skipped += int(np.abs(lexical - expected_lexical(pages, query.token_ids)).max() > 1e-6)
        np.testing.assert_allclose(first.lexical(query.token_ids)[order], lexical, atol=1e-6)
        score = anchors @ query.pooled + firststage.LEXICAL_WEIGHT * lexical
        for size in (3, 6):
            expected = np.sort(order[np.argsort(-score, kind="stable")[:size]])
            np.testing.assert_array_equal(first.shortlist(query, size), expected)
    assert skipped  # common words were left out, and it changed the lexical term


def test_the_int8_scan_gives_the_float32_shortlist(monkeypatch):
    """Above INT8_SCAN_PAGES the anchors are scanned in int8, then the best again in float32: the
    shortlist is the exact one, with and without a mask of admitted pages."""
    rng = np.random.default_rng(3)
    pooled = rng.standard_normal((6000, 384)).astype(np.float32)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    monkeypatch.setattr(firststage, "INT8_SCAN_PAGES", 100)
    quantized, exact = FirstStage(pooled, compiled=True), FirstStage(pooled, compiled=False)
    assert quantized.compiled
    admitted = rng.random(len(pooled)) < 0.3
    for seed in range(5):
        q = pooled[seed * 7] + 0.5 * rng.standard_normal(384).astype(np.float32)

        class Query:
            pooled = q / np.linalg.norm(q)
            token_ids = None

        for mask in (None, admitted):
            np.testing.assert_array_equal(quantized.shortlist(Query, 200, mask), exact.shortlist(Query, 200, mask))


def test_format_3_postings_hold_each_pages_distinct_token_ids(tmp_path, real_pages):  # noqa: F811
    pages, encoder = real_pages
    store = _store_of(tmp_path / "s", pages, encoder, "int8")
    expected = {text: np.unique(e.token_ids) for _, _, text, e in pages}
    for item in live_items(store):
        with store.open_segment(item.segment) as segment:
            assert "token_ids" not in segment._h5 and segment._h5.attrs["segment_format"] >= 3
            ids, starts, rows = segment.vocabulary()
            holding = np.repeat(np.asarray(ids), np.diff(np.asarray(starts)))
            np.testing.assert_array_equal(np.sort(holding[np.asarray(rows) == item.row]), expected[item.text])


def test_an_old_store_makes_its_postings_from_its_per_token_ids_and_searches_with_them(tmp_path, monkeypatch):
    root, _ = schema1_copy(tmp_path)
    monkeypatch.setattr(firststage, "LEXICAL_FROM_PAGES", 0)
    store = Store.open(root)
    try:
        items = [i for i in live_items(store) if i.n_tokens]
        assert items
        for item in items:
            with store.open_segment(item.segment) as segment:
                assert "token_ids" in segment._h5
                start, stop = segment.token_range(item.row)
                ids, starts, rows = segment.vocabulary()
                holding = np.repeat(np.asarray(ids), np.diff(np.asarray(starts)))
                page_ids = segment.token_ids(start, stop)
                np.testing.assert_array_equal(np.sort(holding[np.asarray(rows) == item.row]), np.unique(page_ids[page_ids >= 0]))
    finally:
        store.close()
    with Index.open(root) as index:
        hits = index.search("repotting ferns", k=1)
    assert hits[0].path.endswith("with-blank-page.pdf") and hits[0].page == 1
