"""Contents and index pages: how ranking them a little lower changes quality, side by side.

    python benchmarks/contents_pages.py --store STORE --queries JUDGED.jsonl [--penalties 0,0.01,0.02,0.03,0.05]
    python benchmarks/contents_pages.py --store STORE --probe PROBE.jsonl

Pages the catalog marks ``contents`` or ``index`` (store/pageroles.py) lose
``NAVIGATION_PENALTY x (lambda_anchor + lambda_late)`` from their fused score. With judged
queries this prints, for each penalty (0 is the search without it), nDCG@10 and MRR@10 of
pooled, late and smart (default weights) on the real two-stage path, and how many contents or
index pages the top 10 holds on average. With ``--probe`` (JSON lines ``{"query": ...,
"file": ..., "contents": [pages], "body": [pages]}``; no ``body``: any other page) it prints, per query, the best rank of the
named contents pages and of the named body pages, without the penalty and with the default one.
"""

from __future__ import annotations

import argparse
import json
import os

from smartcli import defaults
from smartcli.models.registry import load_encoder
from smartcli.search.evaluate import configs_to_run, evaluate, load_judgments
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store
from smartcli.store.pageroles import is_navigation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", help="judged queries (smart eval's format)")
    parser.add_argument("--probe", help="queries naming contents and body pages of one file")
    parser.add_argument("--penalties", default="0,0.01,0.02,0.03,0.05")
    args = parser.parse_args()
    store = Store.open(args.store)
    encoder = load_encoder(store.model.spec, "cpu")
    searcher = Searcher(store, encoder, device="cpu")
    marked = int(searcher.navigation.sum())
    print(f"store {args.store}: {len(searcher)} pages, {marked} marked contents or index")
    default = defaults.NAVIGATION_PENALTY
    if args.queries:
        judged = load_judgments(args.queries)
        print(f"{'penalty':>8} {'mode':>6} {'nDCG@10':>8} {'MRR@10':>7} {'nav/top10':>9}")
        for penalty in [float(p) for p in args.penalties.split(",")]:
            defaults.NAVIGATION_PENALTY = penalty
            result = evaluate(searcher, judged, configs_to_run(), 10)
            navigation = _navigation_in_top(searcher, [q.query for q in judged])
            for config, run in result.runs:
                print(f"{penalty:8.3f} {config.mode:>6} {run.mean('ndcg'):8.4f} {run.mean('rr'):7.4f} {navigation if config.mode == 'smart' else '':>9}")
    if args.probe:
        probes = [json.loads(line) for line in open(args.probe) if line.strip()]
        print(f"{'query':<50} {'file':<34} contents rank (0 -> {default}) | body rank (0 -> {default})")
        for probe in probes:
            ranks = []
            for penalty in (0.0, default):
                defaults.NAVIGATION_PENALTY = penalty
                hits = searcher.search([probe["query"]], Weights(), k=50)[0]
                mine = [(h.rank, h.page) for h in hits if os.path.basename(h.path) == probe["file"]]
                body = probe.get("body") or [p for _, p in mine if p not in probe["contents"]]  # none named: any other page
                ranks.append((_best(mine, probe["contents"]), _best(mine, body)))
            print(
                f"{probe['query'][:50]:<50} {probe['file'][:34]:<34} {ranks[0][0]:>4} -> {ranks[1][0]:<4}"
                f"         | {ranks[0][1]:>4} -> {ranks[1][1]:<4}"
            )
    defaults.NAVIGATION_PENALTY = default


def _best(ranked: list[tuple[int, int]], pages: list[int]) -> str:
    found = [rank for rank, page in ranked if page in pages]
    return str(min(found)) if found else ">50"


def _navigation_in_top(searcher: Searcher, queries: list[str]) -> str:
    hits = searcher.search(queries, Weights(), k=10)
    return f"{sum(is_navigation(h.item.role) for q in hits for h in q) / len(hits):.2f}"


if __name__ == "__main__":
    main()
