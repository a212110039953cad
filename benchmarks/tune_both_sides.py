"""The adapter on the query side only (variant (a), what `smart tune --adapter` ships) beside the
same adapter on both sides (variant (b): the pages' token states adapted too), measured offline.

    python benchmarks/tune_both_sides.py --store STORE --queries JUDGED.jsonl [--init identity|pca] [--variants a,b]

Reads the store (never writes it). Variant (b) needs the pages' float token states, which a 1-bit
store does not keep: every page's text is encoded again by the store's model (timed; how many
pages give back exactly the stored sign bits is printed, a check that the re-encoding is the
indexed one). Both variants are trained as `tune` trains them — the store's outline pairs only,
never the judged queries; the same split, hard negatives, loss, learning rate and early stopping
on the held-back pairs — and (b)'s adapted pages are scored as the store would keep them (sign
bits of a 1-bit store). Prints, in one run: the held-back pairs' nDCG@10 / MRR@10 (untuned and
each variant, with whether the guard rail would keep it), the judged queries' nDCG@10 / MRR@10
(untuned, and each variant at the weights it chose, late-only and the default 1/5), the training
and re-encoding times, the token bytes the store holds and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from _stores import open_store, outline_pairs  # benchmarks/, the script's own folder

from smartcli import defaults
from smartcli.models.base import normalize_text
from smartcli.search.evaluate import load_judgments, matches
from smartcli.search.scoring import Weights
from smartcli.search.tuning import Pair, _item_tokens, adapt, adapted_pages, as_stored, measure, significantly_better, tune


def judged_pairs(path: str, searcher) -> list[Pair]:
    indexed = sorted({(item.path, item.page) for item in searcher.items})
    out = []
    for q in load_judgments(path):
        pages = {(p, page) for file, page in q.relevant for (p, pg) in indexed if pg == page and matches(file, p)}
        out.append(Pair(normalize_text(q.query) or q.query, pages, "judged"))
    return out


def row(m) -> str:
    return f"nDCG@10 {m.ndcg:.4f}  MRR@10 {m.mrr:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--queries", required=True, help="judged queries (evaluated only, never trained on)")
    parser.add_argument("--init", default=defaults.TUNE_INIT, choices=("identity", "pca"))
    parser.add_argument("--variants", default="a,b")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    variants = args.variants.split(",")
    with open_store(args.store, args.device) as (store, encoder, searcher):
        dtype = store.token_dtype
        token_bytes = sum(f.stat().st_size for f in Path(args.store).rglob("*.h5"))
        print(f"store {args.store}: {len(searcher.items)} pages, tokens stored as {dtype}, segment files {token_bytes / 1e6:.1f} MB; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
        pairs = outline_pairs(searcher)
        judged = judged_pairs(args.queries, searcher)
        judged_encoded = encoder.encode_queries([p.query for p in judged])
        default, late_only = Weights(defaults.LAMBDA_ANCHOR, defaults.LAMBDA_LATE), Weights(0.0, 1.0)
        untuned = measure(searcher, judged_encoded, judged, [default, late_only])
        print(f"judged ({len(judged)}), untuned: smart {default.lambda_anchor:g}/{default.lambda_late:g} {row(untuned[0])}; late {row(untuned[1])}", flush=True)

        floats = None
        if "b" in variants:
            t0, cpu0 = time.monotonic(), time.process_time()
            encoded = encoder.encode_documents([item.text for item in searcher.items])
            seconds, cpu = time.monotonic() - t0, time.process_time() - cpu0
            stored = _item_tokens(searcher, list(range(len(searcher.items))))
            floats, same = {}, 0
            for i, e in enumerate(encoded):
                tokens = np.asarray(e.tokens, np.float32)
                if tokens.shape == stored[i].shape and np.array_equal(as_stored(tokens, dtype), stored[i]):
                    same += 1
                floats[i] = tokens if tokens.shape[0] else stored[i]
            n_tokens = sum(len(t) for t in floats.values())
            print(f"re-encoded {len(floats)} pages ({n_tokens} token states) in {seconds:.1f} s ({cpu:.1f} CPU s); "
                  f"{same} of {len(floats)} give back exactly the stored token states; float16 states would take {n_tokens * floats[0].shape[1] * 2 / 1e6:.1f} MB, "
                  f"sign bits {n_tokens * floats[0].shape[1] / 8 / 1e6:.1f} MB (the store's format: (b) costs no space)", flush=True)

        for variant in variants:
            report = lambda text, v=variant: print(f"  ({v}) {text}", flush=True)  # noqa: E731
            t0 = time.monotonic()
            result = tune(searcher, pairs, True, report, guard=False, init=args.init, both_sides=floats if variant == "b" else None)
            seconds = time.monotonic() - t0
            adapter = result.adapter
            kept = result.adapted is not None and significantly_better(result.adapted, result.untuned)
            chosen = result.final.weights
            print(f"({variant}) init {args.init}: held back ({result.held_back_pairs}): untuned {row(result.untuned)} -> {row(result.final)} "
                  f"at {chosen.lambda_anchor:g}/{chosen.lambda_late:g}, best epoch {result.best_epoch} of {result.epochs}; "
                  f"guard rail would keep it: {kept}; training {result.train_seconds:.1f} s, tune {seconds:.1f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
            docs = adapted_pages(floats, adapter, dtype) if variant == "b" and adapter is not None else None
            grid = [chosen, late_only, default]
            got = measure(searcher, [adapt(e, adapter) for e in judged_encoded], judged, grid, docs=docs)
            print(f"({variant}) judged: at {chosen.lambda_anchor:g}/{chosen.lambda_late:g} {row(got[0])}; late {row(got[1])}; "
                  f"smart {default.lambda_anchor:g}/{default.lambda_late:g} {row(got[2])}", flush=True)


if __name__ == "__main__":
    main()
