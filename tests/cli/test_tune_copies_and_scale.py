"""Issue 23, item 7: copies of a PDF count once in `smart tune` (their headings were all dropped as
"duplicated"); tune without --adapter says nothing about an adapter; tuned weights keep the
scores' 0-6 scale, so a --min-score means what it meant."""

from __future__ import annotations

import json
import shutil

import pytest

from smartcli import Index
from smartcli.ingest.outlines import mine_indexed
from smartcli.search.scoring import Weights
from smartcli.search.tuning import on_default_scale, weight_grid
from smartcli.store.catalog import Store
from smartcli.store.catalog.reads import live_items
from smartcli.store.tuning import write_tuning
from tests.conftest import copy_store, run_smart


@pytest.fixture(scope="module")
def copied_corpus_store(sample_store, tmp_path_factory):
    """The sample corpus with a copy of every outlined PDF elsewhere in the tree."""
    _, corpus = sample_store
    top = tmp_path_factory.mktemp("copies")
    docs = top / "docs"
    shutil.copytree(corpus, docs)
    backup = docs / "backup"
    backup.mkdir()
    for pdf in sorted(corpus.rglob("*.pdf")):
        shutil.copy(pdf, backup / pdf.name)
    store = top / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    return store


def test_copies_of_a_pdf_count_once_and_their_headings_are_kept(copied_corpus_store, tmp_path):
    store = copy_store(copied_corpus_store, tmp_path / "store")
    ran = run_smart("tune", "--store", store, "--keep", "--json")
    assert ran.returncode == 0, ran.stderr
    outline = json.loads(ran.stdout)["pairs"]["outline"]
    # The same 13 pairs as the sample corpus without copies (tests/cli/test_tune.py).
    assert outline["pairs"] == 13 and outline["files"] == outline["with_outline"] == 5 and outline["copies"] == 5
    assert "duplicated_heading" not in outline["dropped"]
    assert "13 pairs from the outlines of 5 of 5 PDFs, 5 copies counted once" in ran.stderr


def test_a_pair_from_a_copied_pdf_names_the_pages_of_every_copy(copied_corpus_store):
    with Store.open(copied_corpus_store) as store, store.read_snapshot():
        found, _ = mine_indexed(live_items(store))
    folders = {frozenset(path.rsplit("/", 2)[-2] for path, _ in pages) for _, pages in found}
    assert found and all("backup" in names and len(names) == 2 for names in folders), folders


def test_tune_without_adapter_says_nothing_of_an_adapter(copied_corpus_store, tmp_path):
    store = copy_store(copied_corpus_store, tmp_path / "store")
    ran = run_smart("tune", "--store", store, "--keep")
    assert ran.returncode == 0, ran.stderr
    assert "adapter" not in ran.stdout, ran.stdout
    assert "scores on the same 0-6 scale" in ran.stdout


def test_every_weighting_tune_tries_is_on_the_default_scale():
    grid = weight_grid()
    assert grid[0] == Weights(1.0, 5.0)
    assert all(abs(w.lambda_anchor + w.lambda_late - 6.0) < 1e-3 for w in grid)
    assert Weights(0.0, 6.0) in grid and on_default_scale(Weights(1.0, 2.0)) == Weights(2.0, 4.0)


def test_a_late_only_tuning_keeps_the_scale_a_min_score_was_set_on(sample_store, tmp_path):
    """A record of late-only weights as earlier versions kept them (0/1) scores as 0/6 does."""
    store_dir = copy_store(sample_store[0], tmp_path / "store")
    query = "how do I change the default terminal"
    with Index.open(store_dir) as index:
        explicit = [(h.path, h.page, round(h.score, 4)) for h in index.search(query, k=5, lambda_anchor=0.0, lambda_late=6.0)]
    with Store.open_for_writing(store_dir) as store:
        write_tuning(store, {"lambda_anchor": 0.0, "lambda_late": 1.0}, None)
    with Index.open(store_dir) as index:
        tuned = [(h.path, h.page, round(h.score, 4)) for h in index.search(query, k=5)]
    assert tuned == explicit
    assert tuned[0][2] > 1.0  # on a 0-1 scale a --min-score of 3 would have dropped every page
    found = run_smart("search", query, "--store", store_dir, "--min-score", "3", "--json", "-k", "3")
    assert found.returncode == 0 and json.loads(found.stdout)["results"]


def test_tune_drops_pairs_no_search_could_answer(sample_store, tmp_path):
    store = copy_store(sample_store[0], tmp_path / "store")
    pairs = tmp_path / "pairs.jsonl"
    lines = [{"query": "🦜🦜", "file": "houseplants.pdf", "page": 1}, {"query": "\u200b", "file": "houseplants.pdf", "page": 2}]
    pairs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    ran = run_smart("tune", "--store", store, "--pairs", pairs, "--keep", "--json")
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["pairs"]["used"] == 13  # the outline's 13; the two unusable queries left out
    assert "NaN" not in ran.stdout and "RuntimeWarning" not in ran.stderr
