"""How fresh `smart watch` keeps an index, and what an idle watcher costs.

    python benchmarks/watch_freshness.py [--trials 7] [--large-trials 3] [--files 10000] [--idle 60]
    python benchmarks/watch_freshness.py --smoke

Measured in one run, against a real `smart watch` process (default settings: `--settle 1`):
- freshness: seconds from the last write of a new PDF (its file closed) to its pages being
  searchable by another process (a warm ``Index`` in this process polls its snapshot until
  every page of the PDF is in it), median and p90, for a
  1-page PDF and a 300-page PDF; beside it the watcher's own split (``seconds`` of its update);
- idle cost: the watcher's CPU over ``--idle`` seconds with nothing changing, watching a tree
  of ``--files`` PDFs in 100 folders (copies of 20 distinct ones, so that indexing them once
  encodes 20), as a share of one core, and its memory (resident now and at its peak).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _stores import ROOT, machine, process_cpu

WORDS = "anchor basket candle desert engine forest glacier harbor island jungle kettle ladder meadow needle orchard".split()


def make_pdf(path: Path, pages: list[str]) -> None:
    import pymupdf

    doc = pymupdf.open()
    for text in pages:
        doc.new_page().insert_textbox(pymupdf.Rect(72, 72, 540, 770), text)
    path.write_bytes(doc.tobytes())


def page_text(rng: random.Random, marker: str, n: int) -> list[str]:
    return [f"{marker} page {p + 1}: " + " ".join(rng.choice(WORDS) for _ in range(180)) for p in range(n)]


class WatchProcess:
    """`smart watch --json` on ``folder``: its JSON lines on a queue."""

    def __init__(self, folder: Path, store: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smartcli", "watch", str(folder), "--store", str(store), "--ocr", "never", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self.read_lines, daemon=True).start()

    def read_lines(self) -> None:
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def until(self, wanted, timeout: float = 3600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if wanted(line):
                return line

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and of its children it has waited for (the file readers of each update)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def memory(pid: int) -> tuple[int, int]:
    """Resident and peak resident bytes of ``pid`` (Linux /proc)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def freshness(folder: Path, store: Path, trials: int, large_trials: int, large_pages: int) -> None:
    from smartcli import Index

    rng = random.Random(7)
    make_pdf(folder / "seed.pdf", page_text(rng, "seed", 2))
    watcher = WatchProcess(folder, store)
    try:
        watcher.until(lambda line: line["event"] == "watching")
        index = Index.open(store)
        index.load()  # the reader is warm: what is measured is the watcher, not this process's start
        for label, pages, n in (("1-page PDF", 1, trials), (f"{large_pages}-page PDF", large_pages, large_trials)):
            if not n:
                continue
            waits, updates, cpus = [], [], []
            for trial in range(n):
                marker = f"zq{label[0]}x{trial}w"
                data_path = folder / f"{marker}.pdf"
                staging = folder.parent / f"{marker}.pdf"
                make_pdf(staging, page_text(rng, marker, pages))
                data = staging.read_bytes()
                cpu = tree_cpu(watcher.process.pid)
                with data_path.open("wb") as f:  # the write measured from: the file's last byte, closed
                    f.write(data)
                written = time.perf_counter()
                while len(index.pages(data_path)) < pages:  # every page in the reader's current snapshot
                    time.sleep(0.02)
                waits.append(time.perf_counter() - written)
                change = watcher.until(lambda line, p=str(data_path): line["event"] == "change" and p in line["added"])
                updates.append(change["seconds"])
                cpus.append(tree_cpu(watcher.process.pid) - cpu)
            print(
                f"freshness, {label:>14}: median {statistics.median(waits):6.2f} s  p90 {p90(waits):6.2f} s  (n={n}; of it the "
                f"watcher's update: median {statistics.median(updates):.2f} s wall, {statistics.median(cpus):.2f} s CPU of the watcher and its readers)"
            )
        index.close()
    finally:
        watcher.stop()


def p90(values: list[float]) -> float:
    """The nearest-rank 90th percentile (the largest of fewer than 10 values)."""
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def idle_cost(folder: Path, store: Path, files: int, seconds: float) -> None:
    rng = random.Random(11)
    distinct = [folder / f"distinct-{i:02d}.pdf" for i in range(min(20, files))]
    for i, path in enumerate(distinct):
        make_pdf(path, page_text(rng, f"distinct{i}", 1))
    for i in range(files - len(distinct)):
        sub = folder / f"part-{i % 100:03d}"
        sub.mkdir(exist_ok=True)
        shutil.copyfile(distinct[i % len(distinct)], sub / f"copy-{i:05d}.pdf")
    watcher = WatchProcess(folder, store)
    try:
        started = time.perf_counter()
        watcher.until(lambda line: line["event"] == "watching")
        print(f"indexing the {files:,}-file tree once: {time.perf_counter() - started:.1f} s")
        time.sleep(2)  # let the first update's leftovers (threads, caches) settle
        before = process_cpu(watcher.process.pid)
        time.sleep(seconds)
        cpu = process_cpu(watcher.process.pid) - before
        rss, peak = memory(watcher.process.pid)
        print(
            f"idle watcher over {files:,} files in {sum(1 for p in folder.iterdir() if p.is_dir()) + 1} folders, {seconds:g} s: "
            f"CPU {cpu:.2f} s = {100 * cpu / seconds:.2f}% of one core (goal: under 1%); "
            f"memory {rss / 2**20:.0f} MB resident, {peak / 2**20:.0f} MB at its peak"
        )
    finally:
        watcher.stop()
    restarted = WatchProcess(folder, store)  # on the indexed tree: nothing to encode, no model loaded
    try:
        restarted.until(lambda line: line["event"] == "watching")
        time.sleep(2)
        rss, peak = memory(restarted.process.pid)
        print(
            f"the same watcher restarted on the indexed tree (nothing to encode): {rss / 2**20:.0f} MB resident, {peak / 2**20:.0f} MB at its peak"
        )
    finally:
        restarted.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=7, help="1-page PDFs written")
    parser.add_argument("--large-trials", type=int, default=3, help="large PDFs written")
    parser.add_argument("--large-pages", type=int, default=300)
    parser.add_argument("--files", type=int, default=10_000, help="files in the tree the idle watcher watches")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds the idle watcher is measured")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the test suite's run)")
    args = parser.parse_args()
    if args.smoke:
        args.trials, args.large_trials, args.large_pages, args.files, args.idle = 2, 1, 5, 60, 2.0
    print(machine())
    with tempfile.TemporaryDirectory(prefix="smart-watch-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "fresh").mkdir()
        freshness(tmp / "fresh", tmp / "fresh-store", args.trials, args.large_trials, args.large_pages)
        (tmp / "tree").mkdir()
        idle_cost(tmp / "tree", tmp / "tree-store", args.files, args.idle)
    print(machine())


if __name__ == "__main__":
    main()
