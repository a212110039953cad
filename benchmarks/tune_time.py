"""How long `smart tune` takes, and what it measures on held-back pairs, on a copy of a store.

    python benchmarks/tune_time.py --store STORE [--adapter] [--body] [--pairs FILE] [--no-outline] [--keep] [--init identity|pca] [--queries JUDGED.jsonl]

Copies the store (the original is left as it is), runs ``Index.tune`` on the copy and prints the
store's size (pages, CPUs, load average), the pairs mined, the held-back figures and the times:
the whole tune (model load, mining, encoding, weight choice, training, recording) and the
training alone. With ``--queries`` it also evaluates the copy before and after (`smart eval`'s
figures: pooled, late and smart nDCG@10 / MRR@10), all measured in this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time

from smartcli import Index, UpdateEvents


class Printing(UpdateEvents):
    def __init__(self):
        self.start = time.monotonic()

    def message(self, text: str) -> None:
        print(f"  [{time.monotonic() - self.start:6.1f} s] {text}", flush=True)


def figures(index: Index, queries: str) -> dict:
    rows = index.evaluate(queries).as_json()["rows"]
    return {row["mode"]: (row["ndcg"], row["mrr"], row["lambda_anchor"], row["lambda_late"]) for row in rows}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--adapter", action="store_true", help="also train the query-side adapter")
    parser.add_argument("--heading-path", action="store_true")
    parser.add_argument("--body", action="store_true", help="also pseudo-queries cut from the pages' text")
    parser.add_argument("--no-outline", action="store_true", help="without the outline pairs (with --body or --pairs)")
    parser.add_argument("--pairs", help="labelled pairs, JSON lines {query, file, page}")
    parser.add_argument("--keep", action="store_true", help="keep what was learned even if the held-back pairs do not improve")
    parser.add_argument("--queries", help="judged queries to evaluate before and after (never trained on)")
    parser.add_argument("--init", default="identity", choices=("identity", "pca"), help="how the adapter's Linear starts")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "store")
        shutil.copytree(args.store, copy)
        index = Index.open(copy, device=args.device)
        pages = index.status().encoded_items
        print(f"store {args.store}: {pages} pages; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        before = figures(index, args.queries) if args.queries else None
        start, cpu = time.monotonic(), _cpu()
        summary = index.tune(
            pairs=args.pairs, adapter=args.adapter, heading_path=args.heading_path, body=args.body, outline=not args.no_outline, guard=not args.keep, events=Printing(), init=args.init
        )
        seconds, cpu = time.monotonic() - start, _cpu() - cpu
        print(json.dumps({k: v for k, v in summary.as_json().items() if k != "history"}))
        print(f"tune: {seconds:.1f} s in all ({cpu:.1f} CPU seconds), training {summary.train_seconds:.1f} s, {summary.epochs} epoch(s); kept: {summary.kept}")
        print(f"load average now {os.getloadavg()[0]:.1f}")
        if before:
            after = figures(Index.open(copy, device=args.device), args.queries)
            for mode in ("pooled", "late", "smart"):
                b, a = before[mode], after[mode]
                print(f"{mode:6s} nDCG@10 {b[0]:.4f} -> {a[0]:.4f}   MRR@10 {b[1]:.4f} -> {a[1]:.4f}   (weights {b[2]:g}/{b[3]:g} -> {a[2]:g}/{a[3]:g})")


if __name__ == "__main__":
    main()
