"""Time to a first result page of `smart serve`, cold and warm, and thumbnail rendering per page.

    python benchmarks/serve_latency.py --store STORE [--queries FILE.jsonl] [--n 20]
    python benchmarks/serve_latency.py --smoke [--store STORE]    # 3 warm queries; sample_corpus/ by default

A "result page" is what the browser waits for after a query: the search API's answer (with the
marks: word boxes or heat maps) and the thumbnail of every result on it. Measured in this run:
- cold: from starting `smart serve` (a new process, an empty picture cache) to the first result
  page, split into start-up (model and index loaded, socket listening), the API answer and the
  thumbnails;
- warm: the same server answering further queries (median and p90, and the server process's
  CPU seconds), once with their thumbnails drawn for the first time and once more with them in
  the disk cache;
- thumbnails: one page drawn 320 and 1200 pixels wide (`Index.picture`, PyMuPDF/Pillow; median
  and p90 of wall and CPU over pages the result pages showed), in this process, no cache.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from _stores import ROOT, clock, machine, process_cpu, sample_store

DEFAULT_QUERIES = [
    "how do I change the default terminal",
    "which wifi channel avoids interference",
    "how often should I water a fern",
    "adjusting bicycle brakes",
    "feeding a sourdough starter",
]


def start_server(store: str, cache: str):
    process = subprocess.Popen(
        # --no-token: the timed requests carry none (checking one costs microseconds).
        [sys.executable, "-m", "smartcli", "serve", "--store", store, "--port", "0", "--no-open", "--no-token"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, XDG_CACHE_HOME=cache, PYTHONPATH=str(ROOT)),
    )
    lines = []
    for line in iter(process.stderr.readline, ""):
        lines.append(line)
        found = re.search(r"at (http://\S+) \(Ctrl-C stops\)", line)
        if found:
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, found.group(1).rstrip("/")
    raise SystemExit("smart serve did not start:\n" + "".join(lines))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url) as response:
        return response.read()


def result_page(base: str, query: str, k: int, shown: dict) -> tuple[float, float]:
    """Seconds for the API answer, and for the thumbnails of all its results after it; the
    results' (path, page) are added to ``shown``."""
    start = time.perf_counter()
    answer = json.loads(fetch(f"{base}/api/search?explain=1&k={k}&q={urllib.parse.quote(query)}"))
    api = time.perf_counter() - start
    start = time.perf_counter()
    for result in answer["results"]:
        fetch(base + result["thumbnail"])
        shown.setdefault((result["path"], result["page"]), None)
    return api, time.perf_counter() - start


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   (n={len(ms)})"


def server_cpu(process, fn):
    """``fn()``'s value and the CPU seconds the server process spent meanwhile (NaN where unknown)."""
    before = process_cpu(process.pid)
    value = fn()
    after = process_cpu(process.pid)
    return value, (after - before) if before is not None and after is not None else float("nan")


def thumbnails(store: str, shown: list[tuple[str, int]], pages: int) -> dict[int, list[tuple[float, float]]]:
    """Wall and CPU seconds of drawing each of up to ``pages`` of the pages shown, per width."""
    from smartcli import Index

    with Index.open(store) as index:
        items = [index.item(path, page) for path, page in shown[:pages]]
        times: dict[int, list[tuple[float, float]]] = {320: [], 1200: []}
        index.picture(items[0], 320)  # imports and first open, untimed
        for item in items:
            for width in times:
                with clock() as timing:
                    index.picture(item, width)
                times[width].append((timing.wall, timing.cpu))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="an indexed store (read only)")
    parser.add_argument("--queries", help='JSON lines with a "query" field (default: a few questions on sample_corpus)')
    parser.add_argument("--n", type=int, default=20, help="warm queries")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--pages", type=int, default=50, help="pages drawn for the thumbnail figure")
    parser.add_argument(
        "--smoke", action="store_true", help="3 warm queries, 3 pages drawn; without --store: sample_corpus/ in a temporary store"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            args.store = str(args.store or sample_store(Path(tmp)))
            args.n, args.pages = 3, 3
        if not args.store:
            parser.error("--store is required (or --smoke)")
        queries = DEFAULT_QUERIES
        if args.queries:
            queries = [json.loads(line)["query"] for line in open(args.queries, encoding="utf-8") if line.strip()]
        first = queries[0]
        warm = (queries[1:] * args.n)[: args.n] or [first]

        started = time.perf_counter()
        process, base = start_server(args.store, str(Path(tmp) / "cache"))
        listening = time.perf_counter() - started
        try:
            shown: dict = {}  # (path, page) of every result shown, in order
            api, thumbs = result_page(base, first, args.k, shown)
            cold = time.perf_counter() - started
            fresh = [server_cpu(process, lambda: result_page(base, q, args.k, shown)) for q in warm]
            cached = [server_cpu(process, lambda: result_page(base, q, args.k, shown)) for q in warm]
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
        drawn = thumbnails(args.store, list(shown), args.pages)

    def cpu(rows) -> str:
        return f"server CPU median {statistics.median(c for _, c in rows) * 1000:7.1f} ms"

    print(f"store {args.store}, k={args.k}; {machine()}")
    print(
        f"cold: first result page {cold:6.2f} s after starting smart serve "
        f"(start-up {listening:.2f} s, API {api * 1000:.0f} ms, {args.k} thumbnails {thumbs * 1000:.0f} ms)"
    )
    print(f"warm, new thumbnails:    API {summary([a for (a, _), _ in fresh])}")
    print(f"                  result page {summary([a + t for (a, t), _ in fresh])}   {cpu(fresh)}")
    print(f"warm, cached thumbnails: API {summary([a for (a, _), _ in cached])}")
    print(f"                  result page {summary([a + t for (a, t), _ in cached])}   {cpu(cached)}")
    for width, times in drawn.items():
        print(
            f"thumbnail {width:4d} px wide, drawn per page: {summary([w for w, _ in times])}   CPU median {statistics.median(c for _, c in times) * 1000:7.1f} ms"
        )
    warm_page = statistics.median([a + t for (a, t), _ in cached])
    new_page = statistics.median([a + t for (a, t), _ in fresh])
    print(f"ratio cold / warm result page (cached thumbnails): {cold / warm_page:.1f}; new / cached thumbnails: {new_page / warm_page:.2f}")


if __name__ == "__main__":
    main()
