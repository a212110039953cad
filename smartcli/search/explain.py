"""Why a page matched: per query token, the page token it matched (MaxSim arg-max), and the snippet."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartcli.models.base import Encoded
from smartcli.search.kernel import loaded_kernels

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


def match_tokens(
    query: Encoded,
    query_text: str,
    text: str,
    spans: np.ndarray | None,
    scored,
    terms: QueryTerms | None = None,
    page: PageText | None = None,
    which: int = 0,
    words: tuple | None = None,
) -> list[TokenMatch]:
    """Per query token, the item token it matched best and the similarity, as the scoring kernel
    found them: ``scored`` is (similarities [q], arg-max [q]); ``spans`` the item's token spans in
    ``text`` (None: no text behind its tokens, as for pixel models). ``terms`` and ``page``: the
    query's and the page's arrays when the caller has them already (``which`` of its pages;
    ``words``: :meth:`PageText.token_words` of ``spans``)."""
    return _matches(query, query_text, text, *scored, spans, terms, page, which, words)


def match_arrays(query: Encoded, query_text: str, text: str, tokens: np.ndarray, spans: np.ndarray | None) -> list[TokenMatch]:
    """Per query token, the item token it matched best, from the item's token states (``spans``
    None: no text behind the tokens)."""
    similarity = query.tokens @ tokens.T  # [q, t]
    best = similarity.argmax(axis=1)
    return _matches(query, query_text, text, similarity[np.arange(len(best)), best], best, spans)


def _matches(
    query: Encoded, query_text: str, text: str, values, best, spans, terms=None, page=None, which=0, words=None
) -> list[TokenMatch]:
    terms = terms or QueryTerms(query, query_text)
    best = np.asarray(best, dtype=np.int64)
    values = np.asarray(values).tolist()
    if spans is None:
        located, words = [None] * len(best), [None] * len(best)
    else:
        chosen = np.asarray(spans, dtype=np.int64).reshape(-1, 2)[best]
        located = [tuple(span) for span in chosen.tolist()]
        if text and words is not None:
            words = [text[a:b] for a, b in zip(words[0][best].tolist(), words[1][best].tolist())]
        elif text:
            starts, ends = page.words(chosen, which) if page is not None else PageText(text).words(chosen)
            words = [text[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
        else:
            words = [""] * len(best)
    return [
        TokenMatch(query_token=token, doc_token=ti, similarity=value, span=span, word=word)
        for token, ti, value, span, word in zip(terms.texts, best.tolist(), values, located, words)
    ]


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
    the page per query token, this looks for one passage where the words meet.
    """
    terms = QueryTerms(query, query_text)
    similarity = query.tokens @ tokens.T if terms.words and tokens.shape[0] else None  # [q, t]
    return passage_of(terms, text, spans, similarity)


class QueryTerms:
    """What explaining hits needs of a query, made once per query (not once per hit): its words
    that are not stop words with their token rows, and each query token's text."""

    def __init__(self, query: Encoded, query_text: str):
        self.words = query_words(query, query_text)
        self.texts = [_slice(query_text, span) if query_text and span[1] > span[0] else None for span in np.asarray(query.spans).tolist()]
        # The words' token rows one word after another, and where each word's rows begin.
        self.rows = np.array([r for rows in self.words.values() for r in rows], dtype=np.int64)
        self.bounds = np.cumsum([0] + [len(rows) for rows in self.words.values()])[:-1]

    def per_word(self, similarity: np.ndarray, rows_given: bool = False) -> np.ndarray:
        """[w, t]: per query word, its best token's similarity at each page token. ``similarity``
        is [q, t] over the query's tokens, or with ``rows_given`` [len(rows), t] over ``rows``."""
        chosen = similarity if rows_given else similarity[self.rows]
        return np.maximum.reduceat(chosen, self.bounds, axis=0)


def passage_of(
    terms: QueryTerms,
    text: str,
    spans: np.ndarray,
    similarity: np.ndarray | None,
    width: int = SNIPPET_CHARS,
    rows_given: bool = False,
) -> tuple[str, list[tuple[int, int]]]:
    """:func:`best_passage` from the similarities of the query's tokens (or, with ``rows_given``, of
    ``terms.rows``) with the page's tokens (:func:`passages_of` of one page)."""
    if not text:
        return "", []
    if not terms.words or similarity is None or similarity.shape[1] == 0:
        return highlighted_passage(text, [])
    return passages_of(terms, PageText([text]), [0], [spans], [similarity], None, width, rows_given)[0]


def passages_of(
    terms: QueryTerms,
    page: PageText,
    which: list[int],
    spans: list[np.ndarray],
    similarities: list[np.ndarray],
    words: list | None = None,
    width: int = SNIPPET_CHARS,
    rows_given: bool = False,
) -> list[tuple[str, list[tuple[int, int]]]]:
    """:func:`best_passage` of several pages at once (the shown hits): page ``which[i]`` of
    ``page``, its token spans ``spans[i]`` and the similarities [q or len(terms.rows), t] of the
    query's tokens with its tokens (every page with text and tokens, the query with words);
    ``words[i]``: :meth:`PageText.token_words` of its spans, when known. Every page's tokens,
    candidate passages and words are judged together, as arrays (the passages by a compiled
    loop when this process has loaded the kernels): no Python loop over tokens or passages."""
    which = np.asarray(which, dtype=np.int64)
    sizes = np.array([len(s) for s in spans], dtype=np.int64)
    first_token = np.cumsum(sizes) - sizes
    hit_of = np.repeat(np.arange(len(spans)), sizes)  # per token, its page's place in ``which``
    joined = np.concatenate([np.asarray(s, dtype=np.int64).reshape(-1, 2) for s in spans])
    starts, ends = joined[:, 0], joined[:, 1]
    if words is None:
        word_starts, word_ends, usable = page.token_words(joined, which[hit_of])
    else:
        word_starts, word_ends, usable = (np.concatenate(x) for x in zip(*words))
    per_word = terms.per_word(np.concatenate(similarities, axis=1), rows_given)  # [w, T]
    # Page words that are stop words or punctuation match nothing.
    per_word = np.where(usable[None, :], per_word, np.float32(-1.0))
    best_of_token = per_word.max(axis=0)
    strong_token = best_of_token >= STRONG_MATCH
    bounds = list(zip(first_token.tolist(), (first_token + sizes).tolist()))
    candidates = [np.flatnonzero(strong_token[a:b]) for a, b in bounds]
    candidates = [c if c.size else np.argsort(-best_of_token[a:b])[:8] for c, (a, b) in zip(candidates, bounds)]
    window_hit = np.repeat(np.arange(len(spans)), [len(c) for c in candidates])
    placed = np.concatenate(candidates) + first_token[window_hit]
    begins, stops = page.bounds(starts[placed] - 20, which[window_hit], width)
    # Several candidates often place the same passage: judge each once, in the order first placed.
    span_of = int(page.lengths.max(initial=0)) + 2
    _, first = np.unique((window_hit * span_of + begins) * span_of + stops, return_index=True)
    first.sort()
    window_hit, begins, stops = window_hit[first], begins[first], stops[first]
    maxima, at, held = _window_maxima(
        per_word, starts, ends, first_token[window_hit], first_token[window_hit] + sizes[window_hit], begins, stops
    )
    chosen = _best_windows(maxima, at, held, window_hit, begins, len(spans))
    window_begin = np.where(chosen >= 0, begins[np.maximum(chosen, 0)], 0)
    window_end = np.where(chosen >= 0, stops[np.maximum(chosen, 0)], np.minimum(page.lengths[which], width))
    marked = _marked_tokens(per_word, starts, ends, hit_of, window_begin, window_end)
    marked_hit = hit_of[marked]
    found = []
    for i, (begin, end) in enumerate(zip(window_begin.tolist(), window_end.tolist())):
        mine = marked[marked_hit == i]
        words_shown = set(zip(word_starts[mine].tolist(), word_ends[mine].tolist()))
        found.append(_passage_of_words(page.texts[which[i]], begin, end, words_shown))
    return found


def _best_windows(maxima, at, held, window_hit, begins, pages: int) -> np.ndarray:
    """Per page, the index of its chosen passage (-1: none holds a token): most words matched
    strongly, then the strongest matches (to a tenth), then the words closest together, then the
    one that leads in to them (starts 20 characters before them); the first placed wins a tie."""
    strong = maxima >= STRONG_MATCH
    placed = strong.any(axis=1)
    first_at = np.where(strong, at, np.iinfo(np.int64).max).min(axis=1)
    last_at = np.where(strong, at, np.iinfo(np.int64).min).max(axis=1)
    spread = np.where(placed, last_at - first_at, 0)
    lead_in = np.where(placed, np.abs(begins - (first_at - 20)), begins)
    total = np.array([round(float(x), 1) for x in np.clip(maxima, 0.0, None).sum(axis=1).tolist()])
    count = strong.sum(axis=1)
    order = np.flatnonzero(held)
    # np.lexsort sorts by its last key first: the page, then most strong words, highest total,
    # least spread, least lead-in, and the first placed.
    ranked = order[np.lexsort((order, lead_in[order], spread[order], -total[order], -count[order], window_hit[order]))]
    chosen = np.full(pages, -1, np.int64)
    pages_held, first = np.unique(window_hit[ranked], return_index=True)
    chosen[pages_held] = ranked[first]
    return chosen


def _marked_tokens(per_word, starts, ends, hit_of, window_begin, window_end) -> np.ndarray:
    """The tokens to highlight, ascending: in its page's passage, each word's best match there
    when strong, and its matches within ``SAME_MATCH`` of it."""
    shown = np.flatnonzero((starts >= window_begin[hit_of]) & (ends <= window_end[hit_of]))
    if not shown.size:
        return shown
    values = per_word[:, shown]  # [w, s]
    new_page = np.diff(hit_of[shown], prepend=-1) != 0
    tops = np.maximum.reduceat(values, np.flatnonzero(new_page), axis=1)[:, np.cumsum(new_page) - 1]  # [w, s]
    keep = (tops >= STRONG_MATCH) & (values >= np.maximum(STRONG_MATCH, tops - SAME_MATCH))
    return shown[keep.any(axis=0)]


_WORD_ASCII = np.array([chr(c).isalnum() or chr(c) == "_" for c in range(128)], dtype=bool)
_STOP_CHARS = max(map(len, STOP_WORDS))


def _window_maxima(per_word, starts, ends, first, last, begins, stops) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate passage (of the page whose tokens are ``first[c]:last[c]``): each word's best
    similarity there [c, w] (-inf: no token inside), the start of the first token reaching it
    [c, w], and whether a token lies inside [c]. By the compiled kernel when this process has
    loaded it, else as arrays [c, w, t] page by page."""
    n, nw = len(begins), per_word.shape[0]
    maxima = np.full((n, nw), -np.inf, np.float32)
    at = np.zeros((n, nw), np.int64)
    held = np.zeros(n, np.bool_)
    kernels = loaded_kernels()
    if kernels is not None:
        kernels.window_maxima(np.ascontiguousarray(per_word, np.float32), starts, ends, first, last, begins, stops, maxima, at, held)
        return maxima, at, held
    for a, b in sorted(set(zip(first.tolist(), last.tolist()))):
        mine = np.flatnonzero(first == a)
        inside = (starts[None, a:b] >= begins[mine, None]) & (ends[None, a:b] <= stops[mine, None])  # [c, t]
        held[mine] = inside.any(axis=1)
        # Only tokens some word matches above zero can change a passage's key: a word's best
        # there at or below zero counts as zero, and is no strong match.
        useful = a + np.flatnonzero(per_word[:, a:b].max(axis=0, initial=-np.inf) > 0)
        if useful.size:
            masked = np.where(inside[:, None, useful - a], per_word[None, :, useful], -np.inf)  # [c, w, u]
            maxima[mine], at[mine] = masked.max(axis=2), starts[useful][masked.argmax(axis=2)]
    return maxima, at, held


def _among(values: np.ndarray, ascending: np.ndarray) -> np.ndarray:
    """np.isin(values, ascending) for an ascending array, by binary search (np.isin sorts both)."""
    if not len(ascending):
        return np.zeros(values.shape, bool)
    at = np.minimum(np.searchsorted(ascending, values), len(ascending) - 1)
    return ascending[at] == values


def _ascii_key(codes: np.ndarray) -> np.ndarray:
    """[n, k] character codes (0 past a word's end) -> one integer per row (8 bits a character)."""
    shifts = np.arange(codes.shape[1], dtype=np.uint64) * np.uint64(8)
    return (codes.astype(np.uint64) << shifts).sum(axis=1, dtype=np.uint64)


_STOP_KEYS = np.sort(_ascii_key(np.array([[ord(c) for c in w.ljust(_STOP_CHARS, "\0")] for w in STOP_WORDS], dtype=np.uint64)))


class PageText:
    """Pages' texts as arrays (the shown hits', all at once: one pass over their characters): the
    runs of word characters (what :func:`word_around` widens to), which runs are stop words, and
    where the spaces are. The texts are joined by a newline, which is neither a word character
    nor a space, so that no run and no passage crosses from one page into the next. Methods take
    and return offsets in one page's text; ``page`` says which (a number, or one per span)."""

    def __init__(self, texts: list[str] | str):
        self.texts = [texts] if isinstance(texts, str) else list(texts)
        self.lengths = np.array([len(t) for t in self.texts], dtype=np.int64)
        self.offsets = np.cumsum(self.lengths + 1) - self.lengths - 1
        joined = "\n".join(self.texts)
        self.n = len(joined)
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ascii_ = codes < 128
        if ascii_.all():
            word = _WORD_ASCII[codes]
        else:
            word = np.zeros(len(codes), dtype=bool)
            word[ascii_] = _WORD_ASCII[codes[ascii_]]
            wide = np.flatnonzero(~ascii_)
            values, inverse = np.unique(codes[wide], return_inverse=True)
            word[wide] = np.array([_is_word_char(chr(v)) for v in values.tolist()], dtype=bool)[inverse]
        edges = np.diff(np.concatenate(([0], word.view(np.int8), [0])))
        self.run_starts = np.flatnonzero(edges == 1)
        self.run_ends = np.flatnonzero(edges == -1)
        # Per character: whether it is a word character, and how many runs start at or before it
        # (a character's run, and the runs a position follows, without a binary search per token).
        self._word = word
        self._runs_so_far = np.cumsum(edges[:-1] == 1)
        self.spaces = np.flatnonzero(codes == 32)
        self.stop_keys = self._stop_runs(codes)

    def _stop_runs(self, codes: np.ndarray) -> np.ndarray:
        """``start * (n + 1) + end`` of the runs that are stop words, in ASCII upper or lower case
        (every stop word is lower-case ASCII letters)."""
        lengths = self.run_ends - self.run_starts
        short = np.flatnonzero(lengths <= _STOP_CHARS)
        if not short.size:
            return np.zeros(0, np.int64)
        at = self.run_starts[short, None] + np.arange(_STOP_CHARS)
        within = at < self.run_ends[short, None]
        chars = np.where(within, codes[np.minimum(at, len(codes) - 1)], 0)
        chars = np.where((chars >= 65) & (chars <= 90), chars + 32, chars)  # ASCII upper to lower case
        stop = (chars < 128).all(axis=1) & _among(_ascii_key(chars), _STOP_KEYS)
        return self.run_starts[short[stop]] * (self.n + 1) + self.run_ends[short[stop]]

    def _run_at(self, x: np.ndarray) -> np.ndarray:
        """The run holding character x of the joined text, or -1 (the text has runs)."""
        at = np.clip(x, 0, self.n - 1)
        return np.where((x >= 0) & (x < self.n) & self._word[at], self._runs_so_far[at] - 1, -1)

    def _words(self, spans: np.ndarray, page) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`words` as offsets in the joined text."""
        spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        offset, length = self.offsets[page], self.lengths[page]
        start = np.clip(spans[:, 0], 0, length) + offset
        end = np.clip(spans[:, 1], 0, length) + offset
        if not len(self.run_starts):
            return start, end
        empty = start == end
        at_start, before = self._run_at(start), self._run_at(start - 1)
        # A span that starts on a word character (or an empty one after one) widens to its word's
        # start, and one that ends on a word character (or is still empty) to its end.
        start = np.where(~empty & (at_start >= 0), self.run_starts[np.maximum(at_start, 0)], start)
        start = np.where(empty & (before >= 0), self.run_starts[np.maximum(before, 0)], start)
        at_end, last = self._run_at(end), self._run_at(end - 1)
        widen = (at_end >= 0) & ((start == end) | (last >= 0))
        end = np.where(widen, self.run_ends[np.maximum(at_end, 0)], end)
        return start, end

    def words(self, spans: np.ndarray, page=0) -> tuple[np.ndarray, np.ndarray]:
        """Per span, [start, end) of the word it lies in: :func:`word_around` of every span at once."""
        start, end = self._words(spans, page)
        offset = self.offsets[page]
        return start - offset, end - offset

    def usable(self, spans: np.ndarray, page=0) -> np.ndarray:
        """Per token span, whether the page word it lies in holds a letter or a digit and is no
        stop word: what may match a query word."""
        return self._usable(*self._words(spans, page))

    def token_words(self, spans: np.ndarray, page=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per token span, its word's [start, end) (:meth:`words`) and whether it is usable (:meth:`usable`)."""
        start, end = self._words(spans, page)
        offset = self.offsets[page]
        return start - offset, end - offset, self._usable(start, end)

    def _usable(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        runs = len(self.run_starts)
        # A word holds a word character when some run begins before its end and ends after its
        # start: the first run ending after ``start`` (np.searchsorted(run_ends, start, "right")).
        at = np.clip(start, 0, max(self.n - 1, 0))
        if self.n:
            following = np.where(start >= self.n, runs, self._runs_so_far[at] - self._word[at])
        else:
            following = np.zeros(start.shape, np.int64)
        has_word_char = following < runs
        if runs:
            has_word_char &= self.run_starts[np.minimum(following, runs - 1)] < end
        return has_word_char & ~_among(start * (self.n + 1) + end, self.stop_keys)

    def bounds(self, begins: np.ndarray, page=0, width: int = SNIPPET_CHARS) -> tuple[np.ndarray, np.ndarray]:
        """:func:`passage_bounds` of many ``begins`` at once (``page``: one page, or one per begin): (begins, ends)."""
        n, offset, spaces = self.lengths[page], self.offsets[page], self.spaces
        begin = np.maximum(0, np.minimum(np.asarray(begins, dtype=np.int64), n - width))
        if len(spaces):
            # text.find(" ", begin): the first space at or after begin (one past this page's end
            # is the next page's, and is not taken).
            after = np.searchsorted(spaces, begin + offset, side="left")
            space = np.where(after < len(spaces), spaces[np.minimum(after, len(spaces) - 1)] - offset, -1)
            begin = np.where((begin > 0) & (space >= 0) & (space < np.minimum(begin + 20, n)), space + 1, begin)
        end = np.minimum(n, begin + width)
        if len(spaces):
            # text.rfind(" ", begin, end): the last space in [begin, end).
            before = np.searchsorted(spaces, end + offset, side="left") - 1
            space = np.where(before >= 0, spaces[np.maximum(before, 0)] - offset, -1)
            space = np.where(space >= begin, space, -1)
            end = np.where((end < n) & (space > begin + width // 2), space, end)
        return begin, end


def usable_page_words(text: str, spans: np.ndarray) -> np.ndarray:
    """Per token span, whether the page word it lies in (:func:`word_around`) holds a letter or a
    digit and is no stop word: what may match a query word. Computed for all the page's tokens at
    once from the text's runs of word characters (:class:`PageText`)."""
    return PageText(text).usable(spans)


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
    return _passage_of_words(text, begin, end, {word_around(text, span) for span in marked})


def _passage_of_words(text: str, begin: int, end: int, words: set) -> tuple[str, list[tuple[int, int]]]:
    """The passage [begin, end) of ``text`` and, as offsets in it, the ``words`` it shows (merged where they touch)."""
    prefix = "…" if begin > 0 else ""
    snippet = prefix + text[begin:end] + ("…" if end < len(text) else "")
    highlights: list[tuple[int, int]] = []
    for start, stop in sorted(words):
        start, stop = max(start, begin), min(stop, end)
        if start >= stop:
            continue
        shifted = (start - begin + len(prefix), stop - begin + len(prefix))
        if highlights and shifted[0] <= highlights[-1][1]:
            highlights[-1] = (highlights[-1][0], max(highlights[-1][1], shifted[1]))
        else:
            highlights.append(shifted)
    return snippet, highlights
