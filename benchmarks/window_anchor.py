"""The anchor of a page longer than one window: the mean of its windows' pooled vectors (stored
today) against the best window's cosine, on judged queries, alone and fused with MaxSim.

    python benchmarks/window_anchor.py --store STORE --queries JUDGED.jsonl

A text model encodes a page of more tokens than its window (256 for MiniLM) window by window;
the store keeps the normalized mean of the windows' pooled vectors as the page's anchor. This
encodes every page's windows again with the store's model (the same cut) and scores each query
against each window, taking the best: nDCG@10 of pooled alone and of two-stage SMART (K=200
shortlist by each anchor, then anchor + lambda_late * the store's MaxSim) for several lambda_late,
both anchors side by side. Nothing is written; the store is only read. Text stores only.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from fusion_variants import exhaustive_scores  # benchmarks/, the script's own folder

from smartcli import defaults
from smartcli.search.evaluate import score_run


def window_vectors(encoder, text: str) -> np.ndarray:
    """The pooled vector of each window of ``text``, cut as the encoder cuts it: [windows, D]."""
    ids = encoder.tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = [ids[start : start + encoder.window] for start in range(0, len(ids), encoder.window)]
    pooled, _, _ = encoder._forward(windows)
    return pooled


def ndcg(judged, items, scores: np.ndarray) -> float:
    tops = [np.lexsort((np.arange(len(row)), -row))[:10] for row in scores]
    ranked = [[(items[j].path, items[j].page) for j in top if np.isfinite(scores[q, j])] for q, top in enumerate(tops)]
    return score_run("", judged, ranked, 10).mean("ndcg")


def shortlisted(anchor: np.ndarray, k: int = defaults.CANDIDATES) -> np.ndarray:
    out = np.full(anchor.shape, -np.inf)
    k = min(k, anchor.shape[1])
    for row in range(len(anchor)):
        out[row, np.argpartition(-anchor[row], k - 1)[:k]] = 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", required=True)
    args = parser.parse_args()
    with exhaustive_scores(args.store, args.queries) as (judged, encoder, searcher, encoded, scored):
        items = [searcher.items[c] for c in scored.columns]
        started = time.monotonic()
        queries = np.stack([e.pooled for e in encoded])
        best_window = np.stack([(window_vectors(encoder, item.text) @ queries.T).max(axis=0) for item in items], axis=1)
        print(f"{args.store}: {len(items)} pages encoded again window by window in {time.monotonic() - started:.0f} s; {len(judged)} judged queries")
        mean_of_windows, late = scored.anchor, scored.late
        print(f"  pooled alone: mean of windows {ndcg(judged, items, mean_of_windows):.4f}, best window {ndcg(judged, items, best_window):.4f}; late-only {ndcg(judged, items, late):.4f}")
        for weight in (3.0, 5.0, 8.0, 16.0):
            a = ndcg(judged, items, shortlisted(mean_of_windows) + mean_of_windows + weight * late)
            b = ndcg(judged, items, shortlisted(best_window) + best_window + weight * late)
            print(f"  smart 1/{weight:g}: mean of windows {a:.4f}, best window {b:.4f} ({b - a:+.4f})")


if __name__ == "__main__":
    main()
