"""Query-time: score a snapshot of the store against encoded queries, and say why each hit matched."""

from __future__ import annotations

import contextlib
import fnmatch
import os
from dataclasses import dataclass, field

import numpy as np

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError, SmartWarning, StoreDamaged
from smartcli.models.base import Encoded, Encoder, ModelInfo, resolve_device
from smartcli.search import firststage
from smartcli.search.explain import PageText, QueryTerms, TokenMatch, highlighted_passage, match_tokens, passages_of, strong_spans
from smartcli.search.firststage import FirstStage, SegmentVocabulary, item_of_row
from smartcli.search.kernel import compiled_kernels, hamming_late, mean_per_query, page_maxima, token_kind, token_similarities, typed_parts
from smartcli.search.pooled import PooledVectors, quantize
from smartcli.search.scoring import Weights, fuse, maxsim, navigation_penalty, top_k
from smartcli.search.snapshot import Items, subset
from smartcli.store.catalog import LiveItem, Store
from smartcli.store.catalog.reads import LiveColumns, live_columns
from smartcli.store.pageroles import is_navigation
from smartcli.store.segments import MappedTokens, StoredTokens, decode_stored


@dataclass(frozen=True)
class Scope:
    """Which indexed items a search may return (all of them by default)."""

    path_prefixes: tuple[str, ...] = ()  # absolute path prefixes; an item must start with one
    globs: tuple[str, ...] = ()  # an item must match one (see glob_matches)
    kinds: tuple[str, ...] = ()  # "pdf", "image"
    exclude: frozenset = frozenset()  # (path, page) pairs never returned, e.g. the --like source

    def admits(self, item: LiveItem) -> bool:
        return self.admits_file(item.path, item.kind) and (item.path, item.page) not in self.exclude

    def admits_file(self, path: str, kind: str) -> bool:
        """Whether the pages of the file at ``path`` may be returned (``exclude`` aside)."""
        if self.kinds and kind not in self.kinds:
            return False
        if self.path_prefixes and not any(path.startswith(p) for p in self.path_prefixes):
            return False
        return not self.globs or any(glob_matches(path, g) for g in self.globs)


def glob_matches(path: str, pattern: str) -> bool:
    """``*.pdf`` matches the file name (like ``find -name``); a pattern with a ``/`` matches the
    whole absolute path, and a relative one (``manuals/*.pdf``) its end."""
    if "/" not in pattern:
        return fnmatch.fnmatchcase(os.path.basename(path), pattern)
    if not pattern.startswith(("/", "*")):
        pattern = "*/" + pattern
    return fnmatch.fnmatchcase(path, pattern)


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
    also: list[str] = field(default_factory=list)  # other paths with this very page (copies of the file)

    @property
    def path(self) -> str:
        return self.item.path

    @property
    def page(self) -> int:
        return self.item.page

    @property
    def kind(self) -> str:
        return self.item.kind

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
        if self.also:
            data["also"] = list(self.also)
        if is_navigation(self.item.role):
            data["page_role"] = self.item.role  # ranked a little lower (store/pageroles.py)
        if explain:
            data["matches"] = [m.as_json() for m in self.matches]
        return data


def fold_copies(order, copy_key, path_of, k: int) -> tuple[list, dict]:
    """The first ``k`` distinct pages of ``order`` (best first), a page that several paths share
    (copies of one file) counted once: at the rank of its best copy, under the copy whose path
    sorts first, the other paths in ``also``. Returns (kept, {kept: other paths})."""
    groups: dict = {}
    for j in order:
        groups.setdefault(copy_key(j), []).append(j)
    kept, also = [], {}
    for members in list(groups.values())[:k]:
        members = sorted(members, key=path_of)
        kept.append(members[0])
        also[members[0]] = [path_of(m) for m in members[1:]]
    return kept, also


def page_ranges(pages: list[int]) -> str:
    """``1-61`` rather than 61 numbers; ``1-3, 5, 7-9`` where pages are missing."""
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


class Searcher:
    """Holds the committed snapshot of a store (its pages as columns, their pooled vectors, and
    their token states mapped in place) for many queries: the local backend of a query session
    (session.py)."""

    def __init__(
        self,
        store: Store,
        encoder: Encoder | None = None,
        device: str = "auto",
        chunk_size: int | None = None,
        cache_bytes: int = 0,
        shortlist: int | None = defaults.CANDIDATES,
    ):
        """``cache_bytes`` > 0: a long-lived process (many queries), which pays for the compiled
        kernels' import once; token states are memory-mapped either way, so the page cache, not
        the process, holds what queries read. ``shortlist``: two-stage search — each query's
        first stage picks ``shortlist`` pages (by anchor cosine, and on large stores by the
        query's words too: firststage.py), their SMART scores are estimated and the best of them
        scored exactly; None scores every page exactly. ``encoder``: the model tuning trains with
        (query sessions hold their own)."""
        self.shortlist = shortlist
        self.store = store
        self.path = str(store.root)
        self.encoder = encoder
        self.device = resolve_device(device)
        self.chunk_size = chunk_size
        self.cache_bytes = cache_bytes
        self._mapped: dict[str, object] = {}  # segment -> its MappedTokens (or tokens read whole), kept across snapshots
        self._vocabulary: dict[str, tuple | None] = {}  # segment -> its postings (Segment.vocabulary), kept across snapshots
        self._typed = None  # the kernels' typed lists of the parts (made on first compiled use)
        self.damaged: dict[str, str] = {}  # segment -> what is wrong: skipped, said once per process
        self._said_texts: set = set()
        self.last_match = None  # (max, arg-max) [n, Q] of the last late_scores on the CPU, per column
        # Pixel models' token states are patches: no character spans lead back to the page text.
        self.textual = not (store.model and store.model.consumes_pixels)
        self._load_snapshot()

    # -- the snapshot --------------------------------------------------------------------------

    def _load_snapshot(self) -> None:
        self.version = self.store.meta.get("updated")
        columns = live_columns(self.store)
        damaged = [i for i, name in enumerate(columns.segment_names) if name in self.damaged]
        self._set_columns(subset(columns, ~np.isin(columns.segments, damaged)))
        while True:
            try:
                self._load_segments()
                break
            except StoreDamaged as exc:
                self._skip_segment(exc)
        live = set(self._columns.segment_names)
        self._mapped = {name: tokens for name, tokens in self._mapped.items() if name in live and name not in self.damaged}
        self._vocabulary = {name: v for name, v in self._vocabulary.items() if name in live and name not in self.damaged}

    def _set_columns(self, columns: LiveColumns) -> None:
        self._columns = columns
        self.items = Items(self.store, columns, self._said_text_problem)
        navigation = [i for i, role in enumerate(columns.role_names) if is_navigation(role)]
        self.navigation = np.isin(columns.roles, navigation)
        self._first = None

    def _load_segments(self) -> None:
        """Every live segment opened once (checked against the catalog): the pooled vectors of
        its pages read (held, or mapped in place with an int8 copy held: :meth:`_maps_pooled`),
        its token states mapped, and where each page's token rows are in them."""
        c = self._columns
        dims = self.store.model.dims if self.store.model else 0
        n = len(c.item_ids)
        in_place = self._maps_pooled()
        pooled = np.zeros((0 if in_place else n, dims), dtype=np.float32)
        int8, scale = (np.zeros((n, dims), np.int8), np.zeros(n, np.float32)) if in_place else (None, None)
        words, word_starts = [], np.zeros(n if in_place else 0, np.int64)
        starts, stops = np.zeros(n, np.int64), np.zeros(n, np.int64)
        parts: list = []
        bounds = np.searchsorted(c.segments, np.arange(len(c.segment_names) + 1))
        for s, name in enumerate(c.segment_names):
            a, b = int(bounds[s]), int(bounds[s + 1])
            if a == b:
                parts.append(None)
                words.append(np.zeros(0, np.float32))
                continue
            rows = c.rows[a:b]
            with self.store.open_segment(name) as segment:
                vectors = segment.pooled(rows)  # read through HDF5: checked (Fletcher-32, unit rows)
                mapped = segment.mapped_pooled() if in_place else None
                if in_place:
                    int8[a:b], scale[a:b] = quantize(vectors)
                    # A segment whose vectors cannot be read in place keeps its own in the process.
                    file_words, row_starts = mapped if mapped is not None else (vectors.reshape(-1), np.arange(len(rows)) * dims)
                    words.append(file_words)
                    word_starts[a:b] = row_starts[rows] if mapped is not None else row_starts
                else:
                    pooled[a:b] = vectors
                offsets = segment.offsets()
                if name not in self._mapped:
                    self._mapped[name] = segment.mapped_tokens() or _ReadWhole(segment)
            starts[a:b], stops[a:b] = offsets[rows], offsets[rows + 1]
            parts.append(self._mapped[name])
        if in_place:
            self.pooled = PooledVectors.mapped(words, c.segments, word_starts, int8, scale, dims)
        else:
            self.pooled = PooledVectors.held(pooled)
        self._starts, self._stops, self._parts = starts, stops, parts
        self._checked = np.zeros(n, dtype=bool)  # rows whose CRC-32 this snapshot checked
        self._typed = None

    def _maps_pooled(self) -> bool:
        """Whether the pooled vectors stay in the segment files (read in place, an int8 copy
        held): where the first stage scans int8 (large stores, compiled kernels)."""
        return self._compiled() and len(self) >= firststage.INT8_SCAN_PAGES and compiled_kernels() is not None

    def _skip_segment(self, exc: StoreDamaged) -> None:
        """Leave a damaged segment's pages out of this snapshot (and later ones), with one warning."""
        name = exc.details.get("segment")
        if not name or name in self.damaged or exc.details.get("missing") or self.store.expected(name) is None:
            raise exc  # not a damaged segment of the current catalog: the caller takes a new snapshot
        self.damaged[name] = str(exc)
        self._mapped.pop(name, None)
        c = self._columns
        keep = c.segments != (c.segment_names.index(name) if name in c.segment_names else -1)
        pages = int((~keep).sum())
        sized = getattr(self, "pooled", None) is not None and len(self.pooled) == len(keep)
        self._set_columns(subset(c, keep))
        if sized:
            self.pooled, self._starts, self._stops = self.pooled.subset(keep), self._starts[keep], self._stops[keep]
            self._checked = self._checked[keep]
        _warn(f"{exc}; its {pages} page(s) are left out of the results (the rest of the store answers)")

    def _said_text_problem(self, item: LiveItem) -> None:
        if (where := f"page {item.page} of {item.path}") not in self._said_texts:
            self._said_texts.add(where)
            _warn(f"{where}: {item.text_problem}; its snippets may show wrong characters", stacklevel=4)

    def refresh(self, force: bool = False) -> bool:
        """Take a new snapshot if an index run committed since the last one (for long-lived
        processes), or anyway with ``force``; True when it did."""
        if not force and self.store.meta.get("updated") == self.version:
            return False
        self._load_snapshot()
        return True

    @property
    def model(self) -> ModelInfo:
        return self.store.model

    def tuning_record(self) -> dict | None:
        from smartcli.store.tuning import read_tuning

        return read_tuning(self.store)

    def adapter(self, record: dict):
        from smartcli.store.tuning import load_adapter

        return load_adapter(self.store, record)

    def close(self) -> None:
        self.store.close()

    def __len__(self) -> int:
        return len(self._columns.item_ids)

    # -- queries -------------------------------------------------------------------------------

    def search(
        self, queries: list[str], weights: Weights, k: int = 10, scope: Scope = Scope(), min_score: float | None = None
    ) -> list[list[Hit]]:
        """Queries encoded by this searcher's own encoder (tuning's), prepared as a query session
        prepares them (queries.py)."""
        from smartcli.search.queries import prepare_query

        queries = [prepare_query(q) for q in queries]
        return self.search_encoded(self.encoder.encode_queries(queries), weights, k, texts=queries, scope=scope, min_score=min_score)

    def search_encoded(
        self,
        encoded: list[Encoded],
        weights: Weights,
        k: int,
        texts: list[str] | None = None,
        scope: Scope = Scope(),
        min_score: float | None = None,
        snippets: bool = True,
    ) -> list[list[Hit]]:
        # A two-stage query is small work: one thread (more only slow it down on a busy machine).
        # An exhaustive scan of every page keeps the default thread pools.
        while True:  # a segment found damaged on the way is left out, and the query asked again
            try:
                with query_threads(self.two_stage(weights, len(self))):
                    scored = self.score(encoded, weights, scope, k=k)
                    return self.rank(encoded, scored, weights, k, snippets=snippets, texts=texts, min_score=min_score)
            except StoreDamaged as exc:
                self._skip_segment(exc)

    def score(self, encoded: list[Encoded], weights: Weights, scope: Scope = Scope(), k: int = defaults.TOP_K) -> Scored:
        """The scores search ranks by, for every query against the pages it may return.

        Two-stage when ``shortlist`` is set, the weights use both terms and the store has more
        pages than that: each query's first stage picks its shortlist (firststage.py); when the
        shortlist holds more pages than ``defaults.RESCORED`` (or twice ``k``), their SMART scores
        are estimated with Hamming similarities of the query's signs and the best of them are
        scored exactly; only exactly scored pages are eligible. MaxSim alone (``lambda_anchor``
        0) scores every page: a shortlist taken from the anchor would not be "MaxSim only". The
        scores of one ``Scored`` serve any weights of the same kind.
        """
        admitted = self.admitted(scope)
        if not len(admitted) or not encoded:
            empty = np.zeros((len(encoded), 0), np.float32)
            return Scored(admitted, empty, None, np.zeros((len(encoded), 0), bool))
        if not weights.needs_tokens:
            anchor_all = self._anchor(encoded, admitted)
            return Scored(admitted, anchor_all, None, np.ones(anchor_all.shape, bool))
        if not self.two_stage(weights, len(admitted)):
            anchor_all = self._anchor(encoded, admitted)
            late = self.late_scores(encoded, admitted)
            return Scored(admitted, anchor_all, late, np.ones(anchor_all.shape, bool), self.last_match)
        return self._two_stage(encoded, weights, admitted, k)

    def two_stage(self, weights: Weights, admitted: int) -> bool:
        return self.shortlist is not None and weights.lambda_anchor != 0.0 and self.shortlist < admitted

    def _anchor(self, encoded: list[Encoded], columns: np.ndarray) -> np.ndarray:
        """Anchor cosines [m, n] of the queries against the pages ``columns``, exact (float32)."""
        queries = np.stack([e.pooled for e in encoded]).astype(np.float32, copy=False)
        return self.pooled.matmul(queries, None if len(columns) == len(self) else np.asarray(columns, dtype=np.int64))

    def _two_stage(self, encoded: list[Encoded], weights: Weights, admitted: np.ndarray, k: int) -> Scored:
        first = self.first_stage()
        mask = None if len(admitted) == len(self) else np.isin(np.arange(len(self)), admitted)
        chosen, maxima = [], []
        size = shortlist_size(self.shortlist, len(admitted))
        for query in encoded:
            shortlist = first.shortlist(query, size, mask)
            pages = self._rescored(query, weights, shortlist, k)
            chosen.append(pages)
            maxima.append(self._maxima(query.tokens, pages))
        columns = np.unique(np.concatenate(chosen))
        anchor = self._anchor(encoded, columns)
        widths = [e.tokens.shape[0] for e in encoded]
        late = np.zeros(anchor.shape, np.float32)
        eligible = np.zeros(anchor.shape, bool)
        best = np.zeros((len(columns), sum(widths)), np.float32)
        arg = np.zeros((len(columns), sum(widths)), np.int64)
        first_column = 0
        for qi, (pages, (page_best, page_arg)) in enumerate(zip(chosen, maxima)):
            at = np.searchsorted(columns, pages)
            eligible[qi, at] = True
            late[qi, at] = mean_per_query(page_best, [widths[qi]])[0]
            best[at, first_column : first_column + widths[qi]] = page_best
            arg[at, first_column : first_column + widths[qi]] = page_arg
            first_column += widths[qi]
        return Scored(columns, anchor, late, eligible, (best, arg))

    def first_stage(self) -> FirstStage:
        """The snapshot's first stage (firststage.py): its anchors, and each segment's postings
        with the items its rows are now."""
        if self._first is None:
            c = self._columns
            bounds = np.searchsorted(c.segments, np.arange(len(c.segment_names) + 1))
            vocabularies = []
            for s, name in enumerate(c.segment_names):
                a, b = int(bounds[s]), int(bounds[s + 1])
                if a == b or len(self) < firststage.LEXICAL_FROM_PAGES or self._read_vocabulary(name) is None:
                    continue
                ids, first, held = self._vocabulary[name]
                rows = self._mapped[name].offsets if isinstance(self._mapped.get(name), MappedTokens) else None
                count = len(rows) - 1 if rows is not None else int(c.rows[a:b].max()) + 1
                vocabularies.append(SegmentVocabulary(ids, first, held, item_of_row(count, c.rows[a:b], np.arange(a, b))))
            self._first = FirstStage(self.pooled, vocabularies, compiled=self._compiled(), copies=_first_copies(c))
        return self._first

    def _read_vocabulary(self, name: str) -> tuple | None:
        """A segment's postings, read once per process (None: damaged; its pages are then ranked by
        their anchors alone, and scored as ever)."""
        if name not in self._vocabulary:
            try:
                with self.store.open_segment(name) as segment:
                    self._vocabulary[name] = segment.vocabulary()
            except StoreDamaged as exc:
                _warn(f"{name}: its vocabulary postings are unreadable ({exc}); its pages are shortlisted by their anchors alone")
                self._vocabulary[name] = None
        return self._vocabulary[name]

    def _rescored(self, query: Encoded, weights: Weights, shortlist: np.ndarray, k: int) -> np.ndarray:
        """The pages of ``shortlist`` to score exactly: all of them when they are few, else the
        best ``max(RESCORED, 2k)`` by a SMART score whose late term is estimated from Hamming
        similarities (1-bit stores, compiled kernels), in item order."""
        keep = max(defaults.RESCORED, 2 * k)
        if len(shortlist) <= keep or not self._estimates():
            return shortlist
        late = self._estimated_late(query, shortlist)
        anchor = self.pooled.dot(query.pooled, shortlist)
        estimate = fuse(anchor, late, weights) - self.navigation_penalty(shortlist, weights)
        return np.sort(shortlist[top_k(estimate, keep)])

    def _estimates(self) -> bool:
        """Whether the Hamming estimate runs: compiled kernels on a 1-bit store's states."""
        return self._compiled() and self.device == "cpu" and self._token_kind() == "binary" and compiled_kernels() is not None

    def _token_kind(self) -> str | None:
        part = next((p for p in self._parts if p is not None), None)
        return None if part is None else token_kind(part.stored.data.dtype)

    def _estimated_late(self, query: Encoded, pages: np.ndarray) -> np.ndarray:
        """MaxSim estimated from the signs of the query's tokens (kernel.hamming_late)."""
        self._check(pages)
        parts = self._kernel_parts()
        return hamming_late(query.tokens, parts, self._columns.segments[pages], self._starts[pages], self._stops[pages])

    def _maxima(self, q_tokens: np.ndarray, pages: np.ndarray):
        """The kernel's (max [n, Q], arg-max [n, Q]) of ``q_tokens`` over the pages ``pages``."""
        self._check(pages)
        q = np.asarray(q_tokens, dtype=np.float32)
        segments = self._columns.segments[pages]
        if self._compiled() and compiled_kernels() is not None:
            return page_maxima(q, self._kernel_parts(), self._starts[pages], self._stops[pages], part_of=segments, typed=True)
        stored = [None if p is None else p.stored for p in self._parts]
        return page_maxima(q, stored, self._starts[pages], self._stops[pages], compiled=False, part_of=segments)

    def _kernel_parts(self):
        """The segments' stored token states as the compiled kernels take them (made once per snapshot)."""
        if self._typed is None:
            self._typed = typed_parts([None if p is None else p.stored for p in self._parts])
        return self._typed

    def _check(self, pages: np.ndarray) -> None:
        """Check the CRC-32 of the token rows of ``pages`` not checked before (once per process)."""
        pages = np.asarray(pages, dtype=np.int64)
        todo = pages[~self._checked[pages]]
        if not len(todo):
            return
        segments = self._columns.segments[todo]
        for s in np.unique(segments).tolist():
            part = self._parts[s]
            if isinstance(part, MappedTokens):
                part.check_rows(self._columns.rows[todo[segments == s]])
        self._checked[todo] = True

    def admitted(self, scope: Scope = Scope()) -> np.ndarray:
        """Indexes of the items ``scope`` admits."""
        c = self._columns
        if scope == Scope():
            return np.arange(len(c.item_ids))
        by_file = np.array([scope.admits_file(path, kind) for path, kind in zip(c.paths, c.kinds)], dtype=bool)
        admitted = by_file[c.files] if len(c.paths) else np.zeros(len(c.item_ids), bool)
        for path, page in scope.exclude:
            files = [f for f, p in enumerate(c.paths) if p == path]
            admitted &= ~(np.isin(c.files, files) & (c.pages == page))
        return np.flatnonzero(admitted)

    def rank(
        self,
        encoded: list[Encoded],
        scored: Scored,
        weights: Weights,
        k: int,
        snippets: bool = True,
        texts: list[str] | None = None,
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """Fuse ``scored`` with ``weights`` and return each query's top ``k`` eligible hits scoring
        at least ``min_score``; with ``snippets`` each hit is explained (snippet, highlights,
        token matches)."""
        fused = np.where(scored.eligible, fuse(scored.anchor, scored.late, weights), -np.inf)
        fused = fused - self.navigation_penalty(scored.columns, weights)
        results = []
        for qi, query in enumerate(encoded):
            order, also = self._distinct_top(fused[qi], scored, qi, k, min_score)
            items = self.items.many(np.asarray(scored.columns)[order]) if len(order) else []
            found = None
            if scored.matched is not None:  # the kernel's max and arg-max of this query's tokens
                best, arg = scored.matched
                first = sum(e.tokens.shape[0] for e in encoded[:qi])
                found = [(best[j, first : first + len(query.tokens)], arg[j, first : first + len(query.tokens)]) for j in order]
            explained = self.explain(query, texts[qi] if texts else "", items, found) if snippets else [("", [], [])] * len(items)
            results.append(
                [
                    Hit(
                        rank=rank + 1,
                        item=item,
                        score=float(fused[qi, j]),
                        anchor=float(scored.anchor[qi, j]),
                        late=None if scored.late is None else float(scored.late[qi, j]),
                        snippet=snippet,
                        highlights=highlights,
                        matches=matches,
                        also=also.get(j, []),
                    )
                    for rank, (j, item, (snippet, highlights, matches)) in enumerate(zip(order, items, explained))
                ]
            )
        return results

    def navigation_penalty(self, columns, weights: Weights) -> np.ndarray:
        """Per column, what its fused score loses for being a contents or index page (scoring.navigation_penalty)."""
        share = navigation_penalty(weights)
        return (
            np.where(self.navigation[np.asarray(columns, dtype=np.int64)], np.float32(share), np.float32(0.0))
            if len(columns)
            else np.zeros(0, np.float32)
        )

    def _distinct_top(self, fused_row, scored: Scored, qi: int, k: int, min_score: float | None):
        """The top ``k`` eligible columns scoring at least ``min_score``, copies folded (:func:`fold_copies`)."""
        items, columns = self.items, scored.columns

        def key_of(j):
            return items.copy_key(columns[j])

        def path_of(j):
            return items.path(columns[j])

        wanted = k
        while True:
            order = top_k(fused_row, wanted)
            if len(order):  # copies tie: one cut between them would leave a copy out of ``also``
                tied = np.flatnonzero(fused_row == fused_row[order[-1]])
                order = np.concatenate([order, tied[~np.isin(tied, order)]])
            order = order[scored.eligible[qi, order]]
            if min_score is not None:
                order = order[fused_row[order] >= min_score]
            kept, also = fold_copies(order, key_of, path_of, k)
            if len(kept) >= k or len(order) < wanted or wanted >= fused_row.shape[0]:
                return np.asarray(kept, dtype=np.int64), also
            wanted *= 2

    def late_scores(self, encoded: list[Encoded], admitted=None) -> np.ndarray:
        """MaxSim of every query against every admitted item (all items by default): [m, A].

        On the CPU token states are scored as stored (1-bit states by byte lookup, never
        decoded; see kernel.py), without torch; on CUDA by the torch kernel. The arg-max of
        each query token on each item is kept in ``last_match`` for explaining the hits."""
        admitted = np.arange(len(self)) if admitted is None else np.asarray(admitted, dtype=np.int64)
        if self.device != "cpu":
            return self._late_scores_torch(encoded, admitted)
        q_lengths = [e.tokens.shape[0] for e in encoded]
        if self._compiled() and compiled_kernels() is not None:
            # Per query: its tables are built once and every page is scored in one call.
            maxima = [self._maxima(e.tokens, admitted) for e in encoded]
            best = np.concatenate([m[0] for m in maxima], axis=1) if maxima else np.zeros((len(admitted), 0), np.float32)
            arg = np.concatenate([m[1] for m in maxima], axis=1) if maxima else np.zeros((len(admitted), 0), np.int64)
        else:  # numpy: decode each block of pages once for all queries' tokens
            q_tokens = np.concatenate([e.tokens for e in encoded]).astype(np.float32, copy=False)
            best, arg = self._maxima(q_tokens, admitted)
        self.last_match = (best, arg)
        return mean_per_query(best, q_lengths)

    def _compiled(self) -> bool:
        """Use the compiled kernels: in a long-lived process, and on a store large enough that their
        import (about 0.4 s) costs less than what they save on one query."""
        return self.cache_bytes > 0 or len(self) >= defaults.COMPILED_FROM_PAGES

    def _late_scores_torch(self, encoded: list[Encoded], admitted: np.ndarray) -> np.ndarray:
        """The torch path (CUDA): decode chunks of token states and score them with scoring.maxsim."""
        import torch

        self.last_match = None
        admitted = np.asarray(admitted, dtype=np.int64)
        self._check(admitted)
        q_tokens = torch.from_numpy(np.concatenate([e.tokens for e in encoded])).to(self.device)
        q_lengths = torch.tensor([e.tokens.shape[0] for e in encoded], device=self.device)
        late = np.zeros((len(encoded), len(admitted)), dtype=np.float32)
        # Pages are gathered until about one chunk's worth of tokens and scored in one call: a
        # shortlist is hundreds of short runs, and each call has a fixed cost.
        budget = self.chunk_size
        start = 0
        while start < len(admitted):
            stop, tokens = start, 0
            while stop < len(admitted) and (stop == start or (tokens < defaults.CHUNK_TOKENS if budget is None else stop - start < budget)):
                page = admitted[stop]
                tokens += int(self._stops[page] - self._starts[page])
                stop += 1
            pages = admitted[start:stop]
            pieces = [self._stored_rows(int(p)) for p in pages]
            decoded = torch.from_numpy(decode_stored(pieces)).to(self.device)
            lengths = torch.from_numpy(np.array([p.data.shape[0] for p in pieces], np.int64)).to(self.device)
            late[:, start:stop] = maxsim(q_tokens, decoded, lengths, q_lengths).cpu().numpy()
            start = stop
        return late

    def _stored_rows(self, page: int) -> StoredTokens:
        stored = self._parts[int(self._columns.segments[page])].stored
        a, b = int(self._starts[page]), int(self._stops[page])
        return StoredTokens(stored.data[a:b], None if stored.scale is None else stored.scale[a:b], stored.dims)

    @property
    def columns(self) -> LiveColumns:
        """The snapshot's pages as columns (catalog.reads.LiveColumns), in item order."""
        return self._columns

    def stored_tokens(self, index: int) -> StoredTokens:
        """Item ``index``'s token states as stored (checked first; arrays read in place)."""
        self._check(np.array([index]))
        return self._stored_rows(index)

    def page_tokens(self, index: int) -> np.ndarray:
        """Item ``index``'s token states, decoded to float32 (checked first)."""
        return decode_stored([self.stored_tokens(index)])

    def page_spans(self, index: int) -> np.ndarray | None:
        """Item ``index``'s token spans in its text (None: the segment keeps none)."""
        part = self._parts[int(self._columns.segments[index])]
        if isinstance(part, MappedTokens):
            return part.spans(int(self._columns.rows[index]))
        with self.store.open_segment(self._columns.segment_names[int(self._columns.segments[index])]) as segment:
            start, stop = segment.token_range(int(self._columns.rows[index]))
            return segment.spans(start, stop) if segment.has_spans else None

    def explain(self, query: Encoded, query_text: str, items: list[LiveItem], scored: list | None = None):
        """For each item: (snippet, highlighted word offsets in the snippet, token matches).

        The snippet is the passage where the query's words meet (explain.best_passage); the
        matches say, per query token, which item token it matched and how closely.
        ``scored``: per item, the kernel's (similarities, arg-max) of the query's tokens, which
        spare multiplying the item's token states again. Only these items' token states and
        spans are read (in place, from the mapped segments); the query's words are found once,
        and with ``scored`` on a 1-bit store the similarities of the words' tokens with every
        item's tokens come from one compiled call, none decoded.
        """
        terms = QueryTerms(query, query_text)
        hit_rows = self._hit_rows(items) if scored is not None else None
        arrays = []
        for n, item in enumerate(items):
            if hit_rows is not None:
                similarity, spans = None, hit_rows[3][n]
            else:
                tokens, spans = self._page_arrays(item)
                similarity = query.tokens @ tokens.T  # [q, t]
            arrays.append((similarity, spans if self.textual and item.text else None))
        # The hits' texts as arrays in one pass, and which of their tokens may match a word.
        page = PageText([item.text if spans is not None else "" for item, (_, spans) in zip(items, arrays)])
        words = self._token_words(page, [spans for _, spans in arrays])
        if hit_rows is not None and query_text and len(terms.rows):
            arrays = self._word_similarities(query, terms, hit_rows, arrays, words)
        # The passages of the hits with text and tokens, all at once.
        passaged = [
            n
            for n, (sim, spans) in enumerate(arrays)
            if spans is not None and query_text and terms.words and sim is not None and sim.shape[1]
        ]
        passages = dict(
            zip(
                passaged,
                passages_of(
                    terms,
                    page,
                    passaged,
                    [arrays[n][1] for n in passaged],
                    [arrays[n][0] for n in passaged],
                    [words[n] for n in passaged],
                    rows_given=hit_rows is not None,
                )
                if passaged
                else [],
            )
        )
        explained = []
        for n, (item, (similarity, spans)) in enumerate(zip(items, arrays)):
            found = scored[n] if scored is not None else _argmax_of(similarity)
            matches = match_tokens(query, query_text, item.text, spans, found, terms, page, n, words[n])
            if n in passages:
                snippet, highlights = passages[n]
            elif spans is not None and query_text:
                snippet, highlights = highlighted_passage(item.text, [])  # no query words, or no tokens
            else:
                located = [m.span for m in matches if m.span is not None]
                strong = strong_spans(matches)
                # The strong matches place the snippet; only without any do the weak ones.
                snippet, highlights = highlighted_passage(item.text, strong or located, strong)
            explained.append((snippet, highlights, matches))
        return explained

    @staticmethod
    def _token_words(page: PageText, spans: list) -> list:
        """Per hit (None: no spans), :meth:`PageText.token_words` of its token spans, all in one call."""
        held = [n for n, s in enumerate(spans) if s is not None]
        found: list = [None] * len(spans)
        if not held:
            return found
        joined = np.concatenate([np.asarray(spans[n], dtype=np.int64).reshape(-1, 2) for n in held])
        which = np.repeat(np.array(held, dtype=np.int64), [len(spans[n]) for n in held])
        bounds = np.cumsum([len(spans[n]) for n in held])[:-1]
        starts, ends, usable = (np.split(x, bounds) for x in page.token_words(joined, which))
        for n, start, end, ok in zip(held, starts, ends, usable):
            found[n] = (start, end, ok)
        return found

    def _hit_rows(self, items: list[LiveItem]) -> tuple | None:
        """Where the items' token rows are in the snapshot's segments: (segment per item, first
        row, end row, the items' spans), their rows checked; None where the similarities cannot
        come from the compiled byte lookups (not a 1-bit store, no compiled kernels, an item not
        in this snapshot)."""
        if not (len(items) and self.device == "cpu" and self._estimates()):
            return None
        index = {name: i for i, name in enumerate(self._columns.segment_names)}
        parts = [self._mapped.get(item.segment) for item in items]
        if not all(isinstance(p, MappedTokens) and self._parts[index.get(item.segment, -1)] is p for p, item in zip(parts, items)):
            return None
        rows = [item.row for item in items]
        for part, row in zip(parts, rows):
            part.check_rows(np.array([row]))
        starts = np.array([p.offsets[r] for p, r in zip(parts, rows)], dtype=np.int64)
        stops = np.array([p.offsets[r + 1] for p, r in zip(parts, rows)], dtype=np.int64)
        part_of = np.array([index[item.segment] for item in items], dtype=np.int64)
        return part_of, starts, stops, [part.spans(row) for part, row in zip(parts, rows)]

    def _word_similarities(self, query: Encoded, terms: QueryTerms, located: tuple, arrays: list, words: list) -> list:
        """``arrays`` with each textual hit's similarities [len(terms.rows), t] of the query words'
        tokens with its tokens: from one compiled call over the tokens of all the hits that may
        match a word (:meth:`PageText.usable`); the others, which a snippet never counts, -1."""
        part_of, starts, stops, _ = located
        chosen = [n for n, (_, spans) in enumerate(arrays) if spans is not None]
        if not chosen:
            return arrays
        usable = [np.flatnonzero(words[n][2]) for n in chosen]
        rows = np.concatenate([starts[n] + u for n, u in zip(chosen, usable)])
        segments = np.repeat(part_of[chosen], [len(u) for u in usable])
        similarity = token_similarities(query.tokens[terms.rows], self._kernel_parts(), segments, rows)
        arrays = list(arrays)
        for n, u, block in zip(chosen, usable, np.split(similarity, np.cumsum([len(u) for u in usable])[:-1])):
            full = np.full((len(terms.rows), int(stops[n] - starts[n])), -1.0, np.float32)
            full[:, u] = block.T
            arrays[n] = (full, arrays[n][1])
        return arrays

    def _page_arrays(self, item: LiveItem) -> tuple[np.ndarray, np.ndarray | None]:
        """An item's token states (decoded, float32) and character spans (None: none kept)."""
        part = self._mapped.get(item.segment)
        if not isinstance(part, MappedTokens):  # not in this snapshot, or not mappable: read it
            with self.store.open_segment(item.segment) as segment:
                start, stop = segment.token_range(item.row)
                return segment.tokens(start, stop), (segment.spans(start, stop) if segment.has_spans else None)
        part.check_rows(np.array([item.row]))
        a, b = int(part.offsets[item.row]), int(part.offsets[item.row + 1])
        stored = part.stored
        tokens = decode_stored([StoredTokens(stored.data[a:b], None if stored.scale is None else stored.scale[a:b], stored.dims)])
        return tokens, part.spans(item.row)

    def stored_query(self, path: str, page: int | None, named: str | None = None) -> tuple[Encoded, LiveItem]:
        """The stored vectors of an indexed item, as a query ("more like this"); SmartError NOT_FOUND if absent.
        ``named``: the path as the user gave it (see :meth:`find_item`)."""
        item = self.find_item(path, page, named)
        with self.store.open_segment(item.segment) as segment:
            start, stop = segment.token_range(item.row)
            encoded = Encoded(
                pooled=_unit_rows(segment.pooled([item.row])[0]),
                # Decoded 1-bit or int8 states are not unit length; a query's tokens must be.
                tokens=_unit_rows(segment.tokens(start, stop)),
                token_ids=segment.token_ids(start, stop),
                spans=segment.spans(start, stop),
            )
        return encoded, item

    def find_item(self, path: str, page: int | None, named: str | None = None) -> LiveItem:
        """The encoded page ``page`` of the file at absolute ``path``. Where no indexed file is there,
        ``named`` (the path as the user gave it, relative) may name one by base name or by a path
        suffix, as judged files do in evaluation: when exactly one indexed file matches, it is that
        file; several are a NOT_FOUND error listing them (``candidates``)."""
        c = self._columns
        live_files = set(np.unique(c.files).tolist())
        indexed = [c.paths[f] for f in sorted(live_files)]
        if path not in indexed and "\0" not in path:  # a NUL byte names no file (realpath raises on it)
            real = os.path.realpath(path)
            path = next((p for p in indexed if os.path.realpath(p) == real), path)
        if path not in indexed and named and not os.path.isabs(named):
            from smartcli.search.evaluate import matches

            candidates = sorted({p for p in indexed if matches(named, p)})
            if len(candidates) > 1:
                raise SmartError(
                    ErrorKind.NOT_FOUND,
                    f"{named} names {len(candidates)} indexed files: {', '.join(candidates)}",
                    path=named,
                    candidates=candidates,
                )
            if candidates:
                path = candidates[0]
        files = [f for f in live_files if c.paths[f] == path]
        pages = np.flatnonzero(np.isin(c.files, files))
        if not len(pages):
            raise SmartError(ErrorKind.NOT_FOUND, f"{path} is not in the index, or none of its pages is encoded", path=path)
        numbers = c.pages[pages]
        if page is None:
            if len(pages) > 1:
                raise SmartError(
                    ErrorKind.NOT_FOUND, f"{path} has {len(pages)} encoded pages; name one", path=path, pages=[int(p) for p in numbers]
                )
            return self.items[int(pages[0])]
        for index, number in zip(pages, numbers):
            if number == page:
                return self.items[int(index)]
        raise SmartError(
            ErrorKind.NOT_FOUND,
            f"page {page} of {path} is not in the index (encoded pages: {page_ranges(sorted(int(p) for p in numbers))})",
            path=path,
            pages=[int(p) for p in numbers],
        )


@dataclass
class Scored:
    """Scores of queries (rows) against pages (columns: indexes into ``Searcher.items``)."""

    columns: np.ndarray  # item indexes (Searcher.items), ascending
    anchor: np.ndarray  # [m, n] anchor cosines
    late: np.ndarray | None  # [m, n] MaxSim, None when the weights need no token states
    eligible: np.ndarray  # [m, n] bool: the page may be returned for the query (its shortlist)
    matched: tuple | None = None  # (max [n, Q], arg-max [n, Q]) per page and query token, from the kernel


class _ReadWhole:
    """A segment's token states read into memory whole: for a per-token dataset that cannot be
    memory-mapped (nothing ``smart`` writes is such), checked as it is read."""

    def __init__(self, segment):
        self.stored = segment.stored_tokens(0, int(segment.offsets()[-1]))


_THREADPOOLS = None


def query_threads(limit: bool = True):
    """Limit numpy's BLAS to ``defaults.QUERY_THREADS`` threads inside the block (when ``limit``)."""
    global _THREADPOOLS
    if not limit:
        return contextlib.nullcontext()
    if _THREADPOOLS is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _THREADPOOLS = False
        else:
            _THREADPOOLS = ThreadpoolController()
    if not _THREADPOOLS:
        return contextlib.nullcontext()
    return _THREADPOOLS.limit(limits=defaults.QUERY_THREADS, user_api="blas")


def shortlist_size(candidates: int, pages: int) -> int:
    """The first stage's shortlist over ``pages`` pages for ``candidates`` (K): K up to
    ``defaults.CANDIDATES_GROW_FROM`` pages, then K times the square root of how many times
    larger the store is, at most ``defaults.CANDIDATES_MAX`` (or K, when larger): the first
    stage's recall of the exact top 10 falls as a store grows, the estimate's cost grows with K."""
    if pages <= defaults.CANDIDATES_GROW_FROM:
        return candidates
    grown = int(round(candidates * (pages / defaults.CANDIDATES_GROW_FROM) ** 0.5))
    return max(candidates, min(grown, defaults.CANDIDATES_MAX))


def _warn(text: str, stacklevel: int = 3) -> None:
    import warnings

    warnings.warn(SmartWarning(text), stacklevel=stacklevel)


def _first_copies(columns: LiveColumns) -> np.ndarray | None:
    """Per item, the first item sharing its segment row (copies of a file share rows); None when no two share one."""
    key = columns.segments.astype(np.int64) * (int(columns.rows.max(initial=0)) + 1) + columns.rows
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if len(first) == len(key):
        return None
    return first[inverse]


def _argmax_of(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(similarity, arg-max) of each query token over a page's token states, from their similarities [q, t]."""
    best = similarity.argmax(axis=1)
    return similarity[np.arange(len(best)), best], best


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
