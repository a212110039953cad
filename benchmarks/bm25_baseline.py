"""BM25, the lexical peer, beside `smart eval`'s rows on the same pages and queries, in one run.

    python benchmarks/bm25_baseline.py --store STORE --queries JUDGED.jsonl
    python benchmarks/bm25_baseline.py --smoke          # sample_corpus/ and a few judged queries of it

Ranks the store's page texts (its catalog's text layers) with Okapi BM25 (k1 1.5, b 0.75), scores
the ranking with the same metric code as `smart eval`, and prints it beside pooled, late and smart
search of the store (`Index.evaluate`, the path `smart eval` takes), with each mode's nDCG@10
against BM25's and the time per query of each (wall and CPU).
"""

from __future__ import annotations

import argparse
import math
import re
import tempfile
from collections import Counter
from pathlib import Path

from _stores import clock, machine, ratio, sample_queries, sample_store

from smartcli import Index
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="an indexed store")
    parser.add_argument("--queries", help='judged queries, JSON lines with "query" and "relevant"')
    parser.add_argument("--k", type=int, default=10, help="cut-off of the metrics (default 10)")
    parser.add_argument(
        "--smoke", action="store_true", help="without --store and --queries: sample_corpus/ in a temporary store, its judged queries"
    )
    args = parser.parse_args()
    if not args.smoke and not (args.store and args.queries):
        parser.error("--store and --queries are required (or --smoke)")
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or sample_store(Path(tmp))
        judged = load_judgments(str(args.queries or sample_queries(Path(tmp))))
        with Store.open(store) as opened:
            items = reads.live_items(opened)
        with clock() as bm25_time:
            pages = [tokenize(i.text) for i in items]
            ranked = [[(items[i].path, items[i].page) for i in bm25_rank(pages, tokenize(q.query))[: args.k]] for q in judged]
        bm25 = score_run("bm25", judged, ranked, args.k)
        with Index.open(store) as index:
            index.load()  # the model, outside the timing
            with clock() as smart_time:
                rows = index.evaluate(judged, k=args.k).as_json()["rows"]

    n = len(judged)
    print(f"{store}: {len(items)} pages, {n} judged queries; {machine()}")
    print(f"{'method':8} {'MRR@' + str(args.k):>7} {'Recall':>7} {'nDCG@' + str(args.k):>8} {'nDCG / BM25':>11}")
    base = bm25.mean("ndcg")
    print(f"{'BM25':8} {bm25.mean('rr'):7.4f} {bm25.mean('recall'):7.4f} {base:8.4f} {'1.00x':>11}")
    for row in rows:
        print(f"{row['mode']:8} {row['mrr']:7.4f} {row['recall']:7.4f} {row['ndcg']:8.4f} {ratio(row['ndcg'], base):>11}")
    kinds = " ".join(f"{kind} {bm25.mean('ndcg', kind):.4f}" for kind in bm25.kinds)
    if kinds:
        print(f"BM25 nDCG per kind: {kinds}")
    print(
        f"time per query: BM25 (index built per run) {bm25_time.wall / n * 1000:.1f} ms wall, {bm25_time.cpu / n * 1000:.1f} ms CPU; "
        f"smart eval's {len(rows)} modes {smart_time.wall / n * 1000:.1f} ms wall, {smart_time.cpu / n * 1000:.1f} ms CPU"
    )


if __name__ == "__main__":
    main()
