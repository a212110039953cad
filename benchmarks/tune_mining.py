"""Hard-negative mining for `smart tune --adapter`: the search path against tune's own, side by side.

    python benchmarks/tune_mining.py --store STORE [--queries 400]

Tune trains the adapter against, per pair, the pages the untuned search ranks highest that are
not its own. The search path scores each query's anchor shortlist with the 1-bit kernel (here
64 queries at a time, their shortlists' union); tune scores each decoded page against the
tokens of every query that has it in its shortlist, in one matrix product. Both run here on the
same queries (the store's own outline headings) and must find the same negatives; the times and
their ratio are printed.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _stores import open_store, outline_pairs  # benchmarks/, the script's own folder

from smartcli import defaults
from smartcli.search.scoring import Weights
from smartcli.search.tuning import _hard_negatives


def on_the_search_path(searcher, encoded, positives, n=defaults.TUNE_HARD_NEGATIVES):
    weights = Weights(defaults.LAMBDA_ANCHOR, defaults.LAMBDA_LATE)
    out = []
    for start in range(0, len(encoded), 64):
        part = encoded[start : start + 64]
        scored = searcher.score(part, weights)
        fused = np.where(scored.eligible, scored.anchor * weights.lambda_anchor + scored.late * weights.lambda_late, -np.inf)
        for row in range(len(part)):
            own = set(positives[start + row])
            ranked = [scored.columns[j] for j in np.argsort(-fused[row], kind="stable") if np.isfinite(fused[row, j])]
            out.append([i for i in ranked if i not in own][:n])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", type=int, default=400, help="outline headings to mine for")
    args = parser.parse_args()
    with open_store(args.store) as (_, encoder, searcher):
        index_of = {(item.path, item.page): i for i, item in enumerate(searcher.items)}
        pairs = outline_pairs(searcher)[: args.queries]
        encoded = encoder.encode_queries([p.query for p in pairs])
        positives = [[index_of[page] for page in p.pages] for p in pairs]
        on_the_search_path(searcher, encoded[:8], positives[:8])  # warm: the kernel compiled, the segments resident
        print(f"store {args.store}: {len(searcher.items)} pages, {len(encoded)} queries, shortlist {searcher.shortlist}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        t = time.monotonic()
        reference = on_the_search_path(searcher, encoded, positives)
        search_s = time.monotonic() - t
        t = time.monotonic()
        found = _hard_negatives(searcher, encoded, positives)
        tune_s = time.monotonic() - t
        same = sum(a == b for a, b in zip(reference, found))
        print(f"search path (1-bit kernel per shortlist): {search_s:.1f} s; tune (pages x their queries): {tune_s:.1f} s; "
              f"{search_s / tune_s:.1f}x; same negatives, in order, for {same} of {len(found)} queries")


if __name__ == "__main__":
    main()
