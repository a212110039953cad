"""How much of the exhaustive top-10 the two-stage search keeps, for several candidate counts K.

    python benchmarks/two_stage.py --store STORE --queries QUERIES.jsonl [--ks 10,25,50,100,200,400]
    python benchmarks/two_stage.py --smoke        # sample_corpus/ and a few judged queries, K 2 and 5

Two-stage search ranks every item by its anchor (pooled) cosine, then scores only the top K
with the full SMART formula. For each K this prints the share of the exhaustive top-10 that
the two-stage top-10 contains (the figure it is judged by: at least 0.99 at the default K),
nDCG@10 and MRR@10 when the queries carry judgments, and the time per query (wall and CPU, the
query already encoded) with its ratio to the exhaustive search, all measured in this run on the
same searcher (`Searcher.search_encoded`, what `Index.search` runs after encoding the query).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _stores import clock, machine, read_queries, sample_queries, sample_store

from smartcli.defaults import CANDIDATES as DEFAULT_CANDIDATES
from smartcli.models.registry import load_encoder
from smartcli.search.evaluate import load_judgments, score_run
from smartcli.search.scoring import DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE, Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="an indexed store")
    parser.add_argument("--queries", help='JSON lines with a "query" (and "relevant" for quality figures)')
    parser.add_argument("--ks", default="10,25,50,100,200,400", help="candidate counts K, comma-separated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--smoke", action="store_true", help="K 2 and 5; without --store and --queries: sample_corpus/ and its judged queries"
    )
    args = parser.parse_args()
    if args.smoke:
        args.ks = "2,5"
    elif not (args.store and args.queries):
        parser.error("--store and --queries are required (or --smoke)")
    with tempfile.TemporaryDirectory() as tmp:
        store_path = args.store or sample_store(Path(tmp))
        queries_path = str(args.queries or sample_queries(Path(tmp)))
        with Store.open(store_path) as store:
            measure(store, queries_path, args)


def measure(store: Store, queries_path: str, args) -> None:
    encoder = load_encoder(store.model.spec, args.device)
    searcher = Searcher(store, encoder, device=args.device)
    lines = read_queries(queries_path)
    judged = load_judgments(queries_path) if all("relevant" in line for line in lines) else None
    encoded = encoder.encode_queries([line["query"] for line in lines])
    weights = Weights(DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE)

    def run(shortlist):
        searcher.shortlist = shortlist
        searcher.search_encoded([encoded[0]], weights, 10)  # caches and threads warm, untimed
        with clock() as timing:
            hits = [searcher.search_encoded([e], weights, 10)[0] for e in encoded]
        return hits, timing.wall / len(encoded), timing.cpu / len(encoded)

    run(None)  # the first pass over every page fills the caches the later ones find warm
    exhaustive, *exhaustive_time = run(None)

    def row(label, hits, wall, cpu):
        kept = np.mean([len({h.item.item_id for h in a} & {h.item.item_id for h in b}) / max(1, len(b)) for a, b in zip(hits, exhaustive)])
        quality = "", ""
        if judged:
            scored = score_run(label, judged, [[(h.item.path, h.item.page) for h in q] for q in hits], 10)
            quality = f"{scored.mean('ndcg'):.4f}", f"{scored.mean('rr'):.4f}"
        print(
            f"{label:>9} {kept:11.4f} {quality[0]:>8} {quality[1]:>7} {wall * 1000:9.1f} {cpu * 1000:8.1f} {cpu / exhaustive_time[1]:13.2f}"
        )

    print(f"{len(searcher)} items, {len(encoded)} queries, default K = {DEFAULT_CANDIDATES}; {machine()}")
    print(f"{'K':>9} {'top-10 kept':>11} {'nDCG@10':>8} {'MRR@10':>7} {'ms wall':>9} {'ms CPU':>8} {'CPU / exhaust.':>13}")
    for k in [int(k) for k in args.ks.split(",")] + [len(searcher)]:
        hits, wall, cpu = run(k)
        row(f"{k}" + (" (all)" if k == len(searcher) else "") + (" *" if k == DEFAULT_CANDIDATES else ""), hits, wall, cpu)
    # The reference itself, measured like the others (its overlap with itself is 1 by definition).
    row("exhaust.", exhaustive, *exhaustive_time)


if __name__ == "__main__":
    main()
