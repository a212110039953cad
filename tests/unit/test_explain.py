"""Explained hits: which page word each query token matched, how closely, and the snippet around them."""

import json

import numpy as np

from smartcli.search.explain import STRONG_MATCH, highlighted_passage, word_around
from smartcli.store.catalog import Store, reads, writes
from tests.conftest import run_smart


def test_explain_names_the_page_words_each_query_token_matched(sample_store):
    store, corpus = sample_store
    result = run_smart("search", "tyre pressure", "--store", store, "-k", "3", "--json", "--explain", check=True)
    results = json.loads(result.stdout)["results"]
    top = results[0]
    assert (top["file"], top["page"]) == ("bicycle-maintenance.pdf", 1)
    # The page reads "Tyres Check the tyre pressure every week: ...": both query words are on it.
    assert [(m["query_token"], m["word"]) for m in top["matches"]] == [("tyre", "tyre"), ("pressure", "pressure")]
    assert all(m["similarity"] >= STRONG_MATCH for m in top["matches"])
    (page,) = [i for i in reads.live_items(Store.open(store)) if i.path == top["path"] and i.page == 1]
    assert [page.text[slice(*m["span"])] for m in top["matches"]] == ["tyre", "pressure"]
    # Pages without those words matched other words, less closely.
    for other in results[1:]:
        assert len(other["matches"]) == 2
        assert max(m["similarity"] for m in other["matches"]) < min(m["similarity"] for m in top["matches"])


def test_sub_word_tokens_name_their_whole_word():
    text = "Wi-Fi channels and wireless interference"
    assert word_around(text, (0, 2)) == (0, 2)  # "Wi" stops at the hyphen
    assert word_around(text, (21, 25)) == (19, 27)  # "##ele" inside "wireless"
    assert word_around(text, (2, 3)) == (2, 3)  # the hyphen itself
    assert word_around(text, (len(text) - 3, len(text))) == (28, len(text))


def test_snippet_is_the_window_with_the_most_matches_and_highlights_point_into_it():
    text = "filler " * 60 + "the tyre pressure matters " + "more filler " * 30
    tyre = text.index("tyre")
    pressure = text.index("pressure")
    far = 3  # one match far away, at the start
    spans = [(tyre, tyre + 4), (pressure, pressure + 8), (far, far + 2)]
    snippet, highlights = highlighted_passage(text, spans, width=60)
    assert snippet.startswith("…") and snippet.endswith("…")
    assert [snippet[a:b] for a, b in highlights] == ["tyre", "pressure"]
    # Highlights can be limited to the strong matches while all of them place the window.
    snippet, highlights = highlighted_passage(text, spans, highlight_spans=[(pressure, pressure + 3)], width=60)
    assert [snippet[a:b] for a, b in highlights] == ["pressure"]


def test_short_text_is_its_own_snippet():
    snippet, highlights = highlighted_passage("tyre pressure", [(0, 4)], width=60)
    assert snippet == "tyre pressure" and highlights == [(0, 4)]
    assert highlighted_passage("", [], width=60) == ("", [])
    snippet, highlights = highlighted_passage("a b", np.zeros((0, 2), dtype=int).tolist(), width=60)
    assert snippet == "a b" and highlights == []


def test_pixel_model_hits_explain_by_patch_and_claim_no_words(tiny_checkpoints, tmp_path):
    """With an image model, the page's token states are patches: matches name the patch, not a word."""
    import shutil

    from smartcli.cli.present import explain_table
    from smartcli.ingest.indexer import Indexer
    from smartcli.ingest.planning import plan_changes
    from smartcli.models.registry import load_encoder
    from smartcli.search.scoring import Weights
    from smartcli.search.searcher import Searcher
    from tests.conftest import SAMPLE_CORPUS

    corpus = tmp_path / "docs"
    shutil.copytree(SAMPLE_CORPUS / "hobbies", corpus)
    encoder = load_encoder(str(tiny_checkpoints["clip"]), "cpu")
    store = Store.open_for_writing(tmp_path / "store")
    writes.bind_model(store, encoder.info)
    plan, hashes = plan_changes(store, [str(corpus)])
    Indexer(store, encoder).run(plan, hashes)

    searcher = Searcher(store, encoder, device="cpu")
    (hits,) = searcher.search(["tyre pressure"], Weights(), k=2)
    assert len(hits) == 2
    for hit in hits:
        assert all(m.span is None and m.word is None for m in hit.matches)
        assert all(0 <= m.doc_token < hit.item.n_tokens for m in hit.matches)
        assert hit.highlights == []  # nothing in the page text is claimed as matched
    matched_column = explain_table(hits[0]).columns[1]._cells
    assert [cell.plain for cell in matched_column] == [f"token {m.doc_token}" for m in hits[0].matches]
    store.close()
