"""Query-time: score a snapshot of the store against encoded queries, and say why each hit matched."""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from smartcli.encoders import Encoded, Encoder, resolve_device
from smartcli.scoring import Weights, fuse, maxsim, top_k
from smartcli.store import LiveItem, Store, decode_stored, read_stored_rows, read_token_rows

# Upper bound on the token states held in memory at once (per chunk) when --chunk-size is automatic.
DEFAULT_CHUNK_TOKENS = 65536
SNIPPET_CHARS = 160
# Two-stage search: items re-scored with SMART after the anchor ranking (see benchmarks/two_stage.py).
DEFAULT_CANDIDATES = 200  # also the --candidates default in cli.py
# Matched words at least this similar are highlighted and place the snippet. With the default
# model an exact word match scores 0.8-0.9, a related word ("wireless" for "wifi") 0.5-0.7, an
# unrelated one ("need" for "pressure") mostly below 0.4.
STRONG_MATCH = 0.5


@dataclass(frozen=True)
class Scope:
    """Which indexed items a search may return (all of them by default)."""

    path_prefixes: tuple[str, ...] = ()  # absolute path prefixes; an item must start with one
    globs: tuple[str, ...] = ()  # an item must match one (see glob_matches)
    kinds: tuple[str, ...] = ()  # "pdf", "image"
    exclude: frozenset = frozenset()  # (path, page) pairs never returned, e.g. the --like source

    def admits(self, item: LiveItem) -> bool:
        if self.kinds and item.kind not in self.kinds:
            return False
        if self.path_prefixes and not any(item.path.startswith(p) for p in self.path_prefixes):
            return False
        if self.globs and not any(glob_matches(item.path, g) for g in self.globs):
            return False
        return (item.path, item.page) not in self.exclude


def glob_matches(path: str, pattern: str) -> bool:
    """``*.pdf`` matches the file name (like ``find -name``); a pattern with a ``/`` matches the
    whole absolute path, and a relative one (``manuals/*.pdf``) its end."""
    if "/" not in pattern:
        return fnmatch.fnmatchcase(os.path.basename(path), pattern)
    if not pattern.startswith(("/", "*")):
        pattern = "*/" + pattern
    return fnmatch.fnmatchcase(path, pattern)


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


@dataclass
class Hit:
    rank: int
    item: LiveItem
    score: float
    anchor: float
    late: float | None
    snippet: str
    highlights: list[tuple[int, int]] = field(default_factory=list)  # matched words, as offsets in snippet
    matches: list[TokenMatch] = field(default_factory=list)

    def as_json(self, explain: bool = False) -> dict:
        data = {
            "rank": self.rank,
            "path": self.item.path,
            "file": os.path.basename(self.item.path),
            "page": self.item.page,
            "kind": self.item.kind,
            "score": round(self.score, 6),
            "anchor": round(self.anchor, 6),
            "late": None if self.late is None else round(self.late, 6),
            "snippet": self.snippet,
            "highlights": [list(h) for h in self.highlights],
        }
        if explain:
            data["matches"] = [m.as_json() for m in self.matches]
        return data


class Searcher:
    """Holds the committed snapshot of a store (items and pooled vectors) for many queries."""

    def __init__(
        self,
        store: Store,
        encoder: Encoder | None,
        device: str = "auto",
        chunk_size: int | None = None,
        cache_bytes: int = 0,
        shortlist: int | None = DEFAULT_CANDIDATES,
    ):
        """``cache_bytes``: how much of the token states to keep in memory between queries, for
        long-lived processes (segments never change, so a cached chunk never goes stale).
        ``shortlist``: two-stage search — each query's top ``shortlist`` items by anchor cosine
        are scored with SMART, and only their token states are read; None scores every item."""
        import torch

        self.shortlist = shortlist
        self.store = store
        self.encoder = encoder
        self.device = resolve_device(device)
        self.chunk_size = chunk_size
        self.cache_bytes = cache_bytes
        self._torch = torch
        self._offsets: dict[str, np.ndarray] = {}
        self._token_cache: dict[tuple[str, int, int], tuple] = {}
        self._cached_bytes = 0
        # Pixel models' token states are patches: no character spans lead back to the page text.
        self.textual = not (store.model and store.model.consumes_pixels)
        self._load_snapshot()

    def _load_snapshot(self) -> None:
        self.version = self.store.meta.get("updated")
        self.items = self.store.live_items()
        self.pooled = self._load_pooled()
        live = {item.segment for item in self.items}
        for key in [key for key in self._token_cache if key[0] not in live]:
            tokens, _ = self._token_cache.pop(key)
            self._cached_bytes -= tokens.nbytes
        self._offsets = {name: offsets for name, offsets in self._offsets.items() if name in live}

    def refresh(self, force: bool = False) -> bool:
        """Take a new snapshot if an index run committed since the last one (for long-lived
        processes), or anyway with ``force``; True when it did."""
        if not force and self.store.meta.get("updated") == self.version:
            return False
        self._load_snapshot()
        return True

    def _load_pooled(self) -> np.ndarray:
        dims = self.store.model.dims if self.store.model else 0
        pooled = np.zeros((len(self.items), dims), dtype=np.float32)
        for name, indexes in self._by_segment(range(len(self.items))).items():
            rows = np.array([self.items[i].row for i in indexes])
            with self.store.open_segment(name) as segment:
                pooled[indexes] = segment["pooled"][:][rows]
        return pooled

    def _by_segment(self, indexes) -> dict[str, list[int]]:
        """Item indexes grouped by segment, in row order (items are sorted by segment and row)."""
        groups: dict[str, list[int]] = defaultdict(list)
        for index in indexes:
            groups[self.items[index].segment].append(index)
        return groups

    def __len__(self) -> int:
        return len(self.items)

    def search(self, queries: list[str], weights: Weights, k: int = 10, scope: Scope = Scope(), min_score: float | None = None) -> list[list[Hit]]:
        encoded = self.encoder.encode(queries)
        return self.search_encoded(encoded, weights, k, texts=queries, scope=scope, min_score=min_score)

    def search_encoded(
        self,
        encoded: list[Encoded],
        weights: Weights,
        k: int,
        texts: list[str] | None = None,
        scope: Scope = Scope(),
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        admitted = self.admitted(scope)
        if not admitted or not encoded:
            return [[] for _ in encoded]
        if weights.needs_tokens and self.shortlist is not None and self.shortlist <= len(admitted):
            return self._two_stage(encoded, weights, k, texts, admitted, min_score)
        anchor, late = self.scores(encoded, with_late=weights.needs_tokens, admitted=admitted)
        return self.rank(encoded, anchor, late, weights, k, texts=texts, admitted=admitted, min_score=min_score)

    def _two_stage(self, encoded, weights, k, texts, admitted, min_score) -> list[list[Hit]]:
        """Rank ``admitted`` items by anchor cosine, then score each query's top ``shortlist`` with SMART."""
        pooled = self.pooled if len(admitted) == len(self.items) else self.pooled[admitted]
        anchor_all = np.stack([e.pooled for e in encoded]) @ pooled.T
        own = [np.argpartition(-row, self.shortlist - 1)[: self.shortlist] for row in anchor_all]
        columns = np.unique(np.concatenate(own))  # sorted, so token states are read in offset order
        shortlisted = [admitted[j] for j in columns]
        anchor, late = self.scores(encoded, with_late=True, admitted=shortlisted)
        # With several queries the union is scored; each query keeps only its own shortlist.
        for qi, mine in enumerate(own):
            anchor[qi, ~np.isin(columns, mine)] = -np.inf
        return self.rank(encoded, anchor, late, weights, k, texts=texts, admitted=shortlisted, min_score=min_score)

    def admitted(self, scope: Scope = Scope()) -> list[int]:
        """Indexes of the items ``scope`` admits."""
        return [i for i, item in enumerate(self.items) if scope.admits(item)]

    def scores(
        self, encoded: list[Encoded], with_late: bool = True, admitted: list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Anchor cosines and (optionally) MaxSim scores of every query against every admitted
        item (all items by default): [m, A] each."""
        pooled = self.pooled if admitted is None else self.pooled[admitted]
        anchor = np.stack([e.pooled for e in encoded]) @ pooled.T
        return anchor, (self.late_scores(encoded, admitted) if with_late else None)

    def rank(
        self,
        encoded: list[Encoded],
        anchor: np.ndarray,
        late: np.ndarray | None,
        weights: Weights,
        k: int,
        snippets: bool = True,
        texts: list[str] | None = None,
        admitted: list[int] | None = None,
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """Fuse precomputed scores (columns: ``admitted``, all items by default) with ``weights``
        and return each query's top ``k`` hits scoring at least ``min_score``; with ``snippets``
        each hit is explained (snippet, highlights, token matches)."""
        if admitted is None:
            admitted = list(range(len(self.items)))
        fused = fuse(anchor, late, weights)
        results = []
        for qi, query in enumerate(encoded):
            order = top_k(fused[qi], k)
            order = order[np.isfinite(fused[qi, order])]  # outside this query's shortlist
            if min_score is not None:
                order = order[fused[qi, order] >= min_score]
            items = [self.items[admitted[j]] for j in order]
            explained = self.explain(query, texts[qi] if texts else "", items) if snippets else [("", [], [])] * len(items)
            results.append(
                [
                    Hit(
                        rank=rank + 1,
                        item=item,
                        score=float(fused[qi, j]),
                        anchor=float(anchor[qi, j]),
                        late=None if late is None else float(late[qi, j]),
                        snippet=snippet,
                        highlights=highlights,
                        matches=matches,
                    )
                    for rank, (j, item, (snippet, highlights, matches)) in enumerate(zip(order, items, explained))
                ]
            )
        return results

    def late_scores(self, encoded: list[Encoded], admitted: list[int] | None = None) -> np.ndarray:
        """MaxSim of every query against every admitted item (all items by default), chunk by chunk: [m, A]."""
        torch = self._torch
        if admitted is None:
            admitted = list(range(len(self.items)))
        column = {index: c for c, index in enumerate(admitted)}
        q_tokens = torch.from_numpy(np.concatenate([e.tokens for e in encoded])).to(self.device)
        q_lengths = torch.tensor([e.tokens.shape[0] for e in encoded], device=self.device)
        late = np.zeros((len(encoded), len(admitted)), dtype=np.float32)
        # Runs of rows are gathered until about one chunk's worth of tokens and scored in one
        # call: a shortlist is hundreds of short runs, and each call has a fixed cost.
        pending: list[tuple] = []  # (tokens, lengths, late columns, rows within the run)

        def score_pending() -> None:
            tokens = torch.from_numpy(decode_stored([p[0] for p in pending])).to(self.device)
            lengths = torch.from_numpy(np.concatenate([p[1] for p in pending])).to(self.device)
            scores = maxsim(q_tokens, tokens, lengths, q_lengths).cpu().numpy()
            start = 0
            for _, lengths, columns, rows in pending:
                late[:, columns] = scores[:, start + rows]
                start += len(lengths)
            pending.clear()

        for name, indexes in self._by_segment(admitted).items():
            with _LazySegment(self.store, name) as segment:
                offsets = self._segment_offsets(name, segment)
                for chunk in self._chunks(indexes, offsets):
                    first, last = self.items[chunk[0]].row, self.items[chunk[-1]].row
                    tokens, lengths = self._chunk_tokens(segment, offsets, first, last)
                    rows = np.array([self.items[i].row - first for i in chunk])
                    pending.append((tokens, lengths, [column[i] for i in chunk], rows))
                    if sum(p[0].data.shape[0] for p in pending) >= DEFAULT_CHUNK_TOKENS:
                        score_pending()
        if pending:
            score_pending()
        return late

    def _segment_offsets(self, name: str, segment: "_LazySegment") -> np.ndarray:
        if name not in self._offsets:
            self._offsets[name] = segment.file["offsets"][:]
        return self._offsets[name]

    def _chunk_tokens(self, segment: "_LazySegment", offsets: np.ndarray, first: int, last: int):
        """Stored token states of rows first..last (still packed) and each row's token count."""
        key = (segment.name, first, last)
        if key in self._token_cache:
            return self._token_cache[key]
        tokens = read_stored_rows(segment.file, offsets[first], offsets[last + 1])
        lengths = np.diff(offsets[first : last + 2])
        size = tokens.nbytes
        if self._cached_bytes + size <= self.cache_bytes:
            self._token_cache[key] = (tokens, lengths)
            self._cached_bytes += size
        return tokens, lengths

    def _chunks(self, indexes: list[int], offsets: np.ndarray):
        """Split a segment's items (in row order) into runs that fit the chunk budget."""
        chunk: list[int] = []
        start_token = 0
        for index in indexes:
            row = self.items[index].row
            if chunk:
                too_many_items = self.chunk_size is not None and len(chunk) >= self.chunk_size
                too_many_tokens = self.chunk_size is None and offsets[row + 1] - start_token > DEFAULT_CHUNK_TOKENS
                gap = row != self.items[chunk[-1]].row + 1  # never read the rows in between
                if too_many_items or too_many_tokens or gap:
                    yield chunk
                    chunk = []
            if not chunk:
                start_token = offsets[row]
            chunk.append(index)
        if chunk:
            yield chunk

    def explain(self, query: Encoded, query_text: str, items: list[LiveItem]):
        """For each item: (snippet, highlighted word offsets in the snippet, token matches).

        The snippet is the passage where the query's tokens found their best matches; the
        matches say, per query token, which item token it matched and how closely.
        """
        explained = []
        with contextlib.ExitStack() as stack:
            segments: dict = {}
            for item in items:
                if item.segment not in segments:
                    segments[item.segment] = stack.enter_context(self.store.open_segment(item.segment))
                matches = match_tokens(query, query_text, item, segments[item.segment], self.textual)
                spans = [m.span for m in matches if m.span is not None]
                strong = strong_spans(matches)
                # The strong matches place the snippet; only without any do the weak ones.
                snippet, highlights = highlighted_passage(item.text, strong or spans, strong)
                explained.append((snippet, highlights, matches))
        return explained

    def stored_query(self, path: str, page: int | None) -> tuple[Encoded, LiveItem]:
        """The stored vectors of an indexed item, as a query ("more like this"); LookupError if absent."""
        item = self.find_item(path, page)
        with self.store.open_segment(item.segment) as segment:
            start, stop = segment["offsets"][item.row : item.row + 2]
            tokens = read_token_rows(segment, start, stop)
            encoded = Encoded(
                pooled=_unit_rows(segment["pooled"][item.row].astype(np.float32)),
                # Decoded 1-bit or int8 states are not unit length; a query's tokens must be.
                tokens=_unit_rows(tokens),
                token_ids=segment["token_ids"][start:stop],
                spans=segment["spans"][start:stop] if "spans" in segment else np.zeros((stop - start, 2), np.int32),
            )
        return encoded, item

    def find_item(self, path: str, page: int | None) -> LiveItem:
        pages = [item for item in self.items if item.path == path]
        if not pages:
            real = os.path.realpath(path)
            pages = [item for item in self.items if os.path.realpath(item.path) == real]
        if not pages:
            raise LookupError(f"{path} is not in the index, or none of its pages is encoded")
        if page is None:
            if len(pages) > 1:
                raise LookupError(f"{path} has {len(pages)} encoded pages; name one as {path}:PAGE")
            return pages[0]
        for item in pages:
            if item.page == page:
                return item
        raise LookupError(f"page {page} of {path} is not in the index (encoded pages: {', '.join(str(i.page) for i in pages)})")


class _LazySegment:
    """A segment file opened on first use, so that a chunk served from memory costs no open()."""

    def __init__(self, store: Store, name: str):
        self.store = store
        self.name = name
        self._file = None

    @property
    def file(self):
        if self._file is None:
            self._file = self.store.open_segment(self.name)
        return self._file

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._file is not None:
            self._file.close()


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def match_tokens(query: Encoded, query_text: str, item: LiveItem, segment, textual: bool = True) -> list[TokenMatch]:
    """Per query token, the item token it matched best and the similarity (the MaxSim arg-max).
    ``textual``: the item's tokens have character spans in its text (not so for pixel models)."""
    start, stop = segment["offsets"][item.row : item.row + 2]
    tokens = read_token_rows(segment, start, stop)
    spans = segment["spans"][start:stop] if textual and item.text and "spans" in segment else None
    similarity = query.tokens @ tokens.T  # [q, t]
    best = similarity.argmax(axis=1)
    matches = []
    for qi, ti in enumerate(best):
        span = None if spans is None else (int(spans[ti][0]), int(spans[ti][1]))
        matches.append(
            TokenMatch(
                query_token=_slice(query_text, query.spans[qi]) if query_text and query.spans[qi][1] > query.spans[qi][0] else None,
                doc_token=int(ti),
                similarity=float(similarity[qi, ti]),
                span=span,
                word=None if span is None else _slice(item.text, word_around(item.text, span)),
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


def passage_around(text: str, matched_spans: np.ndarray, width: int = SNIPPET_CHARS) -> str:
    """The ``width``-character window of ``text`` that covers the most matched token spans."""
    return highlighted_passage(text, [tuple(s) for s in np.asarray(matched_spans).reshape(-1, 2)], width=width)[0]


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
