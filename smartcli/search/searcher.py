"""Query-time: score a snapshot of the store against encoded queries, and say why each hit matched."""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError, SmartWarning, StoreDamaged
from smartcli.models.base import Encoded, Encoder, ModelInfo, resolve_device
from smartcli.search.explain import TokenMatch, best_passage, highlighted_passage, match_tokens, strong_spans
from smartcli.search.kernel import mean_per_query, page_maxima
from smartcli.search.scoring import Weights, fuse, maxsim, navigation_penalty, top_k
from smartcli.store.catalog import LiveItem, Store
from smartcli.store.catalog.reads import live_items
from smartcli.store.pageroles import is_navigation
from smartcli.store.segments import StoredTokens, decode_stored


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


def _copy_key(item: LiveItem) -> tuple:
    """Copies of a file share its rows: one page, whichever path reached it."""
    return (item.segment, item.row, item.page)


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
    """Holds the committed snapshot of a store (items and pooled vectors) for many queries: the
    local backend of a query session (session.py)."""

    def __init__(
        self,
        store: Store,
        encoder: Encoder | None = None,
        device: str = "auto",
        chunk_size: int | None = None,
        cache_bytes: int = 0,
        shortlist: int | None = defaults.CANDIDATES,
    ):
        """``cache_bytes``: how much of the token states to keep in memory between queries, for
        long-lived processes (segments never change, so a cached chunk never goes stale).
        ``shortlist``: two-stage search — each query's top ``shortlist`` items by anchor cosine
        are scored with SMART, and only their token states are read; None scores every item.
        ``encoder``: the model tuning trains with (query sessions hold their own)."""
        self.shortlist = shortlist
        self.store = store
        self.path = str(store.root)
        self.encoder = encoder
        self.device = resolve_device(device)
        self.chunk_size = chunk_size
        self.cache_bytes = cache_bytes
        self._offsets: dict[str, np.ndarray] = {}
        self._resident: dict[str, object] = {}  # warm: segment name -> its StoredTokens, whole
        self._cached_bytes = 0
        self.damaged: dict[str, str] = {}  # segment -> what is wrong: skipped, said once per process
        self._said_texts: set = set()
        self.last_match = None  # (max, arg-max) [n, Q] of the last late_scores on the CPU, per column
        # Pixel models' token states are patches: no character spans lead back to the page text.
        self.textual = not (store.model and store.model.consumes_pixels)
        self._load_snapshot()

    def _load_snapshot(self) -> None:
        self.version = self.store.meta.get("updated")
        self.items = live_items(self.store)
        for item in self.items:
            if item.text_problem and (where := f"page {item.page} of {item.path}") not in self._said_texts:
                self._said_texts.add(where)
                _warn(f"{where}: {item.text_problem}; its snippets may show wrong characters")
        self.items = [item for item in self.items if item.segment not in self.damaged]
        while True:
            try:
                self.pooled = self._load_pooled()
                break
            except StoreDamaged as exc:
                self._skip_segment(exc)
        self.navigation = np.array([is_navigation(item.role) for item in self.items], dtype=bool)
        live = {item.segment for item in self.items}
        for name in [name for name in self._resident if name not in live]:
            self._cached_bytes -= self._resident.pop(name).nbytes
        self._offsets = {name: offsets for name, offsets in self._offsets.items() if name in live}

    def _skip_segment(self, exc: StoreDamaged) -> None:
        """Leave a damaged segment's pages out of this snapshot (and later ones), with one warning."""
        name = exc.details.get("segment")
        if not name or name in self.damaged or exc.details.get("missing") or self.store.expected(name) is None:
            raise exc  # not a damaged segment of the current catalog: the caller takes a new snapshot
        self.damaged[name] = str(exc)
        pages = sum(1 for item in self.items if item.segment == name)
        keep = [i for i, item in enumerate(self.items) if item.segment != name]
        self.items = [self.items[i] for i in keep]
        if getattr(self, "pooled", None) is not None and len(self.pooled) == len(keep) + pages:
            self.pooled = self.pooled[keep]
        if getattr(self, "navigation", None) is not None and len(self.navigation) == len(keep) + pages:
            self.navigation = self.navigation[keep]
        self._offsets.pop(name, None)
        if name in self._resident:
            self._cached_bytes -= self._resident.pop(name).nbytes
        _warn(f"{exc}; its {pages} page(s) are left out of the results (the rest of the store answers)")

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

    def _load_pooled(self) -> np.ndarray:
        dims = self.store.model.dims if self.store.model else 0
        pooled = np.zeros((len(self.items), dims), dtype=np.float32)
        for name, indexes in self._by_segment(range(len(self.items))).items():
            rows = np.array([self.items[i].row for i in indexes])
            with self.store.open_segment(name) as segment:
                pooled[indexes] = segment.pooled(rows)
        return pooled

    def _by_segment(self, indexes) -> dict[str, list[int]]:
        """Item indexes grouped by segment, in row order (items are sorted by segment and row)."""
        groups: dict[str, list[int]] = defaultdict(list)
        for index in indexes:
            groups[self.items[index].segment].append(index)
        return groups

    def __len__(self) -> int:
        return len(self.items)

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
                with query_threads(self.two_stage(weights, len(self.items))):
                    scored = self.score(encoded, weights, scope)
                    return self.rank(encoded, scored, weights, k, snippets=snippets, texts=texts, min_score=min_score)
            except StoreDamaged as exc:
                self._skip_segment(exc)

    def score(self, encoded: list[Encoded], weights: Weights, scope: Scope = Scope()) -> Scored:
        """The scores search ranks by, for every query against the pages it may return.

        Two-stage when ``shortlist`` is set and the weights use both terms: each query's top
        ``shortlist`` pages by anchor cosine get MaxSim, the others are not eligible. MaxSim
        alone (``lambda_anchor`` 0) scores every page: a shortlist taken from the anchor would
        not be "MaxSim only". The scores of one ``Scored`` serve any weights of the same kind.
        """
        admitted = self.admitted(scope)
        if not admitted or not encoded:
            empty = np.zeros((len(encoded), 0), np.float32)
            return Scored(admitted, empty, None, np.zeros((len(encoded), 0), bool))
        anchor_all = np.stack([e.pooled for e in encoded]) @ self._pooled_of(admitted).T
        if not weights.needs_tokens:
            return Scored(admitted, anchor_all, None, np.ones(anchor_all.shape, bool))
        if not self.two_stage(weights, len(admitted)):
            late = self.late_scores(encoded, admitted)
            return Scored(admitted, anchor_all, late, np.ones(anchor_all.shape, bool), self.last_match)
        own = [np.argpartition(-row, self.shortlist - 1)[: self.shortlist] for row in anchor_all]
        columns = np.unique(np.concatenate(own))  # sorted, so token states are read in offset order
        shortlisted = [admitted[j] for j in columns]
        late = self.late_scores(encoded, shortlisted)
        # With several queries the union is scored; each query keeps only its own shortlist.
        eligible = np.stack([np.isin(columns, mine) for mine in own])
        return Scored(shortlisted, anchor_all[:, columns], late, eligible, self.last_match)

    def two_stage(self, weights: Weights, admitted: int) -> bool:
        return self.shortlist is not None and weights.lambda_anchor != 0.0 and self.shortlist <= admitted

    def _pooled_of(self, admitted: list[int]) -> np.ndarray:
        return self.pooled if len(admitted) == len(self.items) else self.pooled[admitted]

    def admitted(self, scope: Scope = Scope()) -> list[int]:
        """Indexes of the items ``scope`` admits."""
        return [i for i, item in enumerate(self.items) if scope.admits(item)]

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
            items = [self.items[scored.columns[j]] for j in order]
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

    def navigation_penalty(self, columns: list[int], weights: Weights) -> np.ndarray:
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
            return _copy_key(items[columns[j]])

        def path_of(j):
            return items[columns[j]].path

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

    def late_scores(self, encoded: list[Encoded], admitted: list[int] | None = None) -> np.ndarray:
        """MaxSim of every query against every admitted item (all items by default): [m, A].

        On the CPU token states are scored as stored (1-bit states by byte lookup, never
        decoded; see kernel.py), without torch; on CUDA by the torch kernel. The arg-max of
        each query token on each item is kept in ``last_match`` for explaining the hits."""
        if admitted is None:
            admitted = list(range(len(self.items)))
        if self.device != "cpu":
            return self._late_scores_torch(encoded, admitted)
        q_tokens = np.concatenate([e.tokens for e in encoded]).astype(np.float32, copy=False)
        q_lengths = [e.tokens.shape[0] for e in encoded]
        best = np.zeros((len(admitted), q_tokens.shape[0]), np.float32)
        arg = np.zeros((len(admitted), q_tokens.shape[0]), np.int64)
        column = {index: c for c, index in enumerate(admitted)}
        for name, indexes in self._by_segment(admitted).items():
            with _LazySegment(self.store, name) as segment:
                offsets = self._segment_offsets(name, segment)
                resident = self._resident_tokens(name, segment, offsets)
                if resident is not None:  # warm: the segment's packed tokens are in memory, read in place
                    rows = np.array([self.items[i].row for i in indexes])
                    cols = np.array([column[i] for i in indexes])
                    best[cols], arg[cols] = page_maxima(q_tokens, resident, offsets[rows], offsets[rows + 1], self._compiled())
                    continue
                pending: list[tuple] = []  # (stored tokens of a run of rows, its rows' columns, their lengths)
                for chunk in self._chunks(indexes, offsets):
                    first, last = self.items[chunk[0]].row, self.items[chunk[-1]].row
                    tokens = segment.file.stored_tokens(offsets[first], offsets[last + 1])
                    lengths = np.diff(offsets[first : last + 2])
                    pending.append((tokens, np.array([column[i] for i in chunk]), lengths))
                    if sum(p[0].data.shape[0] for p in pending) >= defaults.CHUNK_TOKENS:
                        self._score_runs(q_tokens, pending, best, arg)
                if pending:
                    self._score_runs(q_tokens, pending, best, arg)
        self.last_match = (best, arg)
        return mean_per_query(best, q_lengths)

    def _score_runs(self, q_tokens: np.ndarray, pending: list[tuple], best: np.ndarray, arg: np.ndarray) -> None:
        """Score the gathered runs of rows in one kernel call, into their columns of ``best`` and
        ``arg``; ``pending`` is emptied."""
        stored = _concat_stored([p[0] for p in pending])
        lengths = np.concatenate([p[2] for p in pending])
        stops = np.cumsum(lengths)
        cols = np.concatenate([p[1] for p in pending])
        best[cols], arg[cols] = page_maxima(q_tokens, stored, stops - lengths, stops, self._compiled())
        pending.clear()

    def _compiled(self) -> bool:
        """Use the compiled 1-bit kernel: in a long-lived process, where its import is paid once."""
        return self.cache_bytes > 0

    def _resident_tokens(self, name: str, segment: _LazySegment, offsets: np.ndarray):
        """A warm process's copy of a whole segment's stored token states (None when not warm,
        or when it would not fit the cache budget)."""
        if name in self._resident:
            return self._resident[name]
        size = int(offsets[-1]) * segment.file.token_bytes()
        if self._cached_bytes + size > self.cache_bytes:
            return None
        stored = segment.file.stored_tokens(0, int(offsets[-1]))
        self._resident[name] = stored
        self._cached_bytes += stored.nbytes
        return stored

    def _late_scores_torch(self, encoded: list[Encoded], admitted: list[int]) -> np.ndarray:
        """The torch path (CUDA): decode chunks of token states and score them with scoring.maxsim."""
        import torch

        self.last_match = None
        column = {index: c for c, index in enumerate(admitted)}
        q_tokens = torch.from_numpy(np.concatenate([e.tokens for e in encoded])).to(self.device)
        q_lengths = torch.tensor([e.tokens.shape[0] for e in encoded], device=self.device)
        late = np.zeros((len(encoded), len(admitted)), dtype=np.float32)
        # Runs of rows are gathered until about one chunk's worth of tokens and scored in one
        # call: a shortlist is hundreds of short runs, and each call has a fixed cost.
        pending: list[tuple] = []  # (tokens, lengths, late columns)

        def score_pending() -> None:
            tokens = torch.from_numpy(decode_stored([p[0] for p in pending])).to(self.device)
            lengths = torch.from_numpy(np.concatenate([p[1] for p in pending])).to(self.device)
            scores = maxsim(q_tokens, tokens, lengths, q_lengths).cpu().numpy()
            start = 0
            for _, lengths, columns in pending:
                late[:, columns] = scores[:, start : start + len(lengths)]
                start += len(lengths)
            pending.clear()

        for name, indexes in self._by_segment(admitted).items():
            with _LazySegment(self.store, name) as segment:
                offsets = self._segment_offsets(name, segment)
                for chunk in self._chunks(indexes, offsets):
                    first, last = self.items[chunk[0]].row, self.items[chunk[-1]].row
                    tokens = segment.file.stored_tokens(offsets[first], offsets[last + 1])
                    lengths = np.diff(offsets[first : last + 2])
                    pending.append((tokens, lengths, [column[i] for i in chunk]))
                    if sum(p[0].data.shape[0] for p in pending) >= defaults.CHUNK_TOKENS:
                        score_pending()
        if pending:
            score_pending()
        return late

    def _segment_offsets(self, name: str, segment: _LazySegment) -> np.ndarray:
        if name not in self._offsets:
            self._offsets[name] = segment.file.offsets()
        return self._offsets[name]

    def _chunks(self, indexes: list[int], offsets: np.ndarray):
        """Split a segment's items (in row order) into runs that fit the chunk budget."""
        chunk: list[int] = []
        start_token = 0
        for index in indexes:
            row = self.items[index].row
            if chunk:
                too_many_items = self.chunk_size is not None and len(chunk) >= self.chunk_size
                too_many_tokens = self.chunk_size is None and offsets[row + 1] - start_token > defaults.CHUNK_TOKENS
                gap = row != self.items[chunk[-1]].row + 1  # never read the rows in between
                if too_many_items or too_many_tokens or gap:
                    yield chunk
                    chunk = []
            if not chunk:
                start_token = offsets[row]
            chunk.append(index)
        if chunk:
            yield chunk

    def explain(self, query: Encoded, query_text: str, items: list[LiveItem], scored: list | None = None):
        """For each item: (snippet, highlighted word offsets in the snippet, token matches).

        The snippet is the passage where the query's tokens found their best matches; the
        matches say, per query token, which item token it matched and how closely.
        ``scored``: per item, the kernel's (similarities, arg-max) of the query's tokens, which
        spare reading and multiplying the item's token states again.
        """
        explained = []
        with contextlib.ExitStack() as stack:
            segments: dict = {}
            for item in items:
                if item.segment not in segments:
                    segments[item.segment] = stack.enter_context(self.store.open_segment(item.segment))
                found = None if scored is None else scored[len(explained)]
                segment = segments[item.segment]
                matches = match_tokens(query, query_text, item, segment, self.textual, found)
                if self.textual and item.text and query_text and segment.has_spans:
                    # The passage where the most query words meet (explain.best_passage).
                    start, stop = segment.token_range(item.row)
                    snippet, highlights = best_passage(
                        query, query_text, item.text, segment.tokens(start, stop), segment.spans(start, stop)
                    )
                else:
                    spans = [m.span for m in matches if m.span is not None]
                    strong = strong_spans(matches)
                    # The strong matches place the snippet; only without any do the weak ones.
                    snippet, highlights = highlighted_passage(item.text, strong or spans, strong)
                explained.append((snippet, highlights, matches))
        return explained

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
        pages = [item for item in self.items if item.path == path]
        if not pages and "\0" not in path:  # a NUL byte names no file (realpath raises on it)
            real = os.path.realpath(path)
            pages = [item for item in self.items if os.path.realpath(item.path) == real]
        if not pages and named and not os.path.isabs(named):
            from smartcli.search.evaluate import matches

            candidates = sorted({item.path for item in self.items if matches(named, item.path)})
            if len(candidates) > 1:
                raise SmartError(
                    ErrorKind.NOT_FOUND,
                    f"{named} names {len(candidates)} indexed files: {', '.join(candidates)}",
                    path=named,
                    candidates=candidates,
                )
            if candidates:
                path = candidates[0]
                pages = [item for item in self.items if item.path == path]
        if not pages:
            raise SmartError(ErrorKind.NOT_FOUND, f"{path} is not in the index, or none of its pages is encoded", path=path)
        if page is None:
            if len(pages) > 1:
                raise SmartError(
                    ErrorKind.NOT_FOUND, f"{path} has {len(pages)} encoded pages; name one", path=path, pages=[i.page for i in pages]
                )
            return pages[0]
        for item in pages:
            if item.page == page:
                return item
        raise SmartError(
            ErrorKind.NOT_FOUND,
            f"page {page} of {path} is not in the index (encoded pages: {page_ranges(sorted(i.page for i in pages))})",
            path=path,
            pages=[i.page for i in pages],
        )


@dataclass
class Scored:
    """Scores of queries (rows) against pages (columns: indexes into ``Searcher.items``)."""

    columns: list[int]
    anchor: np.ndarray  # [m, n] anchor cosines
    late: np.ndarray | None  # [m, n] MaxSim, None when the weights need no token states
    eligible: np.ndarray  # [m, n] bool: the page may be returned for the query (its shortlist)
    matched: tuple | None = None  # (max [n, Q], arg-max [n, Q]) per page and query token, from the kernel


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


def _warn(text: str) -> None:
    import warnings

    warnings.warn(SmartWarning(text), stacklevel=3)


def _concat_stored(parts: list) -> StoredTokens:
    if len(parts) == 1:
        return parts[0]
    scale = None if parts[0].scale is None else np.concatenate([p.scale for p in parts])
    return StoredTokens(np.concatenate([p.data for p in parts]), scale, parts[0].dims)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
