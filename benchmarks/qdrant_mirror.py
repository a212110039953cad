"""SMART through Qdrant vs the local store, side by side on the same pages.

    python benchmarks/qdrant_mirror.py --store STORE --queries JUDGED.jsonl
    python benchmarks/qdrant_mirror.py --store STORE --queries Q --pool 512 256 128   # token pooling loss
    python benchmarks/qdrant_mirror.py --smoke [--store STORE --queries Q]            # 5 queries; sample_corpus/ by default

Pushes the store into Qdrant's embedded engine (qdrant-client local mode, in --workdir) with
`Index.sync`, then for every judged query compares the top 10 of `Index.search` and
`QdrantIndex.search`: overlap, order and the largest score difference. Prints warm latency and
throughput of both (query encoding included, one query at a time; wall, and CPU seconds of this
process, where the embedded engine runs too) with their ratio, the bytes per page each
vector format holds, and, with --pool, the retrieval quality (MRR@10, nDCG@10, overlap with the
local top 10) when pages are reduced to at most N token states by token pooling.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _stores import clock, machine, read_queries, sample_queries, sample_store

from smartcli import Index, QdrantIndex
from smartcli.search.evaluate import matches


def metrics(hits, judged) -> tuple[float, float]:
    relevant = {(r["file"], r["page"]) for r in judged.get("relevant", [])}
    gains = [1.0 if any(page == h.page and matches(file, h.path) for file, page in relevant) else 0.0 for h in hits[:10]]
    mrr = next((1.0 / (i + 1) for i, g in enumerate(gains) if g), 0.0)
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), 10)))
    return mrr, (dcg / ideal if ideal else 0.0)


def timed(fn, queries):
    """Each query's answer, and the wall and CPU seconds of each."""
    answers, times, cpu = [], [], []
    for q in queries:
        with clock() as timing:
            answers.append(fn(q["query"]))
        times.append(timing.wall)
        cpu.append(timing.cpu)
    return answers, times, cpu


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", help="an indexed store (it records the sync's state in its catalog)")
    ap.add_argument("--queries", help='judged queries, JSON lines with "query" and "relevant"')
    ap.add_argument("--workdir", default=None, help="where the embedded Qdrant keeps its folder (default: a temporary one)")
    ap.add_argument("--pool", type=int, nargs="*", default=[], help="token limits to measure pooling at")
    ap.add_argument("--smoke", action="store_true", help="5 queries, no pooling; without --store and --queries: sample_corpus/")
    ap.add_argument("--fresh", action="store_true", help="start from an empty Qdrant folder (else a finished earlier sync is reused)")
    args = ap.parse_args()
    if not args.smoke and not (args.store and args.queries):
        ap.error("--store and --queries are required (or --smoke)")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="qdrant-bench-"))
    if args.fresh:
        shutil.rmtree(work / "db", ignore_errors=True)
    location = str(work / "db")
    args.store = args.store or sample_store(work)
    judged = read_queries(args.queries or sample_queries(work), 5 if args.smoke else None)

    local = Index.open(args.store, warm=True)
    status = local.status()
    print(
        f"store: {args.store}: {status.encoded_items} pages, {status.tokens} token states, format {status.token_dtype}, model {status.model}; {machine()}"
    )
    start = time.perf_counter()
    summary = local.sync(location, "bench")
    print(
        f"sync into embedded Qdrant: {summary.upserted} points sent ({summary.unchanged} already there) in {time.perf_counter() - start:.1f} s, {summary.reduced} pages pooled"
    )
    remote = QdrantIndex.open(location, "bench")
    local.load()
    remote.load()
    for q in judged[:2]:  # warm both paths
        local.search(q["query"])
        remote.search(q["query"])

    local_hits, local_times, local_cpu = timed(lambda q: local.search(q, k=10), judged)
    remote_hits, remote_times, remote_cpu = timed(lambda q: remote.search(q, k=10), judged)
    overlaps, same_order, worst = [], 0, 0.0
    for a, b in zip(local_hits, remote_hits):
        ka, kb = [(h.path, h.page) for h in a], [(h.path, h.page) for h in b]
        overlaps.append(len(set(ka) & set(kb)) / max(len(ka), 1))
        same_order += ka == kb
        scores = {(h.path, h.page): h.score for h in b}
        worst = max([worst] + [abs(h.score - scores[(h.path, h.page)]) for h in a if (h.path, h.page) in scores])
    print(f"\nagreement on {len(judged)} queries (top 10, smart mode, default weights and candidates):")
    print(
        f"  mean top-10 overlap {statistics.mean(overlaps):.4f}, min {min(overlaps):.2f}; identical ranking for {same_order}/{len(judged)}"
    )
    print(f"  largest |score difference| of a shared hit: {worst:.2e}")
    lm = [metrics(h, q) for h, q in zip(local_hits, judged)]
    rm = [metrics(h, q) for h, q in zip(remote_hits, judged)]
    print(
        f"  MRR@10 local {statistics.mean(m[0] for m in lm):.3f} vs Qdrant {statistics.mean(m[0] for m in rm):.3f}; "
        f"nDCG@10 local {statistics.mean(m[1] for m in lm):.3f} vs Qdrant {statistics.mean(m[1] for m in rm):.3f}"
    )

    def row(name, times, cpu):
        ms = sorted(t * 1000 for t in times)
        p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
        print(
            f"  {name:32} median {statistics.median(ms):7.1f} ms  p90 {p90:7.1f} ms  {len(ms) / sum(times):6.1f} queries/s"
            f"   CPU median {statistics.median(cpu) * 1000:7.1f} ms"
        )

    print("\nwarm latency, one query at a time (encoding included):")
    row("local store", local_times, local_cpu)
    row("Qdrant embedded (local mode)", remote_times, remote_cpu)
    print(
        f"  ratio Qdrant / local (median): {statistics.median(remote_times) / statistics.median(local_times):.2f} wall, "
        f"{statistics.median(remote_cpu) / max(statistics.median(local_cpu), 1e-9):.2f} CPU"
    )

    pages, tokens, dims = status.encoded_items, status.tokens, local.model.dims
    t = tokens / pages
    print(f"\nbytes per page ({t:.0f} token states of {dims} dims on average; vectors only, payload apart):")
    print(f"  local store ({status.token_dtype}), measured: {status.bytes_per_item:,}")
    if summary.upserted == pages:
        print(f"  sent to Qdrant (float16 tokens + float32 anchor), counted by the sync: {summary.bytes_sent / pages:,.0f}")
    print(f"  embedded Qdrant folder, measured (JSON/pickle storage, payload included): {folder_bytes(work / 'db') / pages:,.0f}")
    anchor = 4 * dims
    for fmt, held in (
        ("float32", t * 4 * dims),
        ("float16", t * 2 * dims),
        ("scalar int8 (RAM; float16 originals on disk)", t * dims),
        ("binary (RAM; float16 originals on disk)", t * dims / 8),
    ):
        print(f"  Qdrant server, {fmt}, computed from its format: {held + anchor:,.0f}")
    remote.close()

    for limit in [] if args.smoke else args.pool:
        name = f"pool{limit}"
        s = local.sync(location, name, max_tokens=limit)
        pooled = QdrantIndex.open(location, name)
        hits = [pooled.search(q["query"], k=10) for q in judged]
        over = [len({(h.path, h.page) for h in a} & {(h.path, h.page) for h in b}) / 10 for a, b in zip(local_hits, hits)]
        m = [metrics(h, q) for h, q in zip(hits, judged)]
        print(
            f"\npooled to <= {limit} token states per page ({s.reduced} of {pages} pages reduced): "
            f"top-10 overlap with local {statistics.mean(over):.3f}, MRR@10 {statistics.mean(x[0] for x in m):.3f}, "
            f"nDCG@10 {statistics.mean(x[1] for x in m):.3f}"
        )
        pooled.close()


if __name__ == "__main__":
    main()
