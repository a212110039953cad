"""Why a page matched: per query token, the page token it matched (MaxSim arg-max), and the snippet."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from smartcli.models.base import Encoded

SNIPPET_CHARS = 160
# Matched words at least this similar are highlighted and place the snippet. With the default
# model an exact word match scores 0.8-0.9, a related word ("wireless" for "wifi") 0.5-0.7, an
# unrelated one ("need" for "pressure") mostly below 0.4.
STRONG_MATCH = 0.5
# Query words that place no snippet and are never highlighted (nor are these page words): a
# question's "how do I", "the", "to" match some "To" or "the" on every page.
STOP_WORDS = frozenset(
    """a about above after again all am an and any are as at be been before being below between both but by can
    could did do does doing down during each few for from further had has have having he her here hers him his how i
    if in into is it its itself just me more most my no nor not now of off on once only or other our ours out over own
    same she should so some such than that the their theirs them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your yours""".split()
)
# A passage's highlights: in it, each query word's best match and the other words within this of it.
SAME_MATCH = 0.05


@dataclass
class TokenMatch:
    """One query token and the item token it matched best (its MaxSim arg-max).

    ``doc_token`` indexes the item's stored token states; for a pixel-based model it is the
    patch index, which is what a heat map of matched patches needs. ``span`` and ``word`` are
    None when the item has no text behind its tokens.
    """

    query_token: str | None  # None when the query's tokens have no character spans
    doc_token: int
    similarity: float
    span: tuple[int, int] | None
    word: str | None

    @property
    def telling(self) -> bool:
        """The query token is (part of) a word that says something: not punctuation, not a stop
        word (those match some "To" or "?" on every page)."""
        token = (self.query_token or "").removeprefix("##")
        return any(map(_is_word_char, token)) and token.lower() not in STOP_WORDS

    def as_json(self) -> dict:
        return {
            "query_token": self.query_token,
            "word": self.word,
            "similarity": round(self.similarity, 6),
            "span": None if self.span is None else list(self.span),
            "doc_token": self.doc_token,
        }


def match_tokens(query: Encoded, query_text: str, text: str, spans: np.ndarray | None, scored) -> list[TokenMatch]:
    """Per query token, the item token it matched best and the similarity, as the scoring kernel
    found them: ``scored`` is (similarities [q], arg-max [q]); ``spans`` the item's token spans in
    ``text`` (None: no text behind its tokens, as for pixel models)."""
    return _matches(query, query_text, text, *scored, spans)


def match_arrays(query: Encoded, query_text: str, text: str, tokens: np.ndarray, spans: np.ndarray | None) -> list[TokenMatch]:
    """Per query token, the item token it matched best, from the item's token states (``spans``
    None: no text behind the tokens)."""
    similarity = query.tokens @ tokens.T  # [q, t]
    best = similarity.argmax(axis=1)
    return _matches(query, query_text, text, similarity[np.arange(len(best)), best], best, spans)


def _matches(query: Encoded, query_text: str, text: str, values, best, spans) -> list[TokenMatch]:
    matches = []
    for qi, ti in enumerate(best):
        span = None if spans is None else (int(spans[ti][0]), int(spans[ti][1]))
        matches.append(
            TokenMatch(
                query_token=_slice(query_text, query.spans[qi]) if query_text and query.spans[qi][1] > query.spans[qi][0] else None,
                doc_token=int(ti),
                similarity=float(values[qi]),
                span=span,
                word=None if span is None else _slice(text, word_around(text, span)),
            )
        )
    return matches


def strong_spans(matches: list[TokenMatch]) -> list[tuple[int, int]]:
    """Spans of the matches worth showing: strong ones, on words rather than punctuation."""
    return [m.span for m in matches if m.span is not None and m.similarity >= STRONG_MATCH and any(map(_is_word_char, m.word or ""))]


def _slice(text: str, span) -> str:
    return text[int(span[0]) : int(span[1])]


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def word_around(text: str, span: tuple[int, int]) -> tuple[int, int]:
    """The span widened to the whole word it is part of (a sub-word token names its word)."""
    start, end = max(0, span[0]), min(len(text), span[1])
    while start > 0 and _is_word_char(text[start - 1]) and (start == end or _is_word_char(text[start])):
        start -= 1
    while end < len(text) and _is_word_char(text[end]) and (start == end or _is_word_char(text[end - 1])):
        end += 1
    return start, end


def highlighted_passage(
    text: str, matched_spans: list[tuple[int, int]], highlight_spans: list[tuple[int, int]] | None = None, width: int = SNIPPET_CHARS
) -> tuple[str, list[tuple[int, int]]]:
    """The passage around the matched spans and, as offsets in it, the words of
    ``highlight_spans`` (default: the matched spans) that it shows."""
    if not text:
        return "", []
    spans = np.array(matched_spans, dtype=np.int64).reshape(-1, 2)
    begin, end = passage_window(text, spans, width)
    shown = spans if highlight_spans is None else highlight_spans
    return _passage(text, begin, end, [(int(s), int(e)) for s, e in shown])


def passage_window(text: str, matched_spans: np.ndarray, width: int = SNIPPET_CHARS) -> tuple[int, int]:
    """[begin, end) of the ``width``-character window of ``text`` covering the most matched spans."""
    if len(text) <= width:
        return 0, len(text)
    starts = np.sort(matched_spans[:, 0])
    best_start, best_count = int(starts[0]) if len(starts) else 0, 0
    for i, s in enumerate(starts):
        count = int(np.searchsorted(starts, s + width - 20, side="right") - i)
        if count > best_count:
            best_start, best_count = int(s), count
    return passage_bounds(text, best_start - 20, width)


def best_passage(
    query: Encoded, query_text: str, text: str, tokens: np.ndarray, spans: np.ndarray, width: int = SNIPPET_CHARS
) -> tuple[str, list[tuple[int, int]]]:
    """The snippet of a page: the ``width``-character passage holding strong matches of the most
    distinct query words, the strongest first (stop words count for nothing), and, as offsets in
    it, the page words that matched each query word there.

    ``tokens``/``spans``: the page's token states and their character spans in ``text``. A query
    word is the whole word its tokens lie in ("branch", "tm_lim"); its match at a page token is the
    best similarity of its tokens there. Unlike the MaxSim arg-max, which is one token anywhere on
    the page per query token, this looks for one passage where the words meet. Every candidate
    passage is judged at once (arrays over passages, words and page tokens): a shown hit costs
    tens of microseconds, not a Python loop over its page's tokens.
    """
    if not text:
        return "", []
    words = query_words(query, query_text)
    if not words or tokens.shape[0] == 0:
        return highlighted_passage(text, [])
    similarity = query.tokens @ tokens.T  # [q, t]
    per_word = np.stack([similarity[rows].max(axis=0) for rows in words.values()])  # [w, t]
    # Page words that are stop words or punctuation match nothing.
    per_word = np.where(usable_page_words(text, spans)[None, :], per_word, np.float32(-1.0))
    starts = spans[:, 0].astype(np.int64)
    ends = spans[:, 1].astype(np.int64)
    candidates = np.flatnonzero(per_word.max(axis=0) >= STRONG_MATCH)
    if candidates.size == 0:
        candidates = np.argsort(-per_word.max(axis=0))[:8]
    # Each candidate token places a passage; several often place the same one: judge each once,
    # in the order of the first candidate placing it (the first best one wins, as in a loop).
    windows = list(dict.fromkeys(passage_bounds(text, int(starts[t]) - 20, width) for t in candidates))
    begins = np.array([w[0] for w in windows], dtype=np.int64)
    stops = np.array([w[1] for w in windows], dtype=np.int64)
    inside = (starts[None, :] >= begins[:, None]) & (ends[None, :] <= stops[:, None])  # [c, t]
    held = inside.any(axis=1)
    masked = np.where(inside[:, None, :], per_word[None, :, :], -np.inf)  # [c, w, t]
    maxima = masked.max(axis=2)  # [c, w]
    at = starts[masked.argmax(axis=2)]  # [c, w]: where each word matches best in the passage
    strong = maxima >= STRONG_MATCH
    best_key, best_window = None, (0, min(len(text), width))
    for c in np.flatnonzero(held).tolist():
        # Most words matched strongly, then the strongest matches (to a tenth), then the words
        # closest together, then the passage that leads in to them (starts 20 characters before).
        placed = at[c][strong[c]]
        spread = int(placed.max() - placed.min()) if placed.size else 0
        lead_in = abs(int(begins[c]) - (int(placed.min()) - 20)) if placed.size else int(begins[c])
        key = (int(strong[c].sum()), round(float(np.clip(maxima[c], 0.0, None).sum()), 1), -spread, -lead_in)
        if best_key is None or key > best_key:
            best_key, best_window = key, windows[c]
    begin, end = best_window
    shown = np.flatnonzero((starts >= begin) & (ends <= end))
    marked = []
    if shown.size:
        values = per_word[:, shown]  # [w, s]
        tops = values.max(axis=1)
        keep = (tops[:, None] >= STRONG_MATCH) & (values >= np.maximum(STRONG_MATCH, tops - SAME_MATCH)[:, None])
        for row in range(values.shape[0]):
            marked += [(int(starts[t]), int(ends[t])) for t in shown[keep[row]]]
    return _passage(text, begin, end, marked)


_WORD_RUN = re.compile(r"\w+")


def usable_page_words(text: str, spans: np.ndarray) -> np.ndarray:
    """Per token span, whether the page word it lies in (:func:`word_around`) holds a letter or a
    digit and is no stop word: what may match a query word. Computed for all the page's tokens at
    once from the text's runs of word characters."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    n = len(text)
    matched = list(_WORD_RUN.finditer(text))
    runs = np.array([m.span() for m in matched], dtype=np.int64).reshape(-1, 2)
    # A stop word standing as a whole word is a run of word characters that is one, in ASCII
    # upper or lower case (every stop word is lower-case ASCII letters). A regular expression of
    # the stop words cost 13 ms on a 4,800-character page, the runs 0.7 ms.
    stop_run = np.array([m.group().isascii() and m.group().lower() in STOP_WORDS for m in matched], dtype=bool)
    run_starts, run_ends = runs[:, 0], runs[:, 1]

    def run_at(x):
        """The run holding character x, or -1 (x may be out of the text)."""
        index = np.searchsorted(run_starts, x, side="right") - 1
        safe = np.clip(index, 0, max(len(runs) - 1, 0))
        holds = (index >= 0) & (x >= 0) & (x < n) & (len(runs) > 0)
        if len(runs):
            holds &= x < run_ends[safe]
        return np.where(holds, safe, -1)

    start = np.maximum(spans[:, 0], 0)
    end = np.minimum(spans[:, 1], n)
    empty = start == end
    at_start, before = run_at(start), run_at(start - 1)
    # word_around: a span that starts on a word character (or an empty one after one) widens to
    # its word's start, and one that ends on a word character (or is still empty) to its end.
    start = np.where(~empty & (at_start >= 0), run_starts[np.maximum(at_start, 0)] if len(runs) else start, start)
    start = np.where(empty & (before >= 0), run_starts[np.maximum(before, 0)] if len(runs) else start, start)
    at_end, last = run_at(end), run_at(end - 1)
    still_empty = start == end
    widen = (at_end >= 0) & (still_empty | (last >= 0))
    end = np.where(widen, run_ends[np.maximum(at_end, 0)] if len(runs) else end, end)
    # A word holds a word character when some run begins before its end and ends after its start.
    following = np.searchsorted(run_ends, start, side="right")
    has_word_char = following < len(runs)
    has_word_char &= np.where(has_word_char, run_starts[np.minimum(following, max(len(runs) - 1, 0))] < end, False) if len(runs) else False
    stops = runs[stop_run]
    is_stop = np.isin(start * (n + 1) + end, stops[:, 0] * (n + 1) + stops[:, 1])
    return has_word_char & ~is_stop


def query_words(query: Encoded, query_text: str) -> dict[str, list[int]]:
    """The query's words that are not stop words (lower-cased), each with its token rows."""
    words: dict[str, list[int]] = {}
    for qi, span in enumerate(query.spans):
        if not query_text or span[1] <= span[0]:
            continue
        word = _slice(query_text, word_around(query_text, (int(span[0]), int(span[1])))).lower()
        if any(map(_is_word_char, word)) and word not in STOP_WORDS:
            words.setdefault(word, []).append(qi)
    return words


def passage_bounds(text: str, begin: int, width: int = SNIPPET_CHARS) -> tuple[int, int]:
    """[begin, end) of a ``width``-character passage of ``text`` from about ``begin``, on word boundaries."""
    begin = max(0, min(begin, len(text) - width))
    if begin > 0:
        space = text.find(" ", begin)
        begin = space + 1 if 0 <= space < begin + 20 else begin
    end = min(len(text), begin + width)
    if end < len(text):
        space = text.rfind(" ", begin, end)
        end = space if space > begin + width // 2 else end
    return begin, end


def _passage(text: str, begin: int, end: int, marked: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    prefix = "…" if begin > 0 else ""
    snippet = prefix + text[begin:end] + ("…" if end < len(text) else "")
    highlights: list[tuple[int, int]] = []
    for start, stop in sorted({word_around(text, span) for span in marked}):
        start, stop = max(start, begin), min(stop, end)
        if start >= stop:
            continue
        shifted = (start - begin + len(prefix), stop - begin + len(prefix))
        if highlights and shifted[0] <= highlights[-1][1]:
            highlights[-1] = (highlights[-1][0], max(highlights[-1][1], shifted[1]))
        else:
            highlights.append(shifted)
    return snippet, highlights
