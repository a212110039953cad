"""Where one warm query's milliseconds go, stage by stage (median over the queries, each after the first).

    python benchmarks/query_profile.py --store /tmp/dev --queries ../shared/eval/dev_queries.jsonl [--threads 1]

A long-lived process (store snapshot and model loaded, token states cached as `smart search
--queries` keeps them) answers each query through the same methods `Index.search` calls,
timed one by one: encode the query, anchor cosines + shortlist + MaxSim over it (`score`,
with MaxSim alone timed again separately), fuse + top-k + explain the hits (`rank`), and
render the hits as JSON. ``--threads`` sets OMP/BLAS threads (unset: the libraries' defaults).
Runs on older checkouts too (PYTHONPATH=that checkout), for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", required=True, help="JSON lines with \"query\"")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    if args.threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.threads)

    from smartcli import defaults
    from smartcli.models import registry
    from smartcli.search.scoring import Weights
    from smartcli.search.searcher import Searcher
    from smartcli.store.catalog import Store

    queries = [json.loads(line)["query"] for line in open(args.queries) if line.strip()]
    store = Store.open(args.store)
    load = getattr(registry, "load_query_encoder", registry.load_encoder)
    encoder = load(store.model.spec, "cpu")
    searcher = Searcher(store, encoder, device="cpu", cache_bytes=defaults.WARM_CACHE_BYTES)
    weights = Weights()
    stages: dict[str, list[float]] = {}

    def lap(name, fn):
        start = time.perf_counter()
        value = fn()
        stages.setdefault(name, []).append((time.perf_counter() - start) * 1000)
        return value

    for i, query in enumerate(queries):
        start = time.perf_counter()
        encoded = lap("encode the query", lambda: encoder.encode_queries([query]))
        scored = lap("score: anchor + shortlist + MaxSim", lambda: searcher.score(encoded, weights))
        hits = lap("rank: fuse, top-k, explain the hits", lambda: searcher.rank(encoded, scored, weights, args.k, texts=[query]))
        lap("render JSON", lambda: json.dumps({"query": query, "results": [h.as_json() for h in hits[0]]}))
        stages.setdefault("total", []).append((time.perf_counter() - start) * 1000)
        lap("(MaxSim over the shortlist alone)", lambda: searcher.late_scores(encoded, scored.columns))
        if i == 0:  # the first query fills the caches
            stages = {}
    print(f"{len(queries) - 1} queries after the first, {len(searcher)} pages, encoder {type(encoder).__name__}, "
          f"threads {args.threads or 'default'}, load average {os.getloadavg()[0]:.1f}")
    for name, ms in stages.items():
        print(f"  {name:40} median {statistics.median(ms):7.1f} ms   p90 {sorted(ms)[int(0.9 * (len(ms) - 1))]:7.1f} ms")


if __name__ == "__main__":
    main()
