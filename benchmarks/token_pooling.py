"""Token pooling: token states a page, the whole store's KB a page and nDCG@10 for each reduction, side by side.

    python benchmarks/token_pooling.py --store FLOAT16_STORE --queries JUDGED.jsonl [--reductions none,ward:0.5,adjacent:2]
    python benchmarks/token_pooling.py --smoke     # sample_corpus/ indexed in float16, its judged queries

Reads every page's token states once from a store kept in float16 (`smart index --token-dtype
float16`), then, per reduction, writes them into a fresh store in the default format (1 bit a
dimension, the current segment format) through the real store code and evaluates it
(`Index.evaluate`, what `smart eval` runs). Reductions: `none`; `ward:D`, Ward clusters cut at
distance D (store/pooling.py, what `smart index --token-pooling D` does); `adjacent:F`, the mean
of each run of F neighbouring tokens; `nopunct`, tokens whose text holds no letter or digit
dropped (ColBERT's skiplist); joined by `+` they apply in turn (`nopunct+ward:0.5`). Prints
the loss of each against `none`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from _stores import SAMPLE_CORPUS, machine, sample_queries

from smartcli import Index
from smartcli.models.base import Encoded
from smartcli.store.catalog import FileRecord, PageRecord, Store, writes
from smartcli.store.catalog.reads import live_items
from smartcli.store.pooling import pool_tokens


def read_pages(root: Path):
    """(live item, Encoded with float32 token states) of every encoded page, and the store's model."""
    with Store.open(root) as store:
        pages = []
        for item in live_items(store):
            with store.open_segment(item.segment) as segment:
                a, b = segment.token_range(item.row)
                encoded = Encoded(segment.pooled([item.row])[0], segment.tokens(a, b), segment.token_ids(a, b), segment.spans(a, b))
            pages.append((item, encoded))
        return pages, store.model


def adjacent(encoded: Encoded, factor: float) -> Encoded:
    n = len(encoded.tokens)
    bounds = np.linspace(0, n, max(1, int(np.ceil(n / factor))) + 1).round().astype(int)
    runs = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    means = np.stack([encoded.tokens[a:b].mean(axis=0) for a, b in runs])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    spans = np.array([[encoded.spans[a][0], encoded.spans[b - 1][1]] for a, b in runs], np.int32)
    return Encoded(encoded.pooled, means.astype(np.float32), encoded.token_ids, spans)


def without_punctuation(encoded: Encoded, text: str) -> Encoded:
    keep = np.array([not (b > a and not any(c.isalnum() for c in text[a:b])) for a, b in encoded.spans.tolist()], bool)
    keep[: 1 if not keep.any() else 0] = True
    return Encoded(encoded.pooled, encoded.tokens[keep], encoded.token_ids, encoded.spans[keep])


def reduce(encoded: Encoded, text: str, reduction: str) -> Encoded:
    for step in reduction.split("+"):
        name, _, value = step.partition(":")
        if name == "ward":
            encoded = pool_tokens(encoded, float(value))
        elif name == "adjacent":
            encoded = adjacent(encoded, float(value))
        elif name == "nopunct":
            encoded = without_punctuation(encoded, text)
        elif name != "none":
            raise SystemExit(f"unknown reduction {step!r}")
    return encoded


def derived_store(root: Path, pages, model, reduction: str) -> int:
    """The pages, reduced, written into a new store at ``root``; returns the token states kept."""
    store = Store.open_for_writing(root)
    writes.bind_model(store, model, "binary")
    by_file: dict[str, list] = {}
    for item, encoded in pages:
        by_file.setdefault(item.path, []).append(
            PageRecord(page=item.page, text=item.text, encoded=reduce(encoded, item.text, reduction), role=item.role)
        )
    kept = 0
    for path, records in by_file.items():
        record = FileRecord(path, "pdf", 1, 1, path, records)
        kept += sum(len(p.encoded.tokens) for p in records)
        writes.commit_files(store, [record], writes.write_segment(store, [record]))
    store.close()
    return kept


def store_bytes(root: Path) -> int:
    return sum(os.path.getsize(Path(folder) / name) for folder, _, names in os.walk(root) for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="a store indexed with --token-dtype float16")
    parser.add_argument("--queries", help='judged queries, JSON lines with "query" and "relevant"')
    parser.add_argument("--reductions", default="none,adjacent:2,adjacent:3,ward:0.4,ward:0.5,ward:0.6,nopunct", help="comma-separated")
    parser.add_argument("--smoke", action="store_true", help="sample_corpus/ indexed in float16 here; none, ward:0.5, adjacent:2, nopunct")
    args = parser.parse_args()
    if not args.smoke and not (args.store and args.queries):
        parser.error("--store and --queries are required (or --smoke)")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(args.store) if args.store else Path(tmp) / "float16"
        if args.smoke:
            args.reductions = "none,ward:0.5,adjacent:2,nopunct"
            with Index.open(source, create=True, token_dtype="float16") as index:
                index.update([str(SAMPLE_CORPUS)], ocr="never")
        queries = str(args.queries or sample_queries(Path(tmp)))
        pages, model = read_pages(source)
        print(f"{source} ({len(pages)} pages); {machine()}")
        print(f"{'reduction':22} {'tokens/page':>11} {'store KB/page':>13} {'nDCG@10':>8} {'loss':>7}")
        base = None
        for n, reduction in enumerate(args.reductions.split(",")):
            root = Path(tmp) / f"derived-{n}"
            kept = derived_store(root, pages, model, reduction)
            with Index.open(root) as index:
                ndcg = next(r["ndcg"] for r in index.evaluate(queries).as_json()["rows"] if r["mode"] == "smart")
            base = ndcg if base is None else base
            pages_n = max(1, len(pages))
            print(
                f"{reduction:22} {kept / pages_n:11.1f} {store_bytes(root) / pages_n / 1024:13.2f} {ndcg:8.4f} {base - ndcg:+7.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
