"""Time to a first result page of `smart serve`, cold and warm, and thumbnail rendering per page.

    python benchmarks/serve_latency.py --store STORE [--queries FILE.jsonl] [--n 20] [--smoke]

A "result page" is what the browser waits for after a query: the search API's answer (with the
marks: word boxes or heat maps) and the thumbnail of every result on it. Measured in this run:
- cold: from starting `smart serve` (a new process, an empty picture cache) to the first result
  page, split into start-up (model and index loaded, socket listening), the API answer and the
  thumbnails;
- warm: the same server answering further queries (median and p90), once with their
  thumbnails drawn for the first time and once more with them in the disk cache;
- thumbnails: PyMuPDF/Pillow drawing one page 320 and 1200 pixels wide (median and p90 over
  pages of the store), in this process, no cache.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's smartcli, also when run as a script
DEFAULT_QUERIES = [
    "how do I change the default terminal",
    "which wifi channel avoids interference",
    "how often should I water a fern",
    "adjusting bicycle brakes",
    "feeding a sourdough starter",
]


def start_server(store: str, cache: str):
    process = subprocess.Popen(
        [sys.executable, "-m", "smartcli", "serve", "--store", store, "--port", "0", "--no-open"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
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


def result_page(base: str, query: str, k: int) -> tuple[float, float]:
    """Seconds for the API answer, and for the thumbnails of all its results after it."""
    start = time.perf_counter()
    answer = json.loads(fetch(f"{base}/api/search?explain=1&k={k}&q={urllib.parse.quote(query)}"))
    api = time.perf_counter() - start
    start = time.perf_counter()
    for result in answer["results"]:
        fetch(base + result["thumbnail"])
    return api, time.perf_counter() - start


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   (n={len(ms)})"


def thumbnails(store: str, pages: int) -> dict:
    from smartcli import Index
    from smartcli.ingest.pageview import render_png

    with Index.open(store) as index:
        searcher = index._current(with_encoder=False)
        items = searcher.items[:: max(1, len(searcher.items) // pages)][:pages]
        times = {320: [], 1200: []}
        render_png(items[0].path, items[0].kind, items[0].page, 320)  # imports and first open, untimed
        for item in items:
            for width in times:
                start = time.perf_counter()
                render_png(item.path, item.kind, item.page, width)
                times[width].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store")
    parser.add_argument("--queries", help="JSON lines with a \"query\" field (default: a few questions on sample_corpus)")
    parser.add_argument("--n", type=int, default=20, help="warm queries")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--pages", type=int, default=50, help="pages drawn for the thumbnail figure")
    parser.add_argument("--smoke", action="store_true", help="index sample_corpus into a temporary store; tiny sizes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            args.store = str(Path(tmp) / "store")
            subprocess.run([sys.executable, "-m", "smartcli", "index", str(ROOT / "sample_corpus"), "--store", args.store, "--ocr", "never"],
                           check=True, capture_output=True, cwd=ROOT)
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
            api, thumbs = result_page(base, first, args.k)
            cold = time.perf_counter() - started
            fresh = [result_page(base, q, args.k) for q in warm]
            cached = [result_page(base, q, args.k) for q in warm]
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
        drawn = thumbnails(args.store, args.pages)

    print(f"store {args.store}, k={args.k}")
    print(f"cold: first result page {cold:6.2f} s after starting smart serve "
          f"(start-up {listening:.2f} s, API {api * 1000:.0f} ms, {args.k} thumbnails {thumbs * 1000:.0f} ms)")
    print(f"warm, new thumbnails:    API {summary([a for a, _ in fresh])}")
    print(f"                  result page {summary([a + t for a, t in fresh])}")
    print(f"warm, cached thumbnails: API {summary([a for a, _ in cached])}")
    print(f"                  result page {summary([a + t for a, t in cached])}")
    for width, times in drawn.items():
        print(f"thumbnail {width:4d} px wide, drawn per page: {summary(times)}")
    print(f"ratio cold / warm result page (cached thumbnails): {cold / statistics.median([a + t for a, t in cached]):.1f}")


if __name__ == "__main__":
    main()
