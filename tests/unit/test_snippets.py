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
