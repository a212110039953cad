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
from collections import defaultdict
from dataclasses import dataclass, field


class JudgmentError(ValueError):
    """The queries file is malformed; the message names the line."""


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
                raise JudgmentError(f"{where}: needs \"qid\", \"query\" and \"relevant\": [{{\"file\", \"page\"}}]") from None
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
    )


def score_run(label: str, queries: list[JudgedQuery], ranked_lists: list[list[tuple[str, int]]], k: int) -> RunScore:
    return RunScore(label, [score_query(q, ranked, k) for q, ranked in zip(queries, ranked_lists)])


def by_kind(run: RunScore) -> dict[str, list[QueryScore]]:
    groups: dict[str, list[QueryScore]] = defaultdict(list)
    for q in run.per_query:
        groups[q.kind or "-"].append(q)
    return dict(groups)
