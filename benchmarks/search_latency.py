"""Warm query latency on synthetic stores built through the real store code, and peak memory.

    python benchmarks/search_latency.py [--items 100000] [--small 1000] [--tokens 650] [--format binary]
    python benchmarks/search_latency.py --smoke

Builds (once, cached under --workdir) a store of --items pages and one of --small pages, each
page with a realistic number of token states (normal around --tokens, 50 to 2,000) of random
unit vectors in the default model's 384 dimensions, written with `Store.write_segment` and
`commit_files` like `smart index` does. Then, with the real default model loaded and the
stores open, it times real text queries end to end (query encoding included), by the wall clock
and by the process's CPU seconds:

- two-stage search (default K) over the large store — judged against 100 ms;
- exhaustive search over the small store — judged against 50 ms;

and prints the process's peak resident memory beside the token bytes on disk. The timing runs
twice, in fresh processes, with OMP_NUM_THREADS unset and with it 1, side by side: a busy
machine must not make either several times slower. The searcher is a warm one (token states
kept in memory up to the warm cache budget, as `smart search --queries` keeps them), with the
query encoder `smart search` uses (ONNX Runtime for the default model). Targets (issue 12):
two-stage over 100,000 pages <= 60 ms per query.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
from _stores import clock, machine, spread

from smartcli import defaults
from smartcli.defaults import CANDIDATES as DEFAULT_CANDIDATES
from smartcli.models.base import Encoded
from smartcli.models.registry import load_query_encoder
from smartcli.search.scoring import DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE, Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import FileRecord, PageRecord, Store, writes

QUERIES = [
    "how do I change the default terminal",
    "encrypt the files on a usb stick",
    "which make target builds kernel packages",
    "wifi channel interference",
    "multiply a complex matrix by a vector",
    "what does the administrator account allow",
    "restart a script from the beginning",
    "postscript point types",
]
PAGES_PER_BATCH = 500


def build_store(root: Path, items: int, tokens_per_item: int, token_format: str, info) -> Store:
    if (root / "catalog.sqlite").exists():
        return Store.open(root)
    rng = np.random.default_rng(0)
    store = Store.open_for_writing(root)
    writes.bind_model(store, info, token_format)
    dims = info.dims
    for start in range(0, items, PAGES_PER_BATCH):
        n = min(PAGES_PER_BATCH, items - start)
        counts = np.clip(rng.normal(tokens_per_item, tokens_per_item / 3, n).astype(int), 50, 2000)
        pages = []
        for i, count in enumerate(counts):
            # Random sign vectors scaled to unit length: uniformly spread unit vectors that are
            # cheap to draw (100,000 pages need 65 million of them).
            bits = np.unpackbits(rng.integers(0, 256, (count, dims // 8), dtype=np.uint8), axis=1)
            tokens = (bits.astype(np.float32) * 2 - 1) / np.sqrt(dims)
            pooled = rng.standard_normal(dims).astype(np.float32)
            pooled /= np.linalg.norm(pooled)
            spans = np.zeros((count, 2), np.int32)
            encoded = Encoded(pooled, tokens, np.zeros(count, np.int32), spans)
            pages.append(PageRecord(page=i + 1, text="", encoded=encoded))
        record = FileRecord(f"/synthetic/batch-{start:07d}.pdf", "pdf", 1, 1, f"{start}", pages)
        writes.commit_files(store, [record], writes.write_segment(store, [record]))
        print(f"\rbuilding {root.name}: {start + n}/{items} pages", end="", flush=True)
    print()
    store.close()
    return Store.open(root)


def token_bytes(store: Store) -> int:
    return sum(p.stat().st_size for p in (store.root / "segments").glob("seg-*.h5"))


def time_queries(searcher: Searcher, shortlist, repeats: int) -> dict[str, list[float]]:
    """Wall and CPU seconds of each query."""
    weights = Weights(DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE)
    searcher.shortlist = shortlist
    searcher.search(QUERIES[:1], weights, 10)  # warm caches
    times: dict[str, list[float]] = {"wall": [], "cpu": []}
    for _ in range(repeats):
        for query in QUERIES:
            with clock() as timing:
                searcher.search([query], weights, 10)
            times["wall"].append(timing.wall)
            times["cpu"].append(timing.cpu)
    return times


def measure(args) -> dict:
    """One process's figures (run with the thread settings of its environment)."""
    encoder = load_query_encoder("default", "cpu")
    work = Path(args.workdir)
    big = build_store(work / f"big-{args.items}-{args.tokens}-{args.format}", args.items, args.tokens, args.format, encoder.info)
    small = build_store(work / f"small-{args.small}-{args.tokens}-{args.format}", args.small, args.tokens, args.format, encoder.info)
    with clock() as opening:
        big_searcher = Searcher(big, encoder, device="cpu", cache_bytes=defaults.WARM_CACHE_BYTES)
    two_stage = time_queries(big_searcher, DEFAULT_CANDIDATES, args.repeats)
    small_searcher = Searcher(small, encoder, device="cpu", cache_bytes=defaults.WARM_CACHE_BYTES)
    exhaustive = time_queries(small_searcher, None, args.repeats)
    encode: dict[str, list[float]] = {"wall": [], "cpu": []}
    for query in QUERIES:
        with clock() as timing:
            encoder.encode_queries([query])
        encode["wall"].append(timing.wall)
        encode["cpu"].append(timing.cpu)
    return {
        "encode": encode,
        "two_stage": two_stage,
        "exhaustive": exhaustive,
        "open": opening.wall,
        "pages": [len(big_searcher), len(small_searcher)],
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "disk": token_bytes(big),
        "encoder": type(encoder).__name__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="pages of the large store (two-stage search)")
    parser.add_argument("--small", type=int, default=1000, help="pages of the small store (exhaustive search)")
    parser.add_argument("--tokens", type=int, default=650, help="mean token states per page")
    parser.add_argument("--format", default="binary", help="token format of the synthetic stores")
    parser.add_argument("--workdir", default="/tmp/smart-latency", help="where the synthetic stores are built and kept")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the queries")
    parser.add_argument("--smoke", action="store_true", help="tiny stores, to check the script runs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.items, args.small, args.tokens, args.repeats = 300, 50, 40, 1
        args.workdir += "-smoke"
    if args.child:
        print(json.dumps(measure(args)))
        return
    measure_args = [a for a in sys.argv[1:] if a != "--smoke"] + (
        [
            "--items",
            str(args.items),
            "--small",
            str(args.small),
            "--tokens",
            str(args.tokens),
            "--repeats",
            str(args.repeats),
            "--workdir",
            args.workdir,
        ]
        if args.smoke
        else []
    )
    results = {}
    for name, env in (
        ("OMP_NUM_THREADS unset", {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}),
        ("OMP_NUM_THREADS=1", dict(os.environ, OMP_NUM_THREADS="1")),
    ):
        ran = subprocess.run([sys.executable, __file__, *measure_args, "--child"], env=env, stdout=subprocess.PIPE, text=True, check=True)
        results[name] = json.loads(ran.stdout.strip().splitlines()[-1])

    def ms(times: dict[str, list[float]]) -> str:
        return f"{spread(times['wall'])}  CPU median {statistics.median(times['cpu']) * 1000:8.1f} ms"

    print(f"token format {args.format}; {machine()}")
    for name, r in results.items():
        big_pages, small_pages = r["pages"]
        print(f"{name} (query encoder {r['encoder']}):")
        print(f"  query encoding alone:               {ms(r['encode'])}")
        for key, label, target in (
            ("two_stage", f"two-stage, K={DEFAULT_CANDIDATES}, {big_pages} pages:", 0.06),
            ("exhaustive", f"exhaustive, {small_pages} pages:", 0.05),
        ):
            wall, cpu = statistics.median(r[key]["wall"]), statistics.median(r[key]["cpu"])
            print(f"  {label:35} {ms(r[key])}   (target {target * 1000:.0f} ms: ratio {wall / target:.2f} wall, {cpu / target:.2f} CPU)")
        print(
            f"  opening the large store: {r['open']:.1f} s; peak resident memory {r['peak'] / 2**30:.2f} GiB; "
            f"large store's segments on disk {r['disk'] / 2**30:.2f} GiB"
        )
    a, b = (statistics.median(r["two_stage"]["wall"]) for r in results.values())
    c, d = (statistics.median(r["two_stage"]["cpu"]) for r in results.values())
    print(f"two-stage, OMP_NUM_THREADS unset / =1: {a / b:.2f} wall, {c / d:.2f} CPU")


if __name__ == "__main__":
    main()
