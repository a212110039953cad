"""Where one warm query's milliseconds go, stage by stage (median over the queries, each after the first).

    python benchmarks/query_profile.py --store STORE --queries QUERIES.jsonl [--threads 1]
    python benchmarks/query_profile.py --smoke      # sample_corpus/ and a few queries of it

A long-lived process (store snapshot and model loaded, token states cached as `smart search
--queries` keeps them) answers each query through the same methods `Index.search` calls,
timed one by one, by the wall clock and by this process's CPU seconds: encode the query, anchor
cosines + shortlist + MaxSim over it (`score`, with MaxSim alone timed again separately), fuse +
top-k + explain the hits (`rank`), and render the hits as JSON. Each stage's share of the whole
query is printed beside it. ``--threads`` sets OMP/BLAS threads (unset: the libraries'
defaults). Runs on older checkouts too (PYTHONPATH=that checkout), for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from _stores import clock, machine, read_queries, sample_queries, sample_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="an indexed store")
    parser.add_argument("--queries", help='JSON lines with "query" (or plain lines)')
    parser.add_argument("--threads", type=int, default=None, help="OMP/BLAS threads (default: the libraries' own)")
    parser.add_argument("-k", type=int, default=10, help="hits per query")
    parser.add_argument("--smoke", action="store_true", help="without --store and --queries: sample_corpus/ and its judged queries")
    args = parser.parse_args()
    if not args.smoke and not (args.store and args.queries):
        parser.error("--store and --queries are required (or --smoke)")
    if args.threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or sample_store(Path(tmp))
        queries = [q["query"] for q in read_queries(args.queries or sample_queries(Path(tmp)))]
        profile(store, queries, args)


def profile(store_path, queries: list[str], args) -> None:
    from smartcli import defaults
    from smartcli.models import registry
    from smartcli.search.scoring import Weights
    from smartcli.search.searcher import Searcher
    from smartcli.store.catalog import Store

    store = Store.open(store_path)
    load = getattr(registry, "load_query_encoder", registry.load_encoder)
    encoder = load(store.model.spec, "cpu")
    searcher = Searcher(store, encoder, device="cpu", cache_bytes=defaults.WARM_CACHE_BYTES)
    weights = Weights()
    stages: dict[str, list[tuple[float, float]]] = {}

    def lap(name, fn):
        with clock() as timing:
            value = fn()
        stages.setdefault(name, []).append((timing.wall * 1000, timing.cpu * 1000))
        return value

    for i, query in enumerate(queries):
        with clock() as whole:
            encoded = lap("encode the query", lambda: encoder.encode_queries([query]))
            scored = lap("score: anchor + shortlist + MaxSim", lambda: searcher.score(encoded, weights))
            hits = lap("rank: fuse, top-k, explain the hits", lambda: searcher.rank(encoded, scored, weights, args.k, texts=[query]))
            lap("render JSON", lambda: json.dumps({"query": query, "results": [h.as_json() for h in hits[0]]}))
        stages.setdefault("total", []).append((whole.wall * 1000, whole.cpu * 1000))
        lap("(MaxSim over the shortlist alone)", lambda: searcher.late_scores(encoded, scored.columns))
        if i == 0 and len(queries) > 1:  # the first query fills the caches
            stages = {}
    print(
        f"{max(1, len(queries) - 1)} queries after the first, {len(searcher)} pages, encoder {type(encoder).__name__}, "
        f"threads {args.threads or 'default'}; {machine()}"
    )
    total = statistics.median(wall for wall, _ in stages["total"])
    print(f"  {'stage':40} {'wall: median':>12} {'p90':>8} {'CPU: median':>12} {'share of the total (wall)':>26}")
    for name, times in stages.items():
        wall = sorted(w for w, _ in times)
        cpu = statistics.median(c for _, c in times)
        print(
            f"  {name:40} {statistics.median(wall):9.1f} ms {wall[int(0.9 * (len(wall) - 1))]:5.1f} ms {cpu:9.1f} ms "
            f"{statistics.median(wall) / max(total, 1e-9):25.2f}"
        )


if __name__ == "__main__":
    main()
