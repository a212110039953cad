"""Pseudo-queries cut from the pages' own text (inverse cloze): which sentences, and the page
scored without its sentence, encoded again by the real model and stored as the store stores it."""

import numpy as np

from smartcli import defaults
from smartcli.ingest.outlines import body_candidates, body_pairs
from smartcli.search.scoring import Weights
from smartcli.search.tuning import Pair, hide_own_sentences
from tests.conftest import searching

PAGE = (
    "Chapter 3\n\n"
    "The pump must be checked before every long ride in the hills. "
    "x[i] = y[i] * 2 + {z} / (n) <= $max && @ok %d\n\n"
    "Keep the chain clean and oil it lightly after riding through rain or mud. "
    "Brakes wear faster on wet roads, so look at the pads every month or so. "
    "A loose headset makes the steering feel vague and noisy at low speeds."
)


def test_prose_sentences_become_queries_code_and_headings_do_not():
    sentences = [" ".join(words) for _, _, words in body_candidates(PAGE)]
    assert not any("for (i" in s or s.startswith("Chapter") for s in sentences)
    assert any(s.startswith("Keep the chain clean") for s in sentences)
    pairs = body_pairs([("/a.pdf", 1, PAGE), ("/a.pdf", 2, "too short"), ("/a.pdf", 3, "")])
    assert [p.page for p in pairs] == [1] * defaults.TUNE_BODY_PER_PAGE
    pair = pairs[0]
    start, end = pair.hidden
    assert pair.query in " ".join(PAGE[start:end].split())  # the query's words are the hidden sentence's
    assert 3 <= len(pair.query.split()) <= defaults.TUNE_BODY_QUERY_WORDS
    assert body_pairs([("/a.pdf", 1, PAGE)]) == pairs  # stable


def test_the_own_page_is_scored_as_if_its_sentence_were_not_there(sample_store):
    store_path, _ = sample_store
    with searching(store_path) as (store, encoder, searcher):
        cut = body_pairs([(item.path, item.page, item.text) for item in searcher.items])
        assert cut
        b = cut[0]
        item = next(i for i, it in enumerate(searcher.items) if (it.path, it.page) == (b.path, b.page))
        # Hiding nothing (an empty span) re-encodes the whole stored text: the stored scores come back.
        pairs = [Pair(b.query, {(b.path, b.page)}, "body", b.hidden), Pair(b.query, {(b.path, b.page)}, "body", (0, 0))]
        encoded = encoder.encode_queries([p.query for p in pairs])
        full = searcher.score(encoded, Weights(0.0, 1.0))
        stored_anchor, stored_late = full.anchor[1, item], full.late[1, item]
        hide_own_sentences(searcher, encoded, pairs, full)
        assert np.isclose(full.anchor[1, item], stored_anchor, atol=1e-4) and np.isclose(full.late[1, item], stored_late, atol=1e-4)
        # Hiding the sentence its query was cut from: the page loses the words it shared with the query.
        assert full.late[0, item] < stored_late - 0.05 and full.anchor[0, item] < stored_anchor
        assert pairs[0].hidden_page is not None  # encoded once, kept for the next measurement
