"""Training-free ways to fuse the anchor and MaxSim, on judged queries: is any better than a per-store lambda?

    python benchmarks/fusion_variants.py STORE=JUDGED.jsonl [STORE=JUDGED.jsonl ...]

One exhaustive scoring pass per store (anchor cosine and 1-bit MaxSim of every query against every
page, as search computes them); each variant ranks from those scores: late-only, the raw weighted
sum at lambda_anchor 1 and several lambda_late (two-stage, K=200 anchor shortlist), both scores
z-normalized per query (over the shortlist, or over every page) with an anchor weight, and
reciprocal-rank fusion. Contents pages lose the search's navigation penalty in each. Prints
nDCG@10 per store and each variant's gain over the better of late-only and the default 1/5.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager

import numpy as np
from _stores import open_store  # benchmarks/, the script's own folder

from smartcli import defaults
from smartcli.models.base import normalize_text
from smartcli.search.evaluate import load_judgments, score_run
from smartcli.search.scoring import Weights

K = defaults.CANDIDATES


def _z(x: np.ndarray) -> np.ndarray:
    """Per row, (x - mean) / std over the finite entries; the others stay -inf."""
    finite = np.isfinite(x)
    masked = np.where(finite, x, np.nan)
    out = (masked - np.nanmean(masked, 1, keepdims=True)) / (np.nanstd(masked, 1, keepdims=True) + 1e-9)
    return np.where(finite, out, -np.inf)


def variants(anchor: np.ndarray, late: np.ndarray, navigation: np.ndarray):
    """(name, [queries, pages] scores to rank by; -inf: not eligible)."""
    shortlisted = np.full(anchor.shape, -np.inf)
    k = min(K, anchor.shape[1])
    for row in range(len(anchor)):
        shortlisted[row, np.argpartition(-anchor[row], k - 1)[:k]] = 0.0
    penalty = defaults.NAVIGATION_PENALTY * navigation[None, :]
    yield "late-only", late - penalty
    for weight in (3.0, 5.0, 8.0, 16.0, 32.0):
        yield f"raw 1/{weight:g}", shortlisted + anchor + weight * late - (1 + weight) * penalty
    for weight in (0.1, 0.2, 0.3, 0.5):
        yield f"z over K, anchor {weight:g}", weight * _z(shortlisted + anchor) + _z(shortlisted + late) - 10 * penalty
    for weight in (0.1, 0.2, 0.3, 0.5):
        yield f"z over all, anchor {weight:g}", weight * _z(anchor) + _z(late) - 10 * penalty
    rank_a = np.argsort(np.argsort(-anchor, 1), 1)
    rank_l = np.argsort(np.argsort(-late, 1), 1)
    for weight in (0.3, 0.5, 1.0):
        yield f"RRF, anchor {weight:g}", weight / (60 + rank_a) + 1 / (60 + rank_l)


@contextmanager
def exhaustive_scores(store_path: str, queries: str):
    """(judged queries, encoder, searcher, encoded queries, anchor and MaxSim of each against every
    page) while the store is open for reading."""
    judged = load_judgments(queries)
    with open_store(store_path, shortlist=None) as (_, encoder, searcher):
        encoded = encoder.encode_queries([normalize_text(q.query) or q.query for q in judged])
        yield judged, encoder, searcher, encoded, searcher.score(encoded, Weights(0.0, 1.0))


def measure(store_path: str, queries: str) -> dict[str, float]:
    with exhaustive_scores(store_path, queries) as (judged, _, searcher, _, scored):
        items = [searcher.items[c] for c in scored.columns]
        navigation = searcher.navigation[np.asarray(scored.columns)].astype(np.float32)
        out = {}
        for name, fused in variants(scored.anchor, scored.late, navigation):
            tops = [np.lexsort((np.arange(len(row)), -row))[:10] for row in fused]
            ranked = [[(items[j].path, items[j].page) for j in top if np.isfinite(fused[q, j])] for q, top in enumerate(tops)]
            out[name] = score_run(name, judged, ranked, 10).mean("ndcg")
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stores", nargs="+", metavar="STORE=JUDGED.jsonl")
    args = parser.parse_args()
    results = {spec: measure(*spec.split("=", 1)) for spec in args.stores}
    names = list(next(iter(results.values())))
    print(f"{'variant':24s}" + "".join(f"{spec.split('=')[0][-14:]:>16s}" for spec in results) + "   gain over max(late-only, 1/5)")
    for name in names:
        cells = "".join(f"{results[spec][name]:16.4f}" for spec in results)
        gains = " ".join(f"{results[spec][name] - max(results[spec]['late-only'], results[spec]['raw 1/5']):+.3f}" for spec in results)
        print(f"{name:24s}{cells}   {gains}")


if __name__ == "__main__":
    main()
