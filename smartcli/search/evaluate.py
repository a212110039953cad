"""Retrieval metrics over judged queries, computed on real search results.

Definitions follow the development set's scorer (binary relevance, cut at k):
MRR@k = 1 / rank of the first relevant page in the top k (0 if none);
Recall@k = relevant pages in the top k / relevant pages of the query;
nDCG@k = DCG / ideal DCG with DCG = sum of 1 / log2(rank + 1) over relevant pages in the top k.
A page repeated in one result list counts only at its first rank.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError
from smartcli.search.scoring import Weights


class JudgmentError(SmartError):
    """The queries file is malformed; the message names the line."""

    def __init__(self, message: str):
        super().__init__(ErrorKind.BAD_INPUT, message)


@dataclass
class JudgedQuery:
    qid: str
    query: str
    relevant: set[tuple[str, int]]  # (file as given: a base name or a path, page)
    kind: str = ""


@dataclass
class QueryScore:
    qid: str
    kind: str
    first_hit: int | None
    rr: float
    recall: float
    ndcg: float
    query: str = ""
    relevant: int = 0  # relevant pages of the query


@dataclass
class RunScore:
    label: str
    per_query: list[QueryScore] = field(default_factory=list)

    def mean(self, metric: str, kind: str | None = None) -> float:
        rows = [q for q in self.per_query if kind is None or q.kind == kind]
        return sum(getattr(q, metric) for q in rows) / len(rows) if rows else 0.0

    @property
    def kinds(self) -> list[str]:
        return sorted({q.kind for q in self.per_query if q.kind})


def load_judgments(path: str) -> list[JudgedQuery]:
    queries: list[JudgedQuery] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                obj = json.loads(line)
                qid, text = str(obj["qid"]), str(obj["query"])
                relevant = {(str(r["file"]), int(r["page"])) for r in obj["relevant"]}
            except (ValueError, KeyError, TypeError):
                raise JudgmentError(f'{where}: needs "qid", "query" and "relevant": [{{"file", "page"}}]') from None
            if qid in seen:
                raise JudgmentError(f"{where}: duplicate qid {qid!r}")
            if not relevant:
                raise JudgmentError(f"{where}: query {qid!r} has no relevant pages")
            seen.add(qid)
            queries.append(JudgedQuery(qid, text, relevant, str(obj.get("kind", ""))))
    if not queries:
        raise JudgmentError(f"{path}: no queries")
    return queries


def matches(judged_file: str, path: str) -> bool:
    """A judgment names a file by base name, or by a path that the indexed path ends with."""
    judged = judged_file.replace("\\", "/")
    path = path.replace(os.sep, "/")
    if "/" not in judged:
        return path.rsplit("/", 1)[-1] == judged
    return path == judged or path.endswith("/" + judged.lstrip("./"))


def score_query(query: JudgedQuery, ranked: list[tuple[str, int]], k: int) -> QueryScore:
    found: set[tuple[str, int]] = set()
    hits: list[int] = []
    seen: set[tuple[str, int]] = set()
    rank = 0
    for path, page in ranked:
        if (path, page) in seen:
            continue  # a repeated page counts at its first rank only
        seen.add((path, page))
        rank += 1
        if rank > k:
            break
        for judged in query.relevant:
            if judged not in found and judged[1] == page and matches(judged[0], path):
                found.add(judged)
                hits.append(rank)
                break
    dcg = sum(1.0 / math.log2(r + 1) for r in hits)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(query.relevant), k) + 1))
    return QueryScore(
        qid=query.qid,
        kind=query.kind,
        first_hit=hits[0] if hits else None,
        rr=1.0 / hits[0] if hits else 0.0,
        recall=len(hits) / len(query.relevant),
        ndcg=dcg / ideal,
        query=query.query,
        relevant=len(query.relevant),
    )


def score_run(label: str, queries: list[JudgedQuery], ranked_lists: list[list[tuple[str, int]]], k: int) -> RunScore:
    return RunScore(label, [score_query(q, ranked, k) for q, ranked in zip(queries, ranked_lists)])


SWEEP_LAMBDA_LATE = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 16.0)


@dataclass(frozen=True)
class Config:
    """One row of an evaluation: a mode and its weights."""

    mode: str
    lambda_anchor: float
    lambda_late: float

    @property
    def label(self) -> str:
        if self.mode == "smart":
            return f"smart {self.lambda_anchor:g}/{self.lambda_late:g}"
        return self.mode

    @property
    def weights(self) -> Weights:
        return Weights.for_mode(self.mode, self.lambda_anchor, self.lambda_late)


def configs_to_run(
    lambda_anchor: float = defaults.LAMBDA_ANCHOR, lambda_late: float = defaults.LAMBDA_LATE, sweep: bool = False
) -> list[Config]:
    """pooled, late, smart at the given weights (always the third row), then the sweep's smart rows."""
    configs = [Config("pooled", 1.0, 0.0), Config("late", 0.0, 1.0), Config("smart", lambda_anchor, lambda_late)]
    if sweep:
        for late in SWEEP_LAMBDA_LATE:
            config = Config("smart", 1.0, late)
            if config not in configs:
                configs.append(config)
    return configs


@dataclass
class Evaluation:
    k: int
    candidates: int | None  # the search path measured: two-stage with this K, or None (exhaustive)
    runs: list[tuple[Config, RunScore]]
    default_index: int = 2  # the smart row at the weights asked for

    @property
    def best(self) -> int:
        return max(range(len(self.runs)), key=lambda i: (self.runs[i][1].mean("ndcg"), self.runs[i][1].mean("rr")))

    def as_json(self, per_query: bool = False) -> dict:
        rows = []
        for i, (config, run) in enumerate(self.runs):
            row = {"mode": config.mode, "lambda_anchor": config.lambda_anchor, "lambda_late": config.lambda_late}
            row.update(_metrics(run))
            row["per_kind"] = {kind: _metrics(run, kind) for kind in run.kinds}
            row["best"] = i == self.best
            rows.append(row)
        out = {"k": self.k, "candidates": self.candidates, "queries": len(self.runs[0][1].per_query), "rows": rows}
        if per_query:
            out["per_query"] = [q.__dict__ for q in self.runs[self.default_index][1].per_query]
        return out


def _metrics(run: RunScore, kind: str | None = None) -> dict:
    return {
        "mrr": round(run.mean("rr", kind), 4),
        "recall": round(run.mean("recall", kind), 4),
        "ndcg": round(run.mean("ndcg", kind), 4),
    }


def evaluate(searcher, judged: list[JudgedQuery], configs: list[Config], k: int, encoder=None) -> Evaluation:
    """Score each config's ranking on the path search takes (the searcher's two-stage setting),
    the queries prepared as a query session prepares them and encoded by ``encoder`` (default:
    the searcher's).

    The queries are encoded once; configs whose scores are computed alike (all smart rows of a
    sweep share one shortlist and one MaxSim pass) share them.
    """
    from smartcli.search.queries import QueryError, encode_queries

    try:
        _, encoded = encode_queries(encoder or searcher.encoder, [q.query for q in judged])
    except QueryError as exc:
        raise JudgmentError(f"query {judged[exc.details['index']].qid!r}: {exc}") from None
    cache: dict[tuple, object] = {}
    runs = []
    for config in configs:
        weights = config.weights
        key = (weights.needs_tokens, searcher.two_stage(weights, len(searcher)) if weights.needs_tokens else False)
        if key not in cache:
            cache[key] = searcher.score(encoded, weights)
        hits = searcher.rank(encoded, cache[key], weights, k, snippets=False)
        ranked = [[(h.item.path, h.item.page) for h in query_hits] for query_hits in hits]
        runs.append((config, score_run(config.label, judged, ranked, k)))
    return Evaluation(k=k, candidates=searcher.shortlist, runs=runs)
