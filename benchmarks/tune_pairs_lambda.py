"""Which fusion weights each kind of training pair prefers, on its held-back share.

    python benchmarks/tune_pairs_lambda.py --store STORE

For the pairs `smart tune` can mine from a store — outline headings (``outline``), pseudo-queries
cut from the pages' text with the sentence hidden from its page (``body``: the page encoded
again without it, as tune scores them) and the same pseudo-queries with the sentence left in
(``body-verbatim``: what a cloze without hiding would measure) — prints the held-back pairs'
nDCG@10 at each weight of tune's grid, on tune's search path (two-stage, K as the store's
default). Compare with ``smart eval --sweep`` on judged queries: a kind of pair is a good guide
for the weights when it prefers the weights the judged queries prefer. Reads the store only.
"""

from __future__ import annotations

import argparse
import os
import time

from smartcli import defaults
from smartcli.ingest.outlines import body_pairs, mine_outlines
from smartcli.models.registry import load_encoder
from smartcli.search.searcher import Searcher
from smartcli.search.tuning import Pair, measure, split_pairs, weight_grid
from smartcli.store.catalog import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--kinds", default="outline,body,body-verbatim")
    args = parser.parse_args()
    store = Store.open(args.store)
    info = store.model
    encoder = load_encoder(info.spec, "cpu", info.extra)
    print(f"store {args.store}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with store.read_snapshot():
        searcher = Searcher(store, encoder, device="cpu", shortlist=defaults.CANDIDATES)
        indexed = {(i.path, i.page) for i in searcher.items}
        cut = body_pairs([(i.path, i.page, i.text) for i in searcher.items])
        mined, _ = mine_outlines(sorted({i.path for i in searcher.items if i.kind == "pdf"}))
        kinds = {
            "outline": [p for p in (Pair(m.query, {(m.path, n) for n in m.pages if (m.path, n) in indexed}) for m in mined) if p.pages],
            "body": [Pair(b.query, {(b.path, b.page)}, "body", b.hidden) for b in cut],
            "body-verbatim": [Pair(b.query, {(b.path, b.page)}, "body") for b in cut],
        }
        for kind in args.kinds.split(","):
            started = time.monotonic()
            _, held = split_pairs(kinds[kind])
            rows = measure(searcher, encoder.encode_queries([p.query for p in held]), held, weight_grid())
            best = max(rows, key=lambda m: m.key())
            figures = "  ".join(f"{m.weights.lambda_anchor:g}/{m.weights.lambda_late:g} {m.ndcg:.3f}" for m in rows)
            print(f"{kind:14s} {len(kinds[kind]):4d} pairs, {len(held):3d} held back: {figures}   best {best.weights.lambda_anchor:g}/{best.weights.lambda_late:g} ({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
