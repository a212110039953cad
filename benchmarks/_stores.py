"""What the product benchmarks share: CPU time beside wall time, the machine's load, queries, and a
store of sample_corpus/ for smoke runs.

The benchmarks run as scripts (``python benchmarks/NAME.py``), so this folder is on their path
and ``from _stores import ...`` finds this module. On a shared machine the wall clock says as much
about the neighbours as about the code; the CPU seconds of the work (``time.process_time`` of the
process doing it) are printed beside it.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = ROOT / "sample_corpus"
# Judged queries of sample_corpus/ for smoke runs (the files as `smart eval` matches them).
SAMPLE_JUDGED = [
    {
        "qid": "s1",
        "query": "how do I change the default terminal",
        "relevant": [{"file": "terminal-guide.pdf", "page": 1}],
        "kind": "paraphrase",
    },
    {"qid": "s2", "query": "wifi channel interference", "relevant": [{"file": "home-network.pdf", "page": 2}], "kind": "keyword"},
    {"qid": "s3", "query": "what temperature is the loaf baked at", "relevant": [{"file": "sourdough.pdf", "page": 2}], "kind": "question"},
    {
        "qid": "s4",
        "query": "looking after plants",
        "relevant": [{"file": "houseplants.pdf", "page": 1}, {"file": "houseplants.pdf", "page": 2}],
    },
    {"qid": "s5", "query": "bike chain oil", "relevant": [{"file": "hobbies/bicycle-maintenance.pdf", "page": 2}], "kind": "keyword"},
]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's smartcli, also when run as a script


@dataclass
class Timing:
    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def clock():
    """Wall seconds and this process's CPU seconds (all its threads) spent in the block."""
    timing = Timing()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.wall, timing.cpu = time.perf_counter() - wall, time.process_time() - cpu


def timed(fn):
    """``fn()``'s value, wall seconds and CPU seconds."""
    with clock() as timing:
        value = fn()
    return value, timing.wall, timing.cpu


def children_cpu() -> float:
    """CPU seconds of this process's finished (waited for) child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float | None:
    """CPU seconds another running process has used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def machine() -> str:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}"


def spread(seconds: list[float]) -> str:
    """Median and p90 of ``seconds``, in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    return f"median {statistics.median(ms):8.1f} ms  p90 {ms[int(0.9 * (len(ms) - 1))]:8.1f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "n/a"


def read_queries(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """Queries of a file of JSON lines (``{"query": ..., "relevant": [...]}``) or plain lines."""
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = [json.loads(line) if line.startswith("{") else {"query": line} for line in lines]
    return queries[:limit] if limit else queries


def sample_queries(folder: Path) -> Path:
    """:data:`SAMPLE_JUDGED` written as a file of JSON lines under ``folder``."""
    path = folder / "sample-queries.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in SAMPLE_JUDGED), encoding="utf-8")
    return path


def sample_store(folder: Path) -> Path:
    """sample_corpus/ indexed (text layers only, no OCR) into a new store under ``folder``."""
    from smartcli import Index

    store = folder / "sample-store"
    print(f"indexing sample_corpus/ into {store} …", file=sys.stderr)
    with Index.open(store, create=True) as index:
        index.update([SAMPLE_CORPUS], ocr="never")
    return store
