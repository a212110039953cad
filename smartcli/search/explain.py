"""Why a page matched: per query token, the page token it matched (MaxSim arg-max), and the snippet."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartcli.models.base import Encoded
from smartcli.store.catalog import LiveItem

SNIPPET_CHARS = 160
# Matched words at least this similar are highlighted and place the snippet. With the default
# model an exact word match scores 0.8-0.9, a related word ("wireless" for "wifi") 0.5-0.7, an
# unrelated one ("need" for "pressure") mostly below 0.4.
STRONG_MATCH = 0.5


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

    def as_json(self) -> dict:
        return {
            "query_token": self.query_token,
            "word": self.word,
            "similarity": round(self.similarity, 6),
            "span": None if self.span is None else list(self.span),
            "doc_token": self.doc_token,
        }



def match_tokens(query: Encoded, query_text: str, item: LiveItem, segment, textual: bool = True, scored=None) -> list[TokenMatch]:
    """Per query token, the item token it matched best and the similarity (the MaxSim arg-max).
    ``textual``: the item's tokens have character spans in its text (not so for pixel models).
    ``scored``: (similarities [q], arg-max [q]) as the scoring kernel found them; without it the
    item's token states are read and multiplied here."""
    start, stop = segment.token_range(item.row)
    spans = segment.spans(start, stop) if textual and item.text and segment.has_spans else None
    if scored is None:
        return match_arrays(query, query_text, item.text, segment.tokens(start, stop), spans)
    return _matches(query, query_text, item.text, *scored, spans)


def match_arrays(query: Encoded, query_text: str, text: str, tokens: np.ndarray, spans: np.ndarray | None) -> list[TokenMatch]:
    """:func:`match_tokens` for an item's token states and spans given as arrays (``spans`` None:
    no text behind the tokens)."""
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
    return [
        m.span for m in matches if m.span is not None and m.similarity >= STRONG_MATCH and any(map(_is_word_char, m.word or ""))
    ]


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
    prefix = "…" if begin > 0 else ""
    snippet = prefix + text[begin:end] + ("…" if end < len(text) else "")
    shown = spans if highlight_spans is None else highlight_spans
    words = sorted({word_around(text, (int(s), int(e))) for s, e in shown})
    highlights = []
    for start, stop in words:
        start, stop = max(start, begin), min(stop, end)
        if start >= stop:
            continue
        shifted = (start - begin + len(prefix), stop - begin + len(prefix))
        if highlights and shifted[0] <= highlights[-1][1]:
            highlights[-1] = (highlights[-1][0], max(highlights[-1][1], shifted[1]))
        else:
            highlights.append(shifted)
    return snippet, highlights


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
    begin = max(0, min(best_start - 20, len(text) - width))
    # Start and end on word boundaries.
    if begin > 0:
        space = text.find(" ", begin)
        begin = space + 1 if 0 <= space < begin + 20 else begin
    end = min(len(text), begin + width)
    if end < len(text):
        space = text.rfind(" ", begin, end)
        end = space if space > begin + width // 2 else end
    return begin, end
