"""SMART search through a Qdrant collection (layout: smartcli/store/qdrant.py).

Qdrant does what it does best, a query does two things in one round trip (a batch of two
requests): the anchor top-K by cosine, and the same top-K (a prefetch) rescored with the
``tokens`` multivector (MAX_SIM). The two scores are fused here, client-side, with the SMART
weights: Qdrant's MaxSim is a *sum* over query tokens and SMART's a mean, so the late term
is divided by the query's token count. Client-side fusion (rather than a formula query) keeps
both terms in every hit, as the local search reports them, and works on every Qdrant that
has multivectors (1.10+), embedded mode included. The shortlist is exactly the local two-stage
search's (the anchor top-K of the admitted pages), so scores and ranks are the local store's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

import numpy as np

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError
from smartcli.models.base import Encoded, ModelInfo
from smartcli.search.explain import best_passage, highlighted_passage, match_arrays, strong_spans
from smartcli.search.scoring import Weights, navigation_penalty, top_k
from smartcli.search.searcher import Hit, Scope, fold_copies, glob_matches
from smartcli.store.catalog import LiveItem
from smartcli.store.pageroles import BODY, is_navigation
from smartcli.store.qdrant import Retrying, Target, collection_model, local_path, payload_path, point_id, release

_SCROLL_PAGE = 1024
# What a candidate needs from its payload; text and spans are read for the top k only.
_LIST_FIELDS = ["path", "path_bytes", "page", "kind", "n_tokens", "role", "hash"]


@dataclass
class _Candidate:
    pid: str
    anchor: float
    late: float | None
    payload: dict


class QdrantSearcher:
    """Searches one collection: the Qdrant backend of a query session (session.py)."""

    def __init__(self, client, target: Target, collection: str, shortlist: int | None = defaults.CANDIDATES, report=None):
        self.client = client
        self.target = target
        self.collection = collection
        self.path = f"{target.location}#{collection}"
        self.call = Retrying(target, report=report)
        found = collection_model(client, collection, self.call)
        if found is None:
            raise SmartError(ErrorKind.STORE_MISSING, f"there is no Qdrant collection {collection!r} at {target.location}")
        self.model: ModelInfo = found[0]
        self.meta = found[1]
        self.shortlist = shortlist
        self.textual = not self.model.consumes_pixels

    def __len__(self) -> int:
        return self.call("count points", self.client.count, self.collection, exact=True).count

    def refresh(self, force: bool = False) -> bool:
        return False  # every request reads the collection as it is

    def tuning_record(self) -> dict | None:
        return None  # tuning stays with the local store

    def adapter(self, record: dict):
        return None

    def close(self) -> None:
        if self.target.local:
            release(self.target)

    # -- filters ---------------------------------------------------------------------------------

    def payload_filter(self, scope: Scope):
        """The Qdrant filter for ``scope``; None when it admits nothing. Kinds and folder
        prefixes (ending in ``/``) are payload conditions on ``kind`` and ``dirs``; other prefixes
        and globs are matched here on the paths (one scroll of the ``path`` payload) and become
        an id condition."""
        from qdrant_client import models

        must, must_not = [], []
        if scope.kinds:
            must.append(models.FieldCondition(key="kind", match=models.MatchAny(any=list(scope.kinds))))
        folders = all(p.endswith("/") for p in scope.path_prefixes)
        if scope.path_prefixes and folders:
            must.append(models.FieldCondition(key="dirs", match=models.MatchAny(any=[payload_path(p) for p in scope.path_prefixes])))
        if scope.globs or (scope.path_prefixes and not folders):
            ids = self._ids_matching(scope, models.Filter(must=must) if must else None)
            if not ids:
                return None
            must.append(models.HasIdCondition(has_id=ids))
        if scope.exclude:
            must_not.append(models.HasIdCondition(has_id=[point_id(path, page) for path, page in scope.exclude]))
        return models.Filter(must=must or None, must_not=must_not or None)

    def _ids_matching(self, scope: Scope, base) -> list[str]:
        ids, offset = [], None
        while True:
            points, offset = self.call(
                "read paths",
                self.client.scroll,
                self.collection,
                scroll_filter=base,
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=["path", "path_bytes"],
                with_vectors=False,
            )
            for p in points:
                path = local_path(p.payload)
                if scope.path_prefixes and not any(path.startswith(x) for x in scope.path_prefixes):
                    continue
                if scope.globs and not any(glob_matches(path, g) for g in scope.globs):
                    continue
                ids.append(str(p.id))
            if offset is None:
                return ids

    # -- scoring ---------------------------------------------------------------------------------

    def search_encoded(
        self, encoded: list[Encoded], weights: Weights, k: int, texts=None, scope: Scope = Scope(), min_score=None, snippets: bool = True
    ):
        flt = self.payload_filter(scope)
        results = []
        for qi, query in enumerate(encoded):
            if flt is None:
                results.append([])
                continue
            candidates = self.candidates(query, weights, k, flt)
            fused = np.array([_fused(c, weights) for c in candidates], np.float32)
            order = top_k(fused, len(candidates))
            if min_score is not None:
                order = order[fused[order] >= min_score]
            order, also = fold_copies(order, partial(_copy_key_of, candidates), partial(_path_of, candidates), k)
            chosen = [candidates[j] for j in order]
            text = texts[qi] if texts else ""
            explained = self.explain(query, text, chosen) if snippets else [("", [], [])] * len(chosen)
            results.append(
                [
                    Hit(
                        rank=r + 1,
                        item=_item(c),
                        score=float(fused[j]),
                        anchor=c.anchor,
                        late=c.late,
                        snippet=s,
                        highlights=h,
                        matches=m,
                        also=also[j],
                    )
                    for r, (j, c, (s, h, m)) in enumerate(zip(order, chosen, explained))
                ]
            )
        return results

    def candidates(self, query: Encoded, weights: Weights, k: int, flt) -> list[_Candidate]:
        """Each admitted candidate with its anchor cosine and MaxSim mean (None when not needed)."""
        from qdrant_client import models

        anchor_q = query.pooled.astype(np.float32).tolist()
        tokens_q = query.tokens.astype(np.float32).tolist()
        n_q = query.tokens.shape[0]
        if not weights.needs_tokens:
            points = self._deep_enough(
                lambda limit: models.QueryRequest(query=anchor_q, using="anchor", filter=flt, limit=limit, with_payload=True), k, weights
            )
            return [_Candidate(str(p.id), float(p.score), None, p.payload) for p in points]
        if weights.lambda_anchor == 0.0:
            # MaxSim alone scores every page (as locally): an exact scan of the rescoring vector.
            late = self._deep_enough(
                lambda limit: models.QueryRequest(query=tokens_q, using="tokens", filter=flt, limit=limit, with_payload=True),
                k,
                weights,
                n_q,
            )
            ids = [p.id for p in late]
            anchors = self._anchors(anchor_q, ids)
            return [_Candidate(str(p.id), anchors.get(str(p.id), 0.0), float(p.score) / n_q, p.payload) for p in late]
        shortlist = self.shortlist or len(self)
        first = models.QueryRequest(query=anchor_q, using="anchor", filter=flt, limit=shortlist, with_payload=_LIST_FIELDS)
        second = models.QueryRequest(
            prefetch=models.Prefetch(query=anchor_q, using="anchor", filter=flt, limit=shortlist),
            query=tokens_q,
            using="tokens",
            limit=shortlist,
            with_payload=False,
        )
        answers = self.call("search", self.client.query_batch_points, self.collection, requests=[first, second])
        late = {str(p.id): float(p.score) / n_q for p in answers[1].points}
        return [_Candidate(str(p.id), float(p.score), late.get(str(p.id), 0.0), p.payload) for p in answers[0].points]

    def _deep_enough(self, request, k: int, weights: Weights, per: float = 1.0) -> list:
        """The points of a one-term query (``request(limit)``), fetched deep enough that the top
        ``k`` after the contents-page penalty is exact: while the k-th best penalized score is
        below the last fetched point's raw score, a point not fetched could still outrank it."""
        weight = weights.lambda_anchor if not weights.needs_tokens else weights.lambda_late
        penalty = navigation_penalty(weights)
        limit = k
        while True:
            points = self._query(request(limit))
            if len(points) < limit or not points:
                return points
            best: dict = {}  # per page, copies folded: its best penalized score
            for p in points:
                score = weight * p.score / per - (penalty if is_navigation((p.payload or {}).get("role")) else 0.0)
                key = _copy_key(_Candidate(str(p.id), 0.0, None, p.payload or {}))
                best[key] = max(best.get(key, score), score)
            scores = sorted(best.values(), reverse=True)
            if len(scores) >= k and scores[k - 1] >= weight * points[-1].score / per:
                return points
            limit *= 2

    def _query(self, request):
        return self.call("search", self.client.query_batch_points, self.collection, requests=[request])[0].points

    def _anchors(self, anchor_q: list[float], ids: list) -> dict[str, float]:
        if not ids:
            return {}
        points = self.call("retrieve points", self.client.retrieve, self.collection, ids=ids, with_vectors=["anchor"], with_payload=False)
        q = np.asarray(anchor_q, np.float32)
        out = {}
        for p in points:
            v = np.asarray(p.vector["anchor"], np.float32)
            out[str(p.id)] = float(q @ v / max(np.linalg.norm(v), 1e-12) / max(np.linalg.norm(q), 1e-12))
        return out

    # -- explaining ------------------------------------------------------------------------------

    def explain(self, query: Encoded, query_text: str, chosen: list[_Candidate]):
        """Snippet, highlights and token matches of each hit, from its stored tokens and spans."""
        if not chosen:
            return []
        points = self.call(
            "retrieve points",
            self.client.retrieve,
            self.collection,
            ids=[c.pid for c in chosen],
            with_vectors=["tokens"],
            with_payload=["spans", "text"],
        )
        by_id = {str(p.id): p for p in points}
        explained = []
        for c in chosen:
            point = by_id.get(c.pid)
            if point is not None:
                c.payload["text"] = point.payload.get("text") or ""
            text = c.payload.get("text") or ""
            if point is None:
                explained.append((text[:160], [], []))
                continue
            tokens = np.asarray(point.vector["tokens"], np.float32)
            flat = point.payload.get("spans") or []
            spans = np.asarray(flat, np.int32).reshape(-1, 2) if self.textual and text and flat else None
            matches = match_arrays(query, query_text, text, tokens, spans)
            if spans is not None and query_text:
                # The passage where the most query words meet, as the local search shows it.
                snippet, highlights = best_passage(query, query_text, text, tokens, spans)
            else:
                strong = strong_spans(matches)
                snippet, highlights = highlighted_passage(text, strong or [m.span for m in matches if m.span is not None], strong)
            explained.append((snippet, highlights, matches))
        return explained

    # -- stored pages as queries -----------------------------------------------------------------

    def find_item(self, path: str, page: int | None, named: str | None = None) -> LiveItem:
        return self.stored_query(path, page)[1]

    def stored_query(self, path: str, page: int | None, named: str | None = None) -> tuple[Encoded, LiveItem]:
        from qdrant_client import models

        must = [models.FieldCondition(key="path", match=models.MatchValue(value=payload_path(path)))]
        if page is not None:
            must.append(models.FieldCondition(key="page", match=models.MatchValue(value=page)))
        points, _ = self.call(
            "read points",
            self.client.scroll,
            self.collection,
            scroll_filter=models.Filter(must=must),
            limit=2,
            with_payload=True,
            with_vectors=True,
        )
        if not points:
            raise SmartError(ErrorKind.NOT_FOUND, f"{path} is not in the collection {self.collection!r}", path=path)
        if len(points) > 1:
            raise SmartError(ErrorKind.NOT_FOUND, f"{path} has several encoded pages; name one", path=path)
        p = points[0]
        pooled = np.asarray(p.vector["anchor"], np.float32)
        tokens = np.asarray(p.vector["tokens"], np.float32)
        tokens = tokens / np.maximum(np.linalg.norm(tokens, axis=-1, keepdims=True), 1e-12)
        spans = np.asarray(p.payload.get("spans") or [0, 0] * len(tokens), np.int32).reshape(-1, 2)
        encoded = Encoded(pooled / max(np.linalg.norm(pooled), 1e-12), tokens, np.zeros(len(tokens), np.int32), spans)
        return encoded, _item(_Candidate(str(p.id), 0.0, None, p.payload))


def _fused(c: _Candidate, weights: Weights) -> float:
    score = weights.lambda_anchor * c.anchor + (weights.lambda_late * c.late if c.late is not None else 0.0)
    # Points mirrored before roles were sent carry none: they are scored as body pages.
    return score - navigation_penalty(weights) if is_navigation((c.payload or {}).get("role")) else score


def _copy_key_of(candidates: list[_Candidate], j: int) -> tuple:
    return _copy_key(candidates[j])


def _path_of(candidates: list[_Candidate], j: int) -> str:
    return local_path(candidates[j].payload)


def _copy_key(c: _Candidate) -> tuple:
    """Copies of a file are points of their own with the same vectors: one page, by content and
    page number (points mirrored without a hash count as pages of their own)."""
    return (c.payload.get("hash") or c.pid, int(c.payload.get("page", 0)))


def _item(c: _Candidate) -> LiveItem:
    p = c.payload
    return LiveItem(
        item_id=0,
        path=local_path(p),
        page=int(p["page"]),
        kind=p.get("kind", "pdf"),
        segment="",
        row=-1,
        n_tokens=int(p.get("n_tokens", 0)),
        text=p.get("text") or "",
        role=p.get("role") or BODY,
    )


def absolute(path) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))
