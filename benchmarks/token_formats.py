"""Token-state size per page and retrieval quality for each storage format, side by side.

    python benchmarks/token_formats.py --corpus DIR --queries JUDGED.jsonl [--formats binary,int8,float16]
    python benchmarks/token_formats.py --smoke      # sample_corpus/ and its judged queries, binary and float16

Indexes DIR once per format into a fresh store (`Index.update`, what `smart index` runs), then
evaluates each store (`Index.evaluate`, what `smart eval` runs). Prints token-state bytes per
encoded page (the `tokens` dataset plus its per-token scale, nothing else), the whole store's
bytes per page, nDCG@10 / MRR@10 of the default search with the loss against float16 — the
figure the format is judged by (at most 0.01 nDCG@10 for at most 32 KB per page) — and the
indexing time per page of each (wall and CPU, the model's load included; the libraries are
imported beforehand so that no format pays for that alone) with its ratio to float16's.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import h5py
from _stores import SAMPLE_CORPUS, clock, machine, sample_queries

from smartcli import Index


def token_bytes_per_page(store: Path) -> float:
    total, pages = 0, 0
    for segment in sorted((store / "segments").glob("seg-*.h5")):
        with h5py.File(segment, "r") as h5:
            total += h5["tokens"].id.get_storage_size()
            if "token_scale" in h5:
                total += h5["token_scale"].id.get_storage_size()
            pages += h5["pooled"].shape[0]
    return total / pages


def measure(corpus: str, queries: str, fmt: str, store: Path, ocr: str) -> dict:
    with Index.open(store, create=True, token_dtype=fmt) as index:
        with clock() as indexing:
            summary = index.update([corpus], ocr=ocr)
        rows = index.evaluate(queries).as_json()["rows"]
        whole = index.status().bytes_per_item
    default = next(r for r in rows if r["mode"] == "smart")
    pages = max(1, summary.pages_encoded)
    return {
        "tokens": token_bytes_per_page(store),
        "whole": whole,
        "ndcg": default["ndcg"],
        "mrr": default["mrr"],
        "wall": indexing.wall / pages,
        "cpu": indexing.cpu / pages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="folder to index")
    parser.add_argument("--queries", help='judged queries, JSON lines with "query" and "relevant"')
    parser.add_argument("--formats", default="binary,int8,float16", help="token formats, comma-separated")
    parser.add_argument("--ocr", default="auto", choices=("auto", "always", "never"), help="as smart index --ocr (default auto)")
    parser.add_argument("--smoke", action="store_true", help="binary and float16, no OCR; without --corpus and --queries: sample_corpus/")
    args = parser.parse_args()
    if args.smoke:
        args.formats, args.ocr = "binary,float16", "never"
    elif not (args.corpus and args.queries):
        parser.error("--corpus and --queries are required (or --smoke)")
    from smartcli.models.registry import load_encoder

    load_encoder("default", "cpu")  # torch and transformers imported before any format is timed
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or str(SAMPLE_CORPUS)
        queries = str(args.queries or sample_queries(Path(tmp)))
        rows = {fmt: measure(corpus, queries, fmt, Path(tmp) / fmt, args.ocr) for fmt in args.formats.split(",")}
    base = rows.get("float16")
    print(f"{corpus}; {machine()}")
    print(
        f"{'format':8} {'token KB/page':>13} {'store KB/page':>13} {'nDCG@10':>8} {'MRR@10':>7} {'nDCG loss vs float16':>21}"
        f" {'index ms/page wall':>18} {'CPU':>7} {'CPU vs float16':>14}"
    )
    for fmt, r in rows.items():
        loss = f"{base['ndcg'] - r['ndcg']:+.4f}" if base else "-"
        versus = f"{r['cpu'] / base['cpu']:.2f}x" if base else "-"
        print(
            f"{fmt:8} {r['tokens'] / 1024:13.1f} {r['whole'] / 1024:13.1f} {r['ndcg']:8.4f} {r['mrr']:7.4f} {loss:>21}"
            f" {r['wall'] * 1000:18.0f} {r['cpu'] * 1000:7.0f} {versus:>14}"
        )


if __name__ == "__main__":
    main()
