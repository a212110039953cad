"""Cold start and warm latency of `smart search`, measured in one run.

Times (wall, and the CPU seconds of the process), in fresh processes and interleaved so that
machine load hits them alike:

    python -c "import torch, transformers"      the floor any torch + transformers tool pays
    smart --help
    smart search "a bad" --json --files-only    an argument error
    smart search QUERY --store STORE --json     a cold search: imports, store, model, query

then keeps one `smart search --queries -` process open and times each query's round trip
(line written to its stdin until its answer line is read): the warm latency a program or
the interactive prompt sees, with the process's CPU seconds per query beside it.

    python benchmarks/cold_start.py --store STORE --queries QUERIES.jsonl [--runs 5]
    python benchmarks/cold_start.py --smoke     # sample_corpus/, one fresh process per cold command

Without --store it indexes sample_corpus/ into a temporary store first.
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

from _stores import ROOT, children_cpu, process_cpu, read_queries, sample_store

SMART = [sys.executable, "-m", "smartcli"]  # this checkout's code, as the `smart` script runs it
DEFAULT_QUERY = "how do I change the default terminal"
DEFAULT_WARM_QUERIES = [
    "how do I change the default terminal",
    "tyre pressure",
    "which channel avoids wifi interference",
    "how long do I bake the loaf",
    "when should I water my plants",
]


def timed(command: list[str], expect_code: int = 0) -> tuple[float, float]:
    """Wall seconds of a fresh process running ``command``, and its CPU seconds."""
    cpu = children_cpu()
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != expect_code:
        raise SystemExit(f"{' '.join(command)} exited {result.returncode}, expected {expect_code}:\n{result.stderr}")
    return elapsed, children_cpu() - cpu


def cold_figures(store: Path, query: str, runs: int) -> dict[str, list[tuple[float, float]]]:
    commands = {
        "import torch, transformers": ([sys.executable, "-c", "import torch, transformers"], 0),
        "smart --help": (SMART + ["--help"], 0),
        "smart search (argument error)": (SMART + ["search", "a bad", "--json", "--files-only"], 2),
        "smart search QUERY (cold)": (SMART + ["search", query, "--store", str(store), "--json"], 0),
    }
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    timed(commands["smart search QUERY (cold)"][0])  # fill the page cache once; every run then starts alike
    for run in range(runs):
        for name, (command, code) in commands.items():
            times[name].append(timed(command, code))
        print(f"  run {run + 1}/{runs} done", file=sys.stderr)
    return times


def warm_figures(
    store: Path, queries: list[str], env: dict | None = None, mode: str = "smart"
) -> tuple[float, float, list[float], list[float]]:
    """Seconds from starting a streaming process to its first answer, that first query's own
    round trip, and each later query's round trip and the process's CPU seconds for it (queries
    from a pipe, one at a time)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        SMART + ["search", "--queries", "-", "--store", str(store), "-k", "10", "--mode", mode],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    round_trips, cpu = [], []
    first_answer = 0.0
    try:
        for query in queries:
            used = process_cpu(process.pid)
            sent = time.perf_counter()
            process.stdin.write(json.dumps({"query": query}) + "\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            if "results" not in answer:
                raise SystemExit(f"no results in {answer}")
            round_trips.append(time.perf_counter() - sent)
            after = process_cpu(process.pid)
            cpu.append(after - used if used is not None and after is not None else float("nan"))
            first_answer = first_answer or time.perf_counter() - started
        process.stdin.close()
        process.wait(timeout=60)
    finally:
        process.kill()
    return first_answer, round_trips[0], round_trips[1:], cpu[1:]


def file_figures(store: Path, queries: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU seconds per query after the first, with every query in a file (`--queries
    FILE`, answered in groups, so not one by one): a process given all of them against one given
    the first only, each from its start to its exit."""

    def run(some: list[str]) -> tuple[float, float]:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("".join(json.dumps({"query": q}) + "\n" for q in some))
        try:
            command = SMART + ["search", "--queries", f.name, "--store", str(store), "-k", "10", "--json"]
            cpu = children_cpu()
            started = time.perf_counter()
            result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env, check=True)
            wall = time.perf_counter() - started
            if len(result.stdout.splitlines()) != len(some):
                raise SystemExit(f"{len(result.stdout.splitlines())} answers to {len(some)} queries")
            return wall, children_cpu() - cpu
        finally:
            os.unlink(f.name)

    (one_wall, one_cpu), (all_wall, all_cpu) = run(queries[:1]), run(queries)
    rest = max(1, len(queries) - 1)
    return (all_wall - one_wall) / rest, (all_cpu - one_cpu) / rest


# Run in a fresh interpreter: the stages of a cold search, each timed on its own.
STAGES_SCRIPT = """
import json, sys, time
stages, last = [], time.perf_counter()
def lap(name):
    global last
    now = time.perf_counter(); stages.append((name, now - last)); last = now
from smartcli.models.registry import load_query_encoder
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store
store = Store.open(sys.argv[1]); spec = store.model.spec; lap("smartcli modules (numpy, h5py), open the store")
encoder = load_query_encoder(spec, "auto"); lap(f"load the query encoder ({type(encoder).__name__})")
searcher = Searcher(store, encoder); lap("snapshot: items and pooled vectors")
searcher.search([sys.argv[2]], Weights(), 10); lap("first query: encode, score (two-stage by default), explain 10 hits")
searcher.search([sys.argv[2]], Weights(), 10); lap("the same query again, same process")
lap(f"(torch imported: {'torch' in sys.modules}, transformers imported: {'transformers' in sys.modules})")
print(json.dumps(stages))
"""


def stage_figures(store: Path, query: str) -> list[tuple[str, float]]:
    result = subprocess.run([sys.executable, "-c", STAGES_SCRIPT, str(store), query], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def store_size(store: Path) -> str:
    result = subprocess.run(SMART + ["status", "--store", str(store), "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
    status = json.loads(result.stdout)
    return f"{status['encoded_items']} pages, {status['tokens']} token states, {status['bytes'] / 2**20:.0f} MiB"


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
    parser.add_argument("--queries", type=Path, help='queries for the warm process (plain lines or JSON lines with "query")')
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per cold command")
    parser.add_argument("--smoke", action="store_true", help="one fresh process per cold command")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        store = args.store or sample_store(Path(scratch))
        warm_queries = [q["query"] for q in read_queries(args.queries)] if args.queries else DEFAULT_WARM_QUERIES
        if args.smoke:
            args.runs = 1
        print(f"machine: {machine()}")
        print(f"store:   {store} ({store_size(store)})")
        cold = cold_figures(store, args.query, args.runs)
        stages = stage_figures(store, args.query)
        one_thread = dict(os.environ, OMP_NUM_THREADS="1")
        default_threads = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        warm = {
            "pipe, OMP_NUM_THREADS unset": warm_figures(store, warm_queries, default_threads),
            "pipe, OMP_NUM_THREADS=1": warm_figures(store, warm_queries, one_thread),
        }
        from_file = {
            "file, OMP_NUM_THREADS unset": file_figures(store, warm_queries, default_threads),
            "file, OMP_NUM_THREADS=1": file_figures(store, warm_queries, one_thread),
        }
        single_vector = warm_figures(store, warm_queries, default_threads, mode="pooled")

    baseline = statistics.median(w for w, _ in cold["import torch, transformers"])
    cpu_baseline = statistics.median(c for _, c in cold["import torch, transformers"])
    print(f"\ncold start, {args.runs} fresh processes each (median and min wall; median CPU), query {args.query!r}:")
    for name, runs in cold.items():
        wall, cpu = [w for w, _ in runs], [c for _, c in runs]
        median, median_cpu = statistics.median(wall), statistics.median(cpu)
        print(
            f"  {name:32} {median:6.2f} s  {min(wall):6.2f} s   {median / baseline:4.2f}x the import;"
            f"  CPU {median_cpu:6.2f} s  {median_cpu / cpu_baseline:4.2f}x the import's"
        )
    cold_search = statistics.median(w for w, _ in cold["smart search QUERY (cold)"])
    cold_cpu = statistics.median(c for _, c in cold["smart search QUERY (cold)"])
    print(
        f"  target: cold search <= 0.35x the import: {cold_search / baseline:.2f}x wall, {cold_cpu / cpu_baseline:.2f}x CPU "
        f"({'met' if cold_search <= 0.35 * baseline else 'not met'} by the wall clock)"
    )
    print("\nwhere one cold search spends its time (one fresh process, stage by stage):")
    for name, seconds in stages:
        print(f"  {seconds:6.2f} s  {name}")
    print(f"\nwarm process, {len(warm_queries)} queries, each after the first (target <= 30 ms and <= 2x single-vector):")
    sv = statistics.median(single_vector[2]) * 1000 if single_vector[2] else float("nan")
    sv_cpu = statistics.median(single_vector[3]) * 1000 if single_vector[3] else float("nan")
    for name, (first_answer, _first_trip, later_trips, later_cpu) in warm.items():
        if later_trips:
            ms = sorted(t * 1000 for t in later_trips)
            p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
            median, cpu = statistics.median(ms), statistics.median(later_cpu) * 1000
            print(
                f"  {name:30} median {median:6.1f} ms, p90 {p90:6.1f} ms ({median / 30:.2f}x the target, {median / sv:.2f}x single-vector); "
                f"CPU {cpu:6.1f} ms ({cpu / sv_cpu:.2f}x single-vector's); start to first answer {first_answer:.2f} s"
            )
    for name, (seconds, cpu) in from_file.items():
        print(
            f"  {name:30} {seconds * 1000:6.1f} ms per query ({seconds * 1000 / 30:.2f}x the target, {seconds * 1000 / sv:.2f}x single-vector); "
            f"CPU {cpu * 1000:6.1f} ms"
        )
    print(f"  single-vector (--mode pooled, pipe, same run)  median {sv:6.1f} ms, CPU {sv_cpu:6.1f} ms")


if __name__ == "__main__":
    main()
