"""A `search` call to `smart mcp` (warm) against a query to `smart search --queries -` (warm), per
query, side by side in one run.

    python benchmarks/mcp_roundtrip.py --store STORE [--queries FILE.jsonl] [--n 20] [--k 10]
    python benchmarks/mcp_roundtrip.py --smoke [--store STORE]    # sample_corpus/ by default, 3 queries

Both servers are started once and answer a warm-up query first. Then each query goes to both in
turn (so that both see the same load): to `smart search --queries -` as a line on its stdin,
timed until its JSON answer line is read; to `smart mcp` as a `tools/call` of `search` through
the SDK's own client over stdio, timed until the result is back. Printed: median and p90 of
each, the CPU seconds each server process used per query, and the ratio the goal is judged by
(MCP / `smart search`, median; goal: at most 1.2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _stores import ROOT, machine, process_cpu, ratio, read_queries, sample_queries, sample_store, spread


def search_process(store: str, k: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "smartcli", "search", "--queries", "-", "--store", store, "--json", "-k", str(k)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def ask_search(process: subprocess.Popen, query: str) -> list[tuple]:
    process.stdin.write(json.dumps({"query": query}) + "\n")
    process.stdin.flush()
    return [(r["path"], r["page"]) for r in json.loads(process.stdout.readline())["results"]]


async def run(store: str, queries: list[str], k: int) -> None:
    from mcp.client import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    searcher = search_process(store, k)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "smartcli", "mcp", "--store", store],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=str(ROOT),
    )
    with open(os.devnull, "w") as quiet:
        async with stdio_client(params, errlog=quiet) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            server = mcp_server_pid(searcher.pid)
            ask_search(searcher, queries[0])  # warm-up: model, snapshot, query path
            await client.call_tool("search", {"query": queries[0], "k": k})
            searched, called, same = [], [], 0
            search_cpu, mcp_cpu = process_cpu(searcher.pid), process_cpu(server) if server else None
            for query in queries:
                started = time.perf_counter()
                expected = ask_search(searcher, query)
                searched.append(time.perf_counter() - started)
                started = time.perf_counter()
                result = await client.call_tool("search", {"query": query, "k": k})
                called.append(time.perf_counter() - started)
                same += [(r["path"], r["page"]) for r in result.structured_content["results"]] == expected
            search_cpu = (process_cpu(searcher.pid) - search_cpu) / len(queries)
            mcp_cpu = (process_cpu(server) - mcp_cpu) / len(queries) if server else float("nan")
    searcher.stdin.close()
    searcher.wait()
    print(f"{len(queries)} queries, k={k}, store {store}; same pages in the same order for {same} of them")
    print(f"smart search --queries -  {spread(searched)}   server CPU {1000 * search_cpu:.1f} ms per query")
    print(f"smart mcp, tool search    {spread(called)}   server CPU {1000 * mcp_cpu:.1f} ms per query")
    print(f"MCP round trip / smart search, median: {ratio(statistics.median(called), statistics.median(searched))} (goal: at most 1.2)")


def mcp_server_pid(other: int) -> int | None:
    """The `smart mcp` process this benchmark started (Linux /proc): a child running `smartcli mcp`."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == other:
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and b"mcp" in command:
            return int(entry.name)
    return None


def main() -> None:
    import anyio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="the store to search (default: sample_corpus/ indexed into a temporary store)")
    parser.add_argument("--queries", help="queries, one per line or JSON lines with a query field (default: sample_corpus/'s)")
    parser.add_argument("--n", type=int, default=20, help="queries timed (the file's first N, cycled when shorter)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="3 queries (the test suite's run)")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="smart-mcp-bench-") as tmp:
        store = args.store or str(sample_store(Path(tmp)))
        path = args.queries or sample_queries(Path(tmp))
        texts = [q["query"] for q in read_queries(path)]
        n = 3 if args.smoke else args.n
        anyio.run(run, store, [texts[i % len(texts)] for i in range(n)], args.k)
    print(machine())


if __name__ == "__main__":
    main()
