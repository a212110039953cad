"""How long `smart tune` takes, and what it measures on held-back pairs, on a copy of a store.

    python benchmarks/tune_time.py --store STORE [--adapter] [--body] [--pairs FILE] [--no-outline] [--keep] [--init identity|pca] [--queries JUDGED.jsonl]
    python benchmarks/tune_time.py --smoke [--adapter]    # sample_corpus/ and its judged queries, --keep

Copies the store (the original is left as it is), runs ``Index.tune`` on the copy and prints the
store's size (pages, CPUs, load average), the pairs mined, the held-back figures and the times:
the whole tune (model load, mining, encoding, weight choice, training, recording; wall and this
process's CPU seconds, with the seconds per 1,000 pages beside the issue's budget of 300 s) and
the training alone. With ``--queries`` it also evaluates the copy before and after (`smart
eval`'s figures: pooled, late and smart nDCG@10 / MRR@10), all measured in this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from _stores import clock, machine, sample_queries, sample_store

from smartcli import Index, UpdateEvents

BUDGET_SECONDS_PER_1000_PAGES = 300  # issue 15: `smart tune --adapter` within 5 minutes for 1,000 pages


class Printing(UpdateEvents):
    def __init__(self):
        self.start = time.monotonic()

    def message(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.start:6.1f} s] {text}", flush=True)


def figures(index: Index, queries: str) -> dict:
    rows = index.evaluate(queries).as_json()["rows"]
    return {row["mode"]: (row["ndcg"], row["mrr"], row["lambda_anchor"], row["lambda_late"]) for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="an indexed store (copied; the original is not changed)")
    parser.add_argument("--adapter", action="store_true", help="also train the query-side adapter")
    parser.add_argument("--heading-path", action="store_true")
    parser.add_argument("--body", action="store_true", help="also pseudo-queries cut from the pages' text")
    parser.add_argument("--no-outline", action="store_true", help="without the outline pairs (with --body or --pairs)")
    parser.add_argument("--pairs", help="labelled pairs, JSON lines {query, file, page}")
    parser.add_argument("--keep", action="store_true", help="keep what was learned even if the held-back pairs do not improve")
    parser.add_argument("--queries", help="judged queries to evaluate before and after (never trained on)")
    parser.add_argument("--init", default="identity", choices=("identity", "pca"), help="how the adapter's Linear starts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--smoke", action="store_true", help="--keep; without --store: sample_corpus/ and its judged queries")
    args = parser.parse_args()
    if args.smoke:
        args.keep = True  # a handful of held-back pairs never beat their noise
    elif not args.store:
        parser.error("--store is required (or --smoke)")
    with tempfile.TemporaryDirectory() as tmp:
        source = args.store or sample_store(Path(tmp))
        queries = args.queries or (str(sample_queries(Path(tmp))) if not args.store else None)
        copy = os.path.join(tmp, "store")
        shutil.copytree(source, copy)
        index = Index.open(copy, device=args.device)
        pages = index.status().encoded_items
        print(f"store {source}: {pages} pages; {machine()}")
        before = figures(index, queries) if queries else None
        with clock() as tuning:
            summary = index.tune(
                pairs=args.pairs,
                adapter=args.adapter,
                heading_path=args.heading_path,
                body=args.body,
                outline=not args.no_outline,
                guard=not args.keep,
                events=Printing(),
                init=args.init,
            )
        print(json.dumps({k: v for k, v in summary.as_json().items() if k != "history"}))
        per_1000 = tuning.wall / max(pages, 1) * 1000
        print(
            f"tune: {tuning.wall:.1f} s in all ({tuning.cpu:.1f} CPU seconds), training {summary.train_seconds:.1f} s, {summary.epochs} epoch(s); kept: {summary.kept}"
        )
        print(
            f"per 1,000 pages: {per_1000:.1f} s wall, {tuning.cpu / max(pages, 1) * 1000:.1f} CPU s; "
            f"{per_1000 / BUDGET_SECONDS_PER_1000_PAGES:.2f}x the {BUDGET_SECONDS_PER_1000_PAGES} s budget by the wall clock"
        )
        print(f"load average now {os.getloadavg()[0]:.1f}")
        if before:
            after = figures(Index.open(copy, device=args.device), queries)
            for mode in ("pooled", "late", "smart"):
                b, a = before[mode], after[mode]
                print(
                    f"{mode:6s} nDCG@10 {b[0]:.4f} -> {a[0]:.4f}   MRR@10 {b[1]:.4f} -> {a[1]:.4f}   (weights {b[2]:g}/{b[3]:g} -> {a[2]:g}/{a[3]:g})"
                )


if __name__ == "__main__":
    main()
