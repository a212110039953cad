"""Cold start and warm latency of `smart search`, measured in one run.

Times, in fresh processes and interleaved so that machine load hits them alike:

    python -c "import torch, transformers"      the floor any torch + transformers tool pays
    smart --help
    smart search "a bad" --json --files-only    an argument error
    smart search QUERY --store STORE --json     a cold search: imports, store, model, query

then keeps one `smart search --queries -` process open and times each query's round trip
(line written to its stdin until its answer line is read): the warm latency a program or
the interactive prompt sees.

    python benchmarks/cold_start.py --store /tmp/dev --queries ../shared/eval/dev_queries.jsonl

Without --store it indexes sample_corpus/ into a temporary store first (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMART = [sys.executable, "-m", "smartcli"]  # this checkout's code, as the `smart` script runs it
DEFAULT_QUERY = "how do I change the default terminal"
DEFAULT_WARM_QUERIES = [
    "how do I change the default terminal",
    "tyre pressure",
    "which channel avoids wifi interference",
    "how long do I bake the loaf",
    "when should I water my plants",
]


def timed(command: list[str], expect_code: int = 0) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != expect_code:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}, expected {expect_code}:\n{result.stderr}")
    return elapsed


def cold_figures(store: Path, query: str, runs: int) -> dict[str, list[float]]:
    commands = {
        "import torch, transformers": ([sys.executable, "-c", "import torch, transformers"], 0),
        "smart --help": (SMART + ["--help"], 0),
        "smart search (argument error)": (SMART + ["search", "a bad", "--json", "--files-only"], 2),
        "smart search QUERY (cold)": (SMART + ["search", query, "--store", str(store), "--json"], 0),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    timed(commands["smart search QUERY (cold)"][0])  # fill the page cache once; every run then starts alike
    for run in range(runs):
        for name, (command, code) in commands.items():
            times[name].append(timed(command, code))
        print(f"  run {run + 1}/{runs} done", file=sys.stderr)
    return times


def warm_figures(store: Path, queries: list[str]) -> tuple[float, float, list[float]]:
    """Seconds from starting a streaming process to its first answer, that first query's own
    round trip, and each later query's round trip."""
    started = time.perf_counter()
    process = subprocess.Popen(
        SMART + ["search", "--queries", "-", "--store", str(store), "-k", "10"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    round_trips = []
    first_answer = 0.0
    try:
        for query in queries:
            sent = time.perf_counter()
            process.stdin.write(json.dumps({"query": query}) + "\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            if "results" not in answer:
                raise SystemExit(f"no results in {answer}")
            round_trips.append(time.perf_counter() - sent)
            first_answer = first_answer or time.perf_counter() - started
        process.stdin.close()
        process.wait(timeout=60)
    finally:
        process.kill()
    return first_answer, round_trips[0], round_trips[1:]


# Run in a fresh interpreter: the stages of a cold search, each timed on its own.
STAGES_SCRIPT = """
import json, sys, time
stages, last = [], time.perf_counter()
def lap(name):
    global last
    now = time.perf_counter(); stages.append((name, now - last)); last = now
import torch; lap("import torch")
import transformers; lap("import transformers")
import transformers.modeling_utils; lap("import transformers.modeling_utils (every model class needs it)")
from smartcli.models.registry import load_encoder
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store
store = Store.open(sys.argv[1]); spec = store.model.spec; lap("smartcli modules, open the store")
encoder = load_encoder(spec, "auto"); lap("load the model (model class, tokenizer, weights)")
searcher = Searcher(store, encoder); lap("snapshot: items and pooled vectors")
searcher.search([sys.argv[2]], Weights(), 10); lap("first query: encode, score (two-stage by default), explain 10 hits")
searcher.search([sys.argv[2]], Weights(), 10); lap("the same query again, same process")
print(json.dumps(stages))
"""


def stage_figures(store: Path, query: str) -> list[tuple[str, float]]:
    result = subprocess.run([sys.executable, "-c", STAGES_SCRIPT, str(store), query], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def index_sample_corpus(directory: Path) -> Path:
    store = directory / "store"
    print(f"indexing sample_corpus/ into {store} …", file=sys.stderr)
    subprocess.run(SMART + ["index", str(ROOT / "sample_corpus"), "--store", str(store)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return store


def store_size(store: Path) -> str:
    result = subprocess.run(SMART + ["status", "--store", str(store), "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
    status = json.loads(result.stdout)
    return f"{status['encoded_items']} pages, {status['tokens']} token states, {status['bytes'] / 2**20:.0f} MiB"


def read_queries(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line)["query"] if line.startswith("{") else line for line in lines]


def machine() -> str:
    import torch

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (load average {load}), "
        f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, help="an indexed store (default: sample_corpus/ indexed into a temporary one)")
    parser.add_argument("--query", default=DEFAULT_QUERY, help="the cold query")
    parser.add_argument("--queries", type=Path, help="queries for the warm process (plain lines or JSON lines with \"query\")")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per cold command")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        store = args.store or index_sample_corpus(Path(scratch))
        warm_queries = read_queries(args.queries) if args.queries else DEFAULT_WARM_QUERIES
        print(f"machine: {machine()}")
        print(f"store:   {store} ({store_size(store)})")
        cold = cold_figures(store, args.query, args.runs)
        first_answer, first_trip, later_trips = warm_figures(store, warm_queries)
        stages = stage_figures(store, args.query)

    baseline = statistics.median(cold["import torch, transformers"])
    print(f"\ncold start, {args.runs} fresh processes each (median, min), query {args.query!r}:")
    for name, seconds in cold.items():
        median = statistics.median(seconds)
        print(f"  {name:32} {median:6.2f} s  {min(seconds):6.2f} s   {median / baseline:4.2f}x the import")
    print("\nwhere one cold search spends its time (one fresh process, stage by stage):")
    for name, seconds in stages:
        print(f"  {seconds:6.2f} s  {name}")
    print(f"\nwarm process (`smart search --queries -`), {len(warm_queries)} queries:")
    print(f"  start to first answer            {first_answer:6.2f} s   (first query alone {first_trip * 1000:.0f} ms)")
    if later_trips:
        ms = sorted(t * 1000 for t in later_trips)
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        print(f"  each later query, round trip     median {statistics.median(ms):.0f} ms, p90 {p90:.0f} ms, max {ms[-1]:.0f} ms")


if __name__ == "__main__":
    main()
