"""The first stage of a two-stage search: which pages of the whole store a query's SMART score
is worth estimating for (its shortlist).

A page's pooled vector alone (the anchor) is a weak guide to its MaxSim: a manual's page covers
several topics, and its anchor averages them. On 3,092 real pages (Debian's manuals) the top 200
pages by anchor held 91.5% of the exhaustive SMART top 10, and that share falls as a store grows.
The first stage ranks every page by

    anchor cosine + LEXICAL_WEIGHT * (sum of idf(v) / ln(N) over the query's tokens v on the page) / Q

where a token is "on the page" when the page holds a token of the same vocabulary id (a query
word MaxSim matches closely), idf(v) = ln(N / pages holding v), and Q is the query's token count;
a word held by more than COMMON_SHARE of the pages counts nothing (its postings are not read).
On the same pages this shortlist held 98.6% at 200 pages (99.8% at 400). The page vocabularies
are postings kept in each segment (segments.Segment.vocabulary), read in place. Pages of models
without a vocabulary (image patches) are ranked by their anchor alone.

Over large stores the anchors are scanned in int8 (a quarter of the float32 bytes, one scale per
page) and the best few thousand scanned again in float32 (read in place: search/pooled.py):
the shortlist is the exact one.
"""

from __future__ import annotations

import math

import numpy as np

from smartcli.search.kernel import readonly
from smartcli.search.pooled import PooledVectors
from smartcli.search.scoring import top_k

# The lexical term's weight, in the scale of the anchor cosine (benchmarks/first_stage.py).
LEXICAL_WEIGHT = 2.0
# Words held by more than this share of the pages carry no lexical weight (their postings are
# not read): their idf is at most ln 2 / ln N of a rare word's, and their postings cover most of
# the store. Measured (benchmarks/first_stage.py, 10,628 real pages, 90 queries): recall of the
# exhaustive top 10 at K=200 0.989 with every word, 0.987 at 0.5 (0.983 at 0.3), reading 2.7-3x
# fewer postings; at a million pages each query's common words were millions of adds. None:
# every word counts.
COMMON_SHARE: float | None = 0.5
# Below this many pages the shortlist is the anchor's alone: there the anchor's top 200 held
# every exhaustive top-10 hit (317 and 507 real pages), and a Qdrant mirror's shortlist, taken by
# anchor in Qdrant, is the same one (search/qdrant.py).
LEXICAL_FROM_PAGES = 1000
# From this many pages on, anchors are scanned in int8, then the best ones again in float32.
INT8_SCAN_PAGES = 20_000
# How many pages, beyond the shortlist, the float32 rescan takes: an int8 error moves a cosine by
# about 1e-3, far less than the gap this many places make.
RESCAN_MARGIN = 4


class SegmentVocabulary:
    """One segment's postings (segments.Segment.vocabulary) and, per row, the snapshot item it is (-1: dead)."""

    def __init__(self, ids: np.ndarray, starts: np.ndarray, rows: np.ndarray, item_of_row: np.ndarray):
        self.ids, self.starts, self.rows, self.item_of_row = ids, starts, rows, item_of_row


class FirstStage:
    """The first stage over one snapshot's pages (built once per snapshot, used by every query).
    ``compiled``: use the numba kernels (warm processes, large stores)."""

    def __init__(
        self,
        pooled: PooledVectors | np.ndarray,
        vocabularies: list[SegmentVocabulary | None] | None = None,
        compiled: bool = False,
        copies: np.ndarray | None = None,
    ):
        """``pooled``: the pages' anchors (search/pooled.py; an array is held as it is).
        ``copies``: per page, the page whose segment row it shares (copies of a file), which the
        postings name; None when no two pages share a row."""
        self.pooled = pooled if isinstance(pooled, PooledVectors) else PooledVectors.held(pooled)
        self.copies = copies
        self.pages = len(self.pooled)
        self.compiled = compiled and _kernels() is not None
        self.vocabularies = [v for v in (vocabularies or []) if v is not None and len(v.ids)]
        self.idf = self._idf()
        self._typed = None

    def shortlist(self, query, size: int, admitted: np.ndarray | None = None) -> np.ndarray:
        """The item indexes of the query's shortlist, in item order: its top ``size`` pages by the
        first stage's score among the ``admitted`` ones (a boolean mask; None: every page)."""
        size = min(size, self.pages if admitted is None else int(admitted.sum()))
        if size <= 0:
            return np.zeros(0, np.int64)
        lexical = self.lexical(query.token_ids)
        q = np.asarray(query.pooled, dtype=np.float32)
        if self.pages < INT8_SCAN_PAGES or not self.compiled:
            return np.sort(top_k(self._scores(self.pooled.dot(q), lexical, admitted), size))
        # One selection over every page, by the int8 estimate; the shortlist is then taken from
        # those pages' exact (float32) scores: an int8 error moves a cosine by about 1e-3, far
        # less than the gap RESCAN_MARGIN times the shortlist's places make.
        data, scale = self.pooled.int8()
        approx = np.empty(self.pages, np.float32)
        _kernels().anchor_int8(q, data, scale, approx)
        score = self._scores(approx, lexical, admitted)
        rest = self.pages - min(self.pages, RESCAN_MARGIN * size + 1024)
        near = np.sort(np.argpartition(score, rest)[rest:])
        lexical_near = None if lexical is None else lexical[near]
        exact = self._scores(self.pooled.dot(q, near), lexical_near, None if admitted is None else admitted[near])
        return np.sort(near[top_k(exact, size)])

    @staticmethod
    def _scores(anchor: np.ndarray, lexical: np.ndarray | None, admitted: np.ndarray | None) -> np.ndarray:
        """The first stage's score (anchor + weighted lexical term), -inf where not admitted."""
        score = anchor if lexical is None else anchor + np.float32(LEXICAL_WEIGHT) * lexical
        if admitted is not None:
            score = np.where(admitted, score, np.float32(-np.inf))
        return score

    # -- the query's words ---------------------------------------------------------------------

    def _idf(self) -> np.ndarray | None:
        """ln(N / pages holding v) per vocabulary id v, over the live rows."""
        if not self.vocabularies or self.pages < 2:
            return None
        top = max(int(v.ids[-1]) for v in self.vocabularies) + 1
        df = np.zeros(top, np.float64)
        for v in self.vocabularies:
            np.add.at(df, v.ids.astype(np.int64), np.diff(v.starts).astype(np.float64))
        with np.errstate(divide="ignore"):
            idf = np.where(df > 0, np.log(self.pages / np.maximum(df, 1.0)), 0.0)
        if COMMON_SHARE is not None:
            idf[df > COMMON_SHARE * self.pages] = 0.0
        return (np.maximum(idf, 0.0) / math.log(self.pages)).astype(np.float32)

    def lexical(self, token_ids: np.ndarray) -> np.ndarray | None:
        """Per page, the idf of the query's tokens it holds, summed and divided by the query's
        token count (None: the store keeps no vocabulary, or the query has none)."""
        if self.idf is None or token_ids is None or self.pages < LEXICAL_FROM_PAGES:
            return None
        ids = np.asarray(token_ids, dtype=np.int64)
        count = len(ids)
        ids = ids[(ids >= 0) & (ids < len(self.idf))]
        if not count or not len(ids):
            return None
        weights = (self.idf[ids] / np.float32(count)).astype(np.float32)
        keep = weights > 0
        ids, weights = ids[keep], weights[keep]
        out = np.zeros(self.pages, np.float32)
        if self.compiled:
            _kernels().lexical_scores(ids, weights, *self._typed_lists(), out)
        else:
            for v in self.vocabularies:
                at = np.searchsorted(v.ids, ids)
                found = (at < len(v.ids)) & (v.ids[np.minimum(at, len(v.ids) - 1)] == ids)
                for u, weight in zip(at[found], weights[found]):
                    rows = np.asarray(v.rows[v.starts[u] : v.starts[u + 1]], dtype=np.int64)
                    items = v.item_of_row[rows[(rows >= 0) & (rows < len(v.item_of_row))]]
                    np.add.at(out, items[items >= 0], weight)
        return out if self.copies is None else out[self.copies]

    def _typed_lists(self):
        if self._typed is None:
            from numba.typed import List

            lists = (List(), List(), List(), List())
            for v in self.vocabularies:
                for target, array in zip(lists, (v.ids, v.starts, v.rows, v.item_of_row)):
                    target.append(readonly(np.ascontiguousarray(array)))
            self._typed = lists
        return self._typed


def item_of_row(rows: int, live_rows: np.ndarray, items: np.ndarray) -> np.ndarray:
    """[rows] int64: the snapshot item of each of a segment's rows, -1 where no item is (copies of
    a file share a row: its first item stands for them)."""
    out = np.full(rows, -1, np.int64)
    out[live_rows[::-1]] = items[::-1]
    return out


def _kernels():
    from smartcli.search.kernel import compiled_kernels

    return compiled_kernels()
