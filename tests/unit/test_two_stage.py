import json

import numpy as np
import pytest

from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from tests.conftest import SAMPLE_CORPUS, run_smart
from tests.store_helpers import build_random_store, random_encoded

COUNTS = [3, 1, 7, 2, 12, 5, 1, 9, 4, 6, 2, 8]


def ranked(hits):
    return [(h.item.item_id, round(h.score, 6), round(h.anchor, 6), round(h.late, 6)) for h in hits]


@pytest.mark.parametrize("token_dtype", ["binary", "int8", "float16"])
def test_two_stage_with_k_equal_to_all_items_equals_exhaustive_exactly(tmp_path, token_dtype):
    rng = np.random.default_rng(11)
    store, _ = build_random_store(tmp_path, rng, COUNTS, dims=16, token_dtype=token_dtype)
    queries = [random_encoded(rng, n, 16) for n in (1, 4)]
    weights = Weights(1.0, 5.0)
    exhaustive = Searcher(store, encoder=None, device="cpu", shortlist=None)
    everything = Searcher(store, encoder=None, device="cpu", shortlist=len(COUNTS))
    for query in queries:
        a = exhaustive.search_encoded([query], weights, len(COUNTS))[0]
        b = everything.search_encoded([query], weights, len(COUNTS))[0]
        assert ranked(a) == ranked(b)


def test_two_stage_scores_only_the_anchor_shortlist_and_scores_it_exactly(tmp_path):
    rng = np.random.default_rng(12)
    store, docs = build_random_store(tmp_path, rng, COUNTS, dims=16)
    weights = Weights(1.0, 5.0)
    exhaustive = Searcher(store, encoder=None, device="cpu", shortlist=None)
    two_stage = Searcher(store, encoder=None, device="cpu", shortlist=4)
    queries = [random_encoded(rng, 3, 16) for _ in range(3)]
    # several queries at once: each keeps its own shortlist
    together = two_stage.search_encoded(queries, weights, 10)
    for query, hits in zip(queries, together):
        anchor = {i.item_id: float(docs[i.page - 1].pooled @ query.pooled) for i in two_stage.items}
        shortlist = sorted(anchor, key=lambda item_id: -anchor[item_id])[:4]
        assert sorted(h.item.item_id for h in hits) == sorted(shortlist)
        full = {h.item.item_id: h for h in exhaustive.search_encoded([query], weights, len(COUNTS))[0]}
        for hit in hits:
            assert hit.score == pytest.approx(full[hit.item.item_id].score, abs=1e-6)


def test_the_shortlist_grows_with_the_square_root_of_a_large_store_up_to_its_cap(monkeypatch):
    """searcher.shortlist_size: K up to CANDIDATES_GROW_FROM pages, then K * sqrt(N / that), at
    most CANDIDATES_MAX, never below K (issue 24: at 10,628 real pages K=200 missed the exact top
    10 on 7.8% of queries, every miss outside the shortlist)."""
    from smartcli import defaults
    from smartcli.search.searcher import shortlist_size

    monkeypatch.setattr(defaults, "CANDIDATES_GROW_FROM", 5000)
    monkeypatch.setattr(defaults, "CANDIDATES_MAX", 1000)
    assert shortlist_size(200, 317) == shortlist_size(200, 5000) == 200
    assert shortlist_size(200, 20_000) == 400
    assert shortlist_size(200, 10_628) == round(200 * (10_628 / 5000) ** 0.5)
    assert shortlist_size(200, 1_000_000) == 1000
    assert shortlist_size(2000, 1_000_000) == 2000  # a K larger than the cap is kept


def test_a_grown_shortlist_is_scored_exactly_and_a_whole_one_ranks_as_exhaustive(tmp_path, monkeypatch):
    """The grown shortlist (searcher.shortlist_size) is what the first stage returns and what is
    scored: each hit's scores are the reference scorer's (scoring.py, through the exhaustive
    searcher), and a shortlist grown to every page gives the exhaustive ranking itself."""
    from smartcli import defaults

    rng = np.random.default_rng(13)
    store, docs = build_random_store(tmp_path, rng, COUNTS, dims=16)
    weights = Weights(1.0, 5.0)
    exhaustive = Searcher(store, encoder=None, device="cpu", shortlist=None)
    monkeypatch.setattr(defaults, "CANDIDATES_GROW_FROM", 3)
    monkeypatch.setattr(defaults, "CANDIDATES_MAX", len(COUNTS))
    grown = Searcher(store, encoder=None, device="cpu", shortlist=3)  # 3 * sqrt(12 / 3) = 6 pages
    whole = Searcher(store, encoder=None, device="cpu", shortlist=6)  # 6 * 2 = 12: every page
    for query in [random_encoded(rng, n, 16) for n in (2, 3, 5)]:
        full = {h.item.item_id: h for h in exhaustive.search_encoded([query], weights, len(COUNTS))[0]}
        hits = grown.search_encoded([query], weights, 10)[0]
        anchor = {i.item_id: float(docs[i.page - 1].pooled @ query.pooled) for i in grown.items}
        assert sorted(h.item.item_id for h in hits) == sorted(sorted(anchor, key=lambda i: -anchor[i])[:6])
        for hit in hits:
            assert hit.score == pytest.approx(full[hit.item.item_id].score, abs=1e-5)
            assert hit.late == pytest.approx(full[hit.item.item_id].late, abs=1e-5)
        assert ranked(whole.search_encoded([query], weights, 10)[0]) == ranked(exhaustive.search_encoded([query], weights, 10)[0])


def test_compact_token_formats_rank_like_float16(tmp_path):
    """The sample corpus indexed in each format: same top hits as float16, late scores close."""
    queries = tmp_path / "q.txt"
    queries.write_text(
        "how do I change the default terminal\nwifi keeps disconnecting\nhow long to bake bread\n"
        "chain lubrication\nwhen to water plants\nrouter admin password\n"
    )
    results = {}
    for fmt in ("float16", "int8", "binary"):
        store = tmp_path / fmt
        run_smart("index", SAMPLE_CORPUS, "--store", store, "--token-dtype", fmt, check=True)
        out = run_smart("search", "--queries", queries, "--store", store, "--exhaustive", "-k", "3", check=True).stdout
        results[fmt] = [json.loads(line)["results"] for line in out.splitlines()]
    for fmt, tolerance in (("int8", 0.005), ("binary", 0.05)):
        for ours, reference in zip(results[fmt], results["float16"]):
            assert ours[0]["path"] == reference[0]["path"] and ours[0]["page"] == reference[0]["page"]
            by_page = {(r["path"], r["page"]): r for r in reference}
            for hit in ours:
                if (hit["path"], hit["page"]) in by_page:
                    assert hit["late"] == pytest.approx(by_page[(hit["path"], hit["page"])]["late"], abs=tolerance)
