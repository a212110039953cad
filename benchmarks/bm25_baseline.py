"""BM25 (Okapi, k1 1.5, b 0.75) over page text layers: the lexical baseline for `smart eval`.

    python benchmarks/bm25_baseline.py --store STORE --queries QUERIES.jsonl

Reads the page texts from a `smart` store's catalog and scores with the same metric code as
`smart eval`, so its figures sit beside the SMART rows measured on the same pages.
"""

from __future__ import annotations

import argparse
import math
import re
from collections import Counter

from smartcli.search.evaluate import load_judgments, score_run
from smartcli.store.catalog import Store, reads

WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    return WORD.findall(text.lower())


def bm25_rank(pages: list[list[str]], query: list[str], k1: float = 1.5, b: float = 0.75) -> list[int]:
    n = len(pages)
    avg = sum(map(len, pages)) / n
    df = Counter(t for p in pages for t in set(p))
    tfs = [Counter(p) for p in pages]
    scores = []
    for tf, page in zip(tfs, pages):
        s = 0.0
        for t in query:
            if t in tf:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * tf[t] * (k1 + 1) / (tf[t] + k1 * (1 - b + b * len(page) / avg))
        scores.append(s)
    return sorted(range(n), key=lambda i: -scores[i])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    items = reads.live_items(Store.open(args.store))
    pages = [tokenize(i.text) for i in items]
    judged = load_judgments(args.queries)
    ranked = [[(items[i].path, items[i].page) for i in bm25_rank(pages, tokenize(q.query))[: args.k]] for q in judged]
    run = score_run("bm25", judged, ranked, args.k)
    kinds = " ".join(f"{k} {run.mean('ndcg', k):.4f}" for k in run.kinds)
    print(f"BM25  MRR@{args.k} {run.mean('rr'):.4f}  Recall@{args.k} {run.mean('recall'):.4f}  nDCG@{args.k} {run.mean('ndcg'):.4f}  nDCG per kind: {kinds}")


if __name__ == "__main__":
    main()
