"""Could a second kind of held-back pair tell when the adapter learned from headings helps written queries?

    python benchmarks/tune_cross_check.py --store STORE --queries JUDGED.jsonl

Trains the query-side adapter on the store's outline pairs (as `smart tune --adapter --keep`, the
same split, seed and stopping), then measures it, against the untuned search, on three things in
one run: the held-back headings (what tune's guard rail sees), the held-back share of the
pseudo-queries `smart tune --body` cuts from the pages (each scored against its page encoded again
without its sentence), and the judged queries (never trained on). A useful cross-check would move
with the judged queries on every collection.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _stores import open_store, outline_pairs  # benchmarks/, the script's own folder

from smartcli import defaults
from smartcli.ingest.outlines import body_pairs
from smartcli.models.base import normalize_text
from smartcli.search.evaluate import load_judgments, score_run
from smartcli.search.scoring import Weights
from smartcli.search.tuning import Pair, adapt, best_of, measure, split_pairs, tune, weight_grid


def judged_ndcg(searcher, judged, encoded, weights: Weights) -> float:
    scored = searcher.score(encoded, weights)
    hits = searcher.rank(encoded, scored, weights, 10, snippets=False)
    return score_run("", judged, [[(h.item.path, h.item.page) for h in q] for q in hits], 10).mean("ndcg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", required=True, help="judged queries (never trained on)")
    args = parser.parse_args()
    judged = load_judgments(args.queries)
    with open_store(args.store) as (_, encoder, searcher):
        started = time.monotonic()
        result = tune(searcher, outline_pairs(searcher), True, guard=False)
        adapter, weights = result.adapter, result.adapted.weights
        print(f"{args.store}: adapter trained on {result.train_pairs} outline pairs in {time.monotonic() - started:.0f} s, best epoch {result.best_epoch}")
        print(f"  held-back headings ({result.held_back_pairs}): nDCG@10 {result.untuned.ndcg:.4f} untuned -> {result.adapted.ndcg:.4f} adapted ({weights.lambda_anchor:g}/{weights.lambda_late:g})")
        _, held_body = split_pairs([Pair(b.query, {(b.path, b.page)}, "body", b.hidden) for b in body_pairs([(i.path, i.page, i.text) for i in searcher.items])])
        encoded = encoder.encode_queries([p.query for p in held_body])
        grid = weight_grid()
        before, after = measure(searcher, encoded, held_body, grid), measure(searcher, [adapt(e, adapter) for e in encoded], held_body, grid)
        diff = after[0].per_pair - before[0].per_pair
        error = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        print(
            f"  held-back pseudo-queries ({len(held_body)}): at 1/5 {before[0].ndcg:.4f} -> {after[0].ndcg:.4f} "
            f"({diff.mean():+.4f}, standard error {error:.4f}); at their best weights "
            f"{best_of(before).ndcg:.4f} -> {best_of(after).ndcg:.4f}"
        )
        plain = encoder.encode_queries([normalize_text(q.query) or q.query for q in judged])
        adapted = [adapt(e, adapter) for e in plain]
        default, late = Weights(defaults.LAMBDA_ANCHOR, defaults.LAMBDA_LATE), Weights(0.0, 1.0)
        print(
            f"  judged ({len(judged)}): at 1/5 {judged_ndcg(searcher, judged, plain, default):.4f} -> {judged_ndcg(searcher, judged, adapted, default):.4f}; "
            f"late-only {judged_ndcg(searcher, judged, plain, late):.4f} -> {judged_ndcg(searcher, judged, adapted, late):.4f}; "
            f"adapted at the adapter's weights {judged_ndcg(searcher, judged, adapted, weights):.4f}"
        )


if __name__ == "__main__":
    main()
