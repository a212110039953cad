"""Snippets show the answer (issue 14.5): the passage holding the strongest matches of the most
distinct query words; stop words are never highlighted, the query's content words are."""

import numpy as np
import pymupdf

from smartcli import Index
from smartcli.models.base import Encoded
from smartcli.search.explain import STOP_WORDS, best_passage

# A page of solver options (after GLPK's glp_iocp): the answer to the query, tm_lim, lies far
# from the page start, and words of the query ("branch", "solver") are spread over the page.
SOLVER_OPTIONS = (
    "Control parameters of the integer optimizer. double tol_int (default: 1e-5) Absolute tolerance used to check "
    "whether the optimal solution of the current relaxation is integral. Do not change this parameter without a "
    "detailed understanding of its purpose. double tol_obj (default: 1e-7) Relative tolerance used to check whether "
    "the objective value of the current relaxation is no better than the best known integral solution. double "
    "mip_gap (default: 0.0) The relative gap tolerance: when the gap of the best known integral solution falls below "
    "it, the search ends, which gives suboptimal solutions when solving to optimality takes too long. "
    "int tm_lim (default: INT_MAX) Searching time limit of the branch and bound solver, in milliseconds. "
    "int out_frq (default: 5000) Output frequency, in milliseconds: how often the solver reports progress. "
    "int out_dly (default: 10000) Output delay, in milliseconds, before the solver starts reporting. "
    "void (*cb_func)(glp_tree *tree, void *info) (default: NULL) Entry point to the user-defined callback routine. "
    "NULL means the advanced solver interface is not used. For details see the chapter on the Branch-and-Cut API. "
    "int cb_size (default: 0) The number of extra bytes allocated for each node of the branch-and-bound tree."
)


def _pdf(path, pages):
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(50, 50, 560, 800), text, fontsize=9)
    doc.save(path)


def test_the_snippet_is_the_passage_where_the_query_words_meet(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    _pdf(docs / "glpk-like.pdf", [SOLVER_OPTIONS, "Installing the package: run the configure script, then make and make install."])
    index = Index.open(tmp_path / "store", create=True)
    index.update([docs], ocr="never")
    hits = index.search("set a time limit for the branch and bound solver", k=2)
    hit = hits[0]
    assert hit.page == 1
    assert "Searching time limit of the branch and bound solver" in hit.snippet, hit.snippet
    # Before: the window with the most matched tokens of any kind, "Entry point to the user-defined callback routine".
    assert "callback" not in hit.snippet, hit.snippet
    marked = [hit.snippet[a:b].lower() for a, b in hit.highlights]
    assert {"time", "limit"} <= set(marked), marked
    assert not set(marked) & STOP_WORDS, marked


def test_the_readme_example_highlights_terminal_and_no_stop_words(sample_store):
    store, _ = sample_store
    hits = Index.open(store).search("how do I change the default terminal", k=3)
    top = hits[0]
    assert top.path.endswith("terminal-guide.pdf")
    marked = [top.snippet[a:b] for a, b in top.highlights]
    # Before: ['To', 'change', 'the', 'default', 'config'] (the stop words' arg-max "To", no "terminal").
    assert {"change", "default", "terminal"} <= set(marked), marked
    assert not {w.lower() for w in marked} & STOP_WORDS, marked
    assert "change the default terminal" in top.snippet


def _encoded(query_vectors, spans):
    tokens = np.asarray(query_vectors, np.float32)
    return Encoded(pooled=tokens.mean(0), tokens=tokens, token_ids=np.zeros(len(tokens), np.int32), spans=np.asarray(spans, np.int32))


def test_most_distinct_words_win_over_many_matches_of_one_word():
    # Page tokens: "apple" x4 at the start, then "apple pear" far away. Query: "apple pear".
    text = "apple apple apple apple " + "filler " * 40 + "apple pear"
    words = [(m, m + 5) for m in range(0, 24, 6)] + [(len(text) - 10, len(text) - 5), (len(text) - 4, len(text))]
    fill = [(24 + 7 * i, 30 + 7 * i) for i in range(40)]
    spans = np.array(sorted(words + fill), np.int32)
    apple, pear, other = np.eye(3, dtype=np.float32)
    vectors = np.array([pear if text[s:e] == "pear" else apple if text[s:e] == "apple" else other for s, e in spans])
    query = _encoded([apple, pear], [(0, 5), (6, 10)])
    snippet, highlights = best_passage(query, "apple pear", text, vectors, spans, width=60)
    assert snippet.endswith("apple pear") and [snippet[a:b] for a, b in highlights][-2:] == ["apple", "pear"]


def test_a_query_of_stop_words_only_still_gets_a_passage():
    text = "to be or not to be " * 20
    spans = np.array([(m.start(), m.end()) for m in __import__("re").finditer(r"\S+", text)], np.int32)
    vectors = np.tile(np.eye(4, dtype=np.float32)[:1], (len(spans), 1))
    query = _encoded(np.eye(4, dtype=np.float32)[:2], [(0, 2), (3, 5)])
    snippet, highlights = best_passage(query, "to be", text, vectors, spans, width=40)
    assert snippet and highlights == []


# -- the vectorized snippet search against the plain loops it replaced ------------------------


def _usable_reference(text, span):
    from smartcli.search.explain import _is_word_char, word_around

    word = text[slice(*word_around(text, (int(span[0]), int(span[1]))))]
    return any(map(_is_word_char, word)) and word.lower() not in STOP_WORDS


def _best_passage_reference(query, query_text, text, tokens, spans, width=160):
    """best_passage as a loop over candidate tokens and page tokens (the code before issue 24)."""
    from smartcli.search.explain import (
        SAME_MATCH,
        STRONG_MATCH,
        _passage,
        highlighted_passage,
        passage_bounds,
        query_words,
    )

    if not text:
        return "", []
    words = query_words(query, query_text)
    if not words or tokens.shape[0] == 0:
        return highlighted_passage(text, [])
    similarity = query.tokens @ tokens.T
    per_word = np.stack([similarity[rows].max(axis=0) for rows in words.values()])
    usable = np.array([_usable_reference(text, span) for span in spans], dtype=bool)
    per_word = np.where(usable[None, :], per_word, -1.0)
    starts, ends = spans[:, 0].astype(np.int64), spans[:, 1].astype(np.int64)
    candidates = np.flatnonzero(per_word.max(axis=0) >= STRONG_MATCH)
    if candidates.size == 0:
        candidates = np.argsort(-per_word.max(axis=0))[:8]
    best_key, best_window = None, (0, min(len(text), width))
    for t in candidates:
        begin, end = passage_bounds(text, int(starts[t]) - 20, width)
        inside = (starts >= begin) & (ends <= end)
        if not inside.any():
            continue
        maxima = per_word[:, inside].max(axis=1)
        strong = maxima >= STRONG_MATCH
        at = starts[inside][per_word[:, inside].argmax(axis=1)][strong]
        spread = int(at.max() - at.min()) if at.size else 0
        lead_in = abs(begin - (int(at.min()) - 20)) if at.size else begin
        key = (int(strong.sum()), round(float(np.clip(maxima, 0.0, None).sum()), 1), -spread, -lead_in)
        if best_key is None or key > best_key:
            best_key, best_window = key, (begin, end)
    begin, end = best_window
    inside = np.flatnonzero((starts >= begin) & (ends <= end))
    marked = []
    for row in per_word:
        if inside.size == 0:
            break
        top = row[inside].max()
        if top >= STRONG_MATCH:
            marked += [(int(starts[t]), int(ends[t])) for t in inside if row[t] >= max(STRONG_MATCH, top - SAME_MATCH)]
    return _passage(text, begin, end, marked)


def test_usable_page_words_at_once_equal_the_word_by_word_rule():
    import random

    from smartcli.search.explain import usable_page_words

    rng = random.Random(7)
    pieces = list("abeTHIO_-.,()é9 \u00a0") + ["the", "The", "of", "İ", "ß", "wi-fi", "THE"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        spans = []
        for _ in range(rng.randint(0, 12)):
            a = rng.randint(0, len(text))
            spans.append((a, rng.randint(a, len(text))))
        spans = np.array(spans, dtype=np.int64).reshape(-1, 2)
        expected = [_usable_reference(text, span) for span in spans]
        assert usable_page_words(text, spans).tolist() == expected, (text, spans)


def test_snippets_of_real_pages_equal_the_loop_they_replaced(sample_store, encoder):
    from smartcli.store.catalog import Store
    from smartcli.store.catalog.reads import live_items

    queries = ["how do I change the default terminal", "tyre pressure", "what temperature is the loaf baked at", "wifi channel"]
    encoded = encoder.encode_queries(queries)
    with Store.open(sample_store[0]) as store:
        for item in live_items(store):
            with store.open_segment(item.segment) as segment:
                start, stop = segment.token_range(item.row)
                tokens, spans = segment.tokens(start, stop), segment.spans(start, stop)
            for query, text in zip(encoded, queries):
                expected = _best_passage_reference(query, text, item.text, tokens, spans)
                assert best_passage(query, text, item.text, tokens, spans) == expected, (item.path, item.page, text)


def test_a_warm_search_explains_its_hits_as_the_reference_computation_does(sample_store, encoder):
    """A long-lived searcher (compiled kernels) explains the shown hits from one kernel call over
    their tokens and one pass over their texts; each hit's snippet, highlights and token matches
    equal the reference: the loop over candidate passages on the decoded token states, and
    word_around of each matched span."""
    from smartcli import defaults
    from smartcli.search.explain import word_around
    from smartcli.search.scoring import Weights
    from smartcli.search.searcher import Searcher
    from smartcli.store.catalog import Store

    queries = ["how do I change the default terminal", "tyre pressure", "what temperature is the loaf baked at", "wifi channel"]
    with Store.open(sample_store[0]) as store:
        searcher = Searcher(store, encoder, device="cpu", cache_bytes=defaults.WARM_CACHE_BYTES)
        assert searcher._estimates()  # a 1-bit store scored by the compiled kernels: the batched path
        for query, text in zip(encoder.encode_queries(queries), queries):
            (hits,) = searcher.search_encoded([query], Weights(), 6, texts=[text])
            assert hits
            for hit in hits:
                with store.open_segment(hit.item.segment) as segment:
                    start, stop = segment.token_range(hit.item.row)
                    tokens, spans = segment.tokens(start, stop), segment.spans(start, stop)
                assert (hit.snippet, hit.highlights) == _best_passage_reference(query, text, hit.item.text, tokens, spans)
                similarity = query.tokens @ tokens.T
                assert [m.doc_token for m in hit.matches] == similarity.argmax(axis=1).tolist()
                np.testing.assert_allclose([m.similarity for m in hit.matches], similarity.max(axis=1), atol=1e-5)
                for m, q_span in zip(hit.matches, query.spans):
                    assert m.span == tuple(int(x) for x in spans[m.doc_token])
                    assert m.word == hit.item.text[slice(*word_around(hit.item.text, m.span))]
                    assert m.query_token == (text[q_span[0] : q_span[1]] if q_span[1] > q_span[0] else None)


def test_several_pages_read_as_one_text_answer_as_each_page_alone():
    """PageText of many pages (joined) gives every page the words, usable tokens and passage
    bounds that word_around, the word-by-word rule and passage_bounds give on that page alone."""
    import random

    from smartcli.search.explain import PageText, passage_bounds, word_around

    rng = random.Random(11)
    pieces = list("abeTHIO_-.,()é9 \u00a0") + ["the", "The", "of", "İ", "ß", "wi-fi", "THE", "   "]
    for _ in range(300):
        texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))) for _ in range(rng.randint(1, 5))]
        page = PageText(texts)
        for which, text in enumerate(texts):
            spans = []
            for _ in range(rng.randint(0, 10)):
                a = rng.randint(0, len(text))
                spans.append((a, rng.randint(a, len(text))))
            spans = np.array(spans, dtype=np.int64).reshape(-1, 2)
            starts, ends = page.words(spans, which)
            assert list(zip(starts.tolist(), ends.tolist())) == [word_around(text, tuple(s)) for s in spans.tolist()]
            assert page.usable(spans, which).tolist() == [_usable_reference(text, s) for s in spans]
            for width in (8, 25):
                begins = np.array([rng.randint(-30, len(text) + 5) for _ in range(6)], dtype=np.int64)
                got = page.bounds(begins, which, width)
                assert list(zip(*(x.tolist() for x in got))) == [passage_bounds(text, int(b), width) for b in begins]


def test_token_similarities_equal_the_decoded_states_multiplied():
    from smartcli.search.kernel import token_similarities, typed_parts
    from smartcli.store.formats import decode_binary, encode_binary
    from smartcli.store.segments import StoredTokens

    rng = np.random.default_rng(3)
    parts = [StoredTokens(encode_binary(rng.standard_normal((n, 64)).astype(np.float32)), None, 64) for n in (40, 25)]
    q = rng.standard_normal((5, 64)).astype(np.float32)
    part_of, rows = np.array([1, 0, 0, 1, 1]), np.array([3, 0, 39, 24, 3])
    got = token_similarities(q, typed_parts(parts), part_of, rows)
    expected = np.stack([decode_binary(parts[p].data[r : r + 1], 64)[0] @ q.T for p, r in zip(part_of, rows)])
    np.testing.assert_allclose(got, expected, atol=1e-5)
