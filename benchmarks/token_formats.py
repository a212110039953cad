"""Token-state size per page and retrieval quality for each storage format, side by side.

    python benchmarks/token_formats.py --corpus DIR --queries JUDGED.jsonl [--formats binary,int8,float16]

Indexes DIR once per format with the real `smart index` (a fresh store each), then runs
`smart eval` on each store. Prints token-state bytes per encoded page (the `tokens` dataset
plus its per-token scale, nothing else), the whole store's bytes per page, and nDCG@10 /
MRR@10 of the default search, with the loss against float16 — the figure the format is
judged by (at most 0.01 nDCG@10 for at most 32 KB per page).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py


def smart(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "smartcli", *args], capture_output=True, text=True)
    if result.returncode not in (0, 3):
        raise SystemExit(f"smart {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def token_bytes_per_page(store: Path) -> float:
    total, pages = 0, 0
    for segment in sorted((store / "segments").glob("seg-*.h5")):
        with h5py.File(segment, "r") as h5:
            total += h5["tokens"].id.get_storage_size()
            if "token_scale" in h5:
                total += h5["token_scale"].id.get_storage_size()
            pages += h5["pooled"].shape[0]
    return total / pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--queries", required=True)
    parser.add_argument("--formats", default="binary,int8,float16")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.formats.split(","):
            store = Path(tmp) / fmt
            smart("index", args.corpus, "--store", str(store), "--token-dtype", fmt)
            status = json.loads(smart("status", "--store", str(store), "--json"))
            report = json.loads(smart("eval", "--queries", args.queries, "--store", str(store), "--json"))
            default = next(r for r in report["rows"] if r["mode"] == "smart")
            rows[fmt] = (token_bytes_per_page(store), status["bytes_per_item"], default["ndcg"], default["mrr"])
    base = rows.get("float16")
    print(f"{'format':8} {'token KB/page':>13} {'store KB/page':>13} {'nDCG@10':>8} {'MRR@10':>7} {'nDCG loss vs float16':>21}")
    for fmt, (tokens, whole, ndcg, mrr) in rows.items():
        loss = f"{base[2] - ndcg:+.4f}" if base else "-"
        print(f"{fmt:8} {tokens / 1024:13.1f} {whole / 1024:13.1f} {ndcg:8.4f} {mrr:7.4f} {loss:>21}")


if __name__ == "__main__":
    main()
