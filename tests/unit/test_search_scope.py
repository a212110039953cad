"""Scope and filters (--path-prefix, --glob, --kind, --min-score) and "more like this" (--like)."""

import json
import os

import numpy as np
import pytest

from smartcli.cli.search_cmd import absolute_prefix, parse_like
from smartcli.errors import SmartError
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Scope, Searcher, glob_matches
from smartcli.store.catalog import Store
from tests.conftest import run_smart

QUERY = "how do I look after it"  # vague on purpose: every page gets a score


@pytest.fixture(scope="module")
def searcher(sample_store, encoder):
    store, _ = sample_store
    return Searcher(Store.open(store), encoder, device="cpu")


def everything(searcher):
    return searcher.search([QUERY], Weights(), k=len(searcher))[0]


def test_globs_match_file_names_or_path_ends():
    path = "/home/me/docs/manuals/terminal-guide.pdf"
    assert glob_matches(path, "*.pdf") and glob_matches(path, "terminal-*")
    assert not glob_matches(path, "*.png") and not glob_matches(path, "manuals")
    assert glob_matches(path, "manuals/*.pdf") and glob_matches(path, "docs/*")
    assert glob_matches(path, "/home/*/manuals/*") and not glob_matches(path, "/docs/*")


def test_prefix_keeps_a_trailing_slash_and_like_splits_the_page(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_prefix("docs/") == f"{tmp_path}/docs/"
    assert absolute_prefix("docs") == f"{tmp_path}/docs"
    # Relative paths stay as given: the index resolves them, or takes them as a base name or suffix.
    assert parse_like("a/b.pdf:12") == ("a/b.pdf", 12)
    assert parse_like("a/b.pdf") == ("a/b.pdf", None)
    assert parse_like("~/b.pdf:2") == (os.path.expanduser("~/b.pdf"), 2)
    (tmp_path / "odd:3").write_text("")  # a file whose own name ends in :digits
    assert parse_like("odd:3") == ("odd:3", None)


def test_scope_restricts_candidates_without_changing_their_scores(searcher, sample_store):
    _, corpus = sample_store
    reference = {(h.item.path, h.item.page): h.score for h in everything(searcher)}
    scopes = {
        Scope(path_prefixes=(str(corpus / "hobbies") + "/",)): lambda p: "/hobbies/" in p,
        Scope(globs=("sourdough*", "houseplants.pdf")): lambda p: p.endswith(("sourdough.pdf", "houseplants.pdf")),
        Scope(globs=("manuals/*",)): lambda p: "/manuals/" in p,
        Scope(kinds=("pdf",), path_prefixes=(str(corpus / "manuals"),)): lambda p: "/manuals/" in p,
    }
    for scope, expected in scopes.items():
        hits = searcher.search([QUERY], Weights(), k=len(searcher), scope=scope)[0]
        wanted = {key for key in reference if expected(key[0])}
        assert {(h.item.path, h.item.page) for h in hits} == wanted
        for hit in hits:
            assert hit.score == pytest.approx(reference[(hit.item.path, hit.item.page)], abs=1e-5)
    assert searcher.search([QUERY], Weights(), k=5, scope=Scope(kinds=("image",)))[0] == []


def test_min_score_drops_weaker_hits(searcher):
    scores = sorted((h.score for h in everything(searcher)), reverse=True)
    threshold = (scores[2] + scores[3]) / 2
    hits = searcher.search([QUERY], Weights(), k=10, min_score=threshold)[0]
    assert [h.score for h in hits] == pytest.approx(scores[:3], abs=1e-6)


def test_like_uses_the_stored_vectors_of_the_page(searcher, sample_store):
    _, corpus = sample_store
    path = str(corpus / "hobbies" / "bicycle-maintenance.pdf")
    encoded, source = searcher.stored_query(path, 2)
    assert (source.path, source.page) == (path, 2)
    row = searcher.items.index(source)
    np.testing.assert_allclose(encoded.pooled, searcher.pooled[row], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(encoded.tokens, axis=1), 1.0, atol=1e-5)  # a query's tokens are unit length
    # Not left out, the page itself is the best match on both views.
    hits = searcher.search_encoded([encoded], Weights(), k=len(searcher), texts=[source.text])[0]
    itself = hits[0]
    assert (itself.item.path, itself.item.page) == (path, 2)
    assert itself.anchor == pytest.approx(1.0, abs=1e-4)
    assert itself.late == max(h.late for h in hits) and itself.anchor == max(h.anchor for h in hits)
    with pytest.raises(SmartError, match="3 encoded pages"):
        searcher.stored_query(path, None)
    with pytest.raises(SmartError, match="not in the index"):
        searcher.stored_query(str(corpus / "nope.pdf"), None)


def test_like_on_the_command_line_excludes_the_page_itself(sample_store):
    store, corpus = sample_store
    source = corpus / "hobbies" / "bicycle-maintenance.pdf"
    result = run_smart("search", "--like", f"{source}:2", "--store", store, "-k", "3", "--json", check=True)
    answer = json.loads(result.stdout)
    assert answer["query"] is None and answer["like"] == {"path": str(source), "page": 2}
    pages = [(r["path"], r["page"]) for r in answer["results"]]
    assert len(pages) == 3 and (str(source), 2) not in pages
    missing = run_smart("search", "--like", f"{source}:9", "--store", store)
    assert missing.returncode == 2 and "page 9" in missing.stderr and missing.stdout == ""


def test_filters_on_the_command_line(sample_store):
    store, corpus = sample_store
    result = run_smart(
        "search",
        QUERY,
        "--store",
        store,
        "--path-prefix",
        str(corpus / "hobbies"),
        "--glob",
        "*.pdf",
        "--kind",
        "pdf",
        "--min-score",
        "0",
        "-k",
        "20",
        "--files-only",
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(str(corpus / "hobbies") + "/") for line in lines)
    assert len(lines) == 5  # bicycle-maintenance.pdf has 3 pages, sourdough.pdf 2
