"""How much of the exhaustive top-10 the two-stage search keeps, for several candidate counts K.

    python benchmarks/two_stage.py --store STORE --queries QUERIES.jsonl [--ks 10,25,50,100,200,400]

Two-stage search ranks every item by its anchor (pooled) cosine, then scores only the top K
with the full SMART formula. For each K this prints the share of the exhaustive top-10 that
the two-stage top-10 contains (the figure it is judged by: at least 0.99 at the default K),
nDCG@10 and MRR@10 when the queries carry judgments, and the mean query time, all measured
in this run on the same warm searcher.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from smartcli.models.registry import load_encoder
from smartcli.search.evaluate import load_judgments, score_run
from smartcli.search.scoring import DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE, Weights
from smartcli.defaults import CANDIDATES as DEFAULT_CANDIDATES
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", required=True, help="JSON lines with a \"query\" (and \"relevant\" for quality figures)")
    parser.add_argument("--ks", default="10,25,50,100,200,400")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    store = Store.open(args.store)
    encoder = load_encoder(store.model.spec, args.device)
    searcher = Searcher(store, encoder, device=args.device)
    lines = [json.loads(line) for line in open(args.queries) if line.strip()]
    judged = load_judgments(args.queries) if all("relevant" in line for line in lines) else None
    encoded = encoder.encode_queries([line["query"] for line in lines])
    weights = Weights(DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE)

    def run(shortlist):
        searcher.shortlist = shortlist
        start = time.perf_counter()
        hits = [searcher.search_encoded([e], weights, 10)[0] for e in encoded]
        return hits, (time.perf_counter() - start) / len(encoded)

    exhaustive, t_exhaustive = run(None)

    def row(label, hits, seconds):
        kept = np.mean(
            [len({h.item.item_id for h in a} & {h.item.item_id for h in b}) / max(1, len(b)) for a, b in zip(hits, exhaustive)]
        )
        quality = "", ""
        if judged:
            scored = score_run(label, judged, [[(h.item.path, h.item.page) for h in q] for q in hits], 10)
            quality = f"{scored.mean('ndcg'):.4f}", f"{scored.mean('rr'):.4f}"
        print(f"{label:>9} {kept:11.4f} {quality[0]:>8} {quality[1]:>7} {seconds * 1000:9.1f}")

    print(f"{len(searcher)} items, {len(encoded)} queries, default K = {DEFAULT_CANDIDATES}")
    print(f"{'K':>9} {'top-10 kept':>11} {'nDCG@10':>8} {'MRR@10':>7} {'ms/query':>9}")
    for k in [int(k) for k in args.ks.split(",")] + [len(searcher)]:
        hits, seconds = run(k)
        row(f"{k}" + (" (all)" if k == len(searcher) else "") + (" *" if k == DEFAULT_CANDIDATES else ""), hits, seconds)
    # The reference itself, measured like the others (its overlap with itself is 1 by definition).
    row("exhaust.", exhaustive, t_exhaustive)


if __name__ == "__main__":
    main()
