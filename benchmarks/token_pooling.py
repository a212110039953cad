"""What token pooling (the reduction of pages over Qdrant's multivector limit) costs in quality.

    python benchmarks/token_pooling.py --store /tmp/dev16 --queries ../shared/eval/dev_queries.jsonl --limits 2730 512 256 128 64

Scores every judged query exactly as `smart search` does (anchor top-K shortlist, MaxSim mean,
default weights), once with each page's stored token states and once with them pooled by
`smartcli.store.qdrant.reduce_tokens` to at most N per page — the vectors `smart sync` sends
to Qdrant for such a page (Qdrant scores them identically: benchmarks/qdrant_mirror.py). Prints
per limit: pages reduced, top-10 overlap with the unpooled ranking, MRR@10 and nDCG@10.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from pathlib import Path

import numpy as np

from smartcli import defaults
from smartcli.models.registry import load_encoder
from smartcli.store.catalog import Store, reads
from smartcli.store.qdrant import reduce_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--limits", type=int, nargs="+", default=[2730, 512, 256, 128, 64])
    args = ap.parse_args()
    judged = [json.loads(x) for x in Path(args.queries).read_text().splitlines() if x.strip()]
    store = Store.open(args.store)
    items = reads.live_items(store)
    pooled, tokens, spans = [], [], []
    for item in items:
        with store.open_segment(item.segment) as seg:
            a, b = seg.token_range(item.row)
            pooled.append(seg.pooled([item.row])[0])
            tokens.append(seg.tokens(a, b).astype(np.float32))
            spans.append(seg.spans(a, b))
    pooled = np.stack(pooled)
    encoder = load_encoder(store.model.spec, "cpu", store.model.extra)
    queries = encoder.encode_queries([q["query"] for q in judged])
    la, ll, k = defaults.LAMBDA_ANCHOR, defaults.LAMBDA_LATE, defaults.CANDIDATES
    counts = np.array([t.shape[0] for t in tokens])
    print(f"{args.store}: {len(items)} pages, token states per page: median {int(np.median(counts))}, max {counts.max()}")

    def rank(page_tokens):
        out = []
        for q in queries:
            anchor = pooled @ q.pooled
            short = np.argsort(-anchor)[:k]
            fused = np.array([la * anchor[j] + ll * (q.tokens @ page_tokens[j].T).max(axis=1).mean() for j in short])
            out.append([short[i] for i in np.argsort(-fused)[:10]])
        return out

    def quality(ranked):
        mrr, ndcg = [], []
        for hits, q in zip(ranked, judged):
            rel = {(r["file"], r["page"]) for r in q["relevant"]}
            gains = [1.0 if (os.path.basename(items[j].path), items[j].page) in rel else 0.0 for j in hits]
            mrr.append(next((1 / (i + 1) for i, g in enumerate(gains) if g), 0.0))
            ideal = sum(1 / math.log2(i + 2) for i in range(min(len(rel), 10)))
            ndcg.append(sum(g / math.log2(i + 2) for i, g in enumerate(gains)) / ideal)
        return statistics.mean(mrr), statistics.mean(ndcg)

    base = rank(tokens)
    m, n = quality(base)
    print(f"{'limit':>6} {'pages reduced':>14} {'top-10 overlap':>15} {'MRR@10':>7} {'nDCG@10':>8}")
    print(f"{'none':>6} {0:>14} {1.0:>15.3f} {m:>7.3f} {n:>8.3f}")
    for limit in args.limits:
        reduced = [reduce_tokens(t, s, limit)[0] for t, s in zip(tokens, spans)]
        ranked = rank(reduced)
        overlap = statistics.mean(len(set(a) & set(b)) / 10 for a, b in zip(base, ranked))
        m, n = quality(ranked)
        print(f"{limit:>6} {int((counts > limit).sum()):>14} {overlap:>15.3f} {m:>7.3f} {n:>8.3f}")


if __name__ == "__main__":
    main()
