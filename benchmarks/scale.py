"""Every target of issue 24 ("A million pages on a laptop") in one run, met or not.

    python benchmarks/scale.py --dev-store DEV --queries dev_queries.jsonl --synthetic DIR \\
        [--pages 10000,100000] [--source STORE ...] [--mode mix|copies] [--real-store STORE] [--truth-queries 20]
    python benchmarks/scale.py --smoke

- Synthetic stores of ``--pages`` pages (benchmarks/synthetic_store.py; built under
  ``--synthetic`` when missing): ``--mode mix`` (the default; ``mix<N>``) pages that each mix runs
  of 2-4 real pages of the ``--source`` stores (the development store when none is given; give a
  real store of thousands of pages too, or large stores repeat pairs of source pages), so every
  page has content of its own; ``--mode copies`` (``s<N>``) the development store's pages
  replicated with flipped bits (N / 317 near-copies of each). Each is measured in a fresh process: the warm two-stage search without the query encoding, CPU per
  query on one thread (median, p90) with the wall time beside it; the overlap of its top 10 with
  the exhaustive SMART top 10 (every page scored, on the first ``--truth-queries`` queries) and
  the share of queries whose top 10 is the exhaustive one; the process's resident memory: private
  (anonymous) beside what the OS maps from the store's files (page cache, shared); store KB a page.
- The development store: search without and with the query encoding, the snippets, highlights
  and token matches (`--explain`) of the k shown hits (timed inside the searches with encoding,
  as they explain their hits), the query encoding alone, its nDCG@10 on the judged queries, its
  KB a page.
- ``--real-store``: the first stage's recall of the exhaustive top 10 on real pages
  (benchmarks/first_stage.py, run as it is).

The 1,000,000-page run is opt-in (about 40 GB of disk and 20 minutes to build on 2 cores, one
file of pages in memory at a time; exhaustive truth takes minutes a query, so give
``--truth-queries 5``)::

    df -h /tmp    # about 40 GB free where the stores go
    python benchmarks/scale.py --dev-store DEV --queries dev_queries.jsonl \\
        --synthetic /tmp/synth --pages 1000000 --truth-queries 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _stores import clock, machine, read_queries, sample_queries, sample_store

from smartcli import defaults
from smartcli.search.scoring import Weights

HERE = Path(__file__).resolve().parent
TARGETS = {
    100_000: ("search without encode", 25.0),
    1_000_000: ("search without encode", 200.0),
}
MEMORY_TARGET_MB = 1024  # private resident memory of the warm process, beyond what the OS maps (issue 24)


def ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000, q))


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def memory_mb() -> dict:
    """This process's resident memory, from /proc: private (anonymous) and mapped from files."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def store_kb_per_page(root: Path, pages: int) -> tuple[float, float]:
    """(whole store, segments alone) in KB a page."""
    whole = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    segments = sum(p.stat().st_size for p in (root / "segments").rglob("*.h5"))
    return whole / max(pages, 1) / 1024, segments / max(pages, 1) / 1024


def timed_queries(fn, queries: list, rounds: int = 2) -> tuple[list, list[float], list[float]]:
    """``fn(query)`` per query, ``rounds`` times (the first maps segments, checks rows' CRCs and
    compiles); the last round's results, CPU and wall seconds."""
    for _ in range(rounds):
        results, cpu, wall = [], [], []
        for query in queries:
            with clock() as timing:
                results.append(fn(query))
            cpu.append(timing.cpu)
            wall.append(timing.wall)
    return results, cpu, wall


# -- one synthetic store, in its own process -------------------------------------------------


def measure_store(store_path: str, queries_path: str, truth_queries: int, copies: bool) -> dict:
    from smartcli.models.registry import load_query_encoder
    from smartcli.search.searcher import Searcher, shortlist_size
    from smartcli.store.catalog import Store

    store = Store.open(store_path)
    encoder = load_query_encoder(store.model.spec, "cpu")
    texts = [q["query"] for q in read_queries(queries_path)]
    encoded = encoder.encode_queries(texts)
    before = memory_mb()
    weights = Weights(defaults.LAMBDA_ANCHOR, defaults.LAMBDA_LATE)
    with clock() as loading:
        searcher = Searcher(store, None, device="cpu", cache_bytes=defaults.WARM_CACHE_BYTES, shortlist=defaults.CANDIDATES)
    pages = len(searcher)

    split = []  # per query: (user, system) CPU seconds, and the page faults (major, minor)

    def two_stage(query):
        before = resource.getrusage(resource.RUSAGE_SELF)
        (hits,) = searcher.search_encoded([query], weights, 10, snippets=False)
        after = resource.getrusage(resource.RUSAGE_SELF)
        split.append(
            (
                after.ru_utime - before.ru_utime,
                after.ru_stime - before.ru_stime,
                after.ru_majflt - before.ru_majflt,
                after.ru_minflt - before.ru_minflt,
            )
        )
        return hits

    got, cpu, wall = timed_queries(two_stage, encoded)
    user, system, major, minor = np.array(split[-len(encoded) :]).T if encoded else np.zeros((4, 0))
    after = memory_mb()
    exhaustive = Searcher(store, None, device="cpu", cache_bytes=defaults.WARM_CACHE_BYTES, shortlist=None)
    truth, truth_cpu = [], []
    for query in encoded[:truth_queries]:
        with clock() as timing:
            (hits,) = exhaustive.search_encoded([query], weights, 10, snippets=False)
        truth.append(hits)
        truth_cpu.append(timing.cpu)
    pairs = [({h.item.item_id for h in a}, {h.item.item_id for h in b}) for a, b in zip(got, truth)]
    # Copies: a synthetic page is a perturbed copy of a real one (the same text): the share of
    # the two-stage hits whose real page is among the exhaustive hits' real pages, and how far
    # the two-stage 10th score falls below the exhaustive 10th.
    same_content = [len([h for h in a if h.item.text in {t.item.text for t in b}]) / max(len(a), 1) for a, b in zip(got, truth)]
    same_content = same_content if copies else []
    shortfall = [b[-1].score - a[-1].score for a, b in zip(got, truth) if a and b]
    whole, segments = store_kb_per_page(Path(store_path), pages)
    return {
        "pages": pages,
        "queries": len(encoded),
        "shortlist": shortlist_size(defaults.CANDIDATES, pages),
        "cpu_median": ms(cpu, 50),
        "cpu_p90": ms(cpu, 90),
        "wall_median": ms(wall, 50),
        "wall_p90": ms(wall, 90),
        "user_median": ms(list(user), 50),
        "system_median": ms(list(system), 50),
        "major_faults_median": float(np.median(major)) if len(major) else 0.0,
        "minor_faults_median": float(np.median(minor)) if len(minor) else 0.0,
        "overlap": float(np.mean([len(a & b) / max(len(b), 1) for a, b in pairs])) if pairs else None,
        "equal": float(np.mean([a == b for a, b in pairs])) if pairs else None,
        "truth_queries": len(pairs),
        "same_content": float(np.mean(same_content)) if same_content else None,
        "shortfall_median": float(np.median(shortfall)) if shortfall else None,
        "copies_in_truth": float(np.mean([len(b) - len({t.item.text for t in b}) for b in truth])) if truth else None,
        "exhaustive_cpu_median": ms(truth_cpu, 50) if truth_cpu else None,
        "rss_anon_mb": after.get("RssAnon"),
        "rss_file_mb": after.get("RssFile"),
        "rss_anon_before_store_mb": before.get("RssAnon"),
        "pooled_held_mb": searcher.pooled.nbytes / 2**20,
        "pooled_in_place": searcher.pooled.in_place,
        "load_wall_s": loading.wall,
        "load_cpu_s": loading.cpu,
        "kb_per_page": whole,
        "segment_kb_per_page": segments,
    }


def synthetic_row(store: Path, pages: int, args) -> dict:
    """Build the store if missing, then measure it in a fresh process (its memory is its own)."""
    if not (store / "catalog.sqlite").exists():
        sources = args.source if args.mode == "mix" and args.source else [args.dev_store]
        print(f"building {store} ({pages} pages, {args.mode}) from {', '.join(map(str, sources))} …", file=sys.stderr, flush=True)
        subprocess.run(
            [sys.executable, str(HERE / "synthetic_store.py"), "--mode", args.mode, "--pages", str(pages), "--out", str(store)]
            + [a for source in sources for a in ("--source", str(source))]
            + (["--per-file", "50"] if args.smoke else []),
            check=True,
            stdout=sys.stderr,
        )
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure-store",
            str(store),
            "--queries",
            str(args.queries),
            "--truth-queries",
            str(args.truth_queries),
        ]
        + (["--mode", "copies"] if args.mode == "copies" else []),
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_synthetic(row: dict, mode: str) -> None:
    pages = row["pages"]
    target = TARGETS.get(pages)
    judged = f"target <= {target[1]:.0f} ms: {verdict(row['cpu_median'] <= target[1])}" if target else "no target at this size"
    print(
        f"synthetic store, {pages:,} pages, {mode} ({row['queries']} queries; {row['kb_per_page']:.1f} KB a page, segments {row['segment_kb_per_page']:.1f})"
    )
    print(
        f"  two-stage search without encode (shortlist K={row['shortlist']}, {defaults.RESCORED} scored exactly): CPU median {row['cpu_median']:.1f} ms, p90 {row['cpu_p90']:.1f} "
        f"(wall median {row['wall_median']:.1f}, p90 {row['wall_p90']:.1f})   {judged}"
    )
    print(
        f"    of the CPU: user {row['user_median']:.1f} ms, system {row['system_median']:.1f} (medians; the system part is page faults: "
        f"{row['major_faults_median']:.0f} major, {row['minor_faults_median']:.0f} minor a query, where the segments are not resident)"
    )
    if row["overlap"] is not None:
        print(
            f"  top 10 vs exhaustive SMART ({row['truth_queries']} queries, exhaustive CPU median {row['exhaustive_cpu_median']:.0f} ms): "
            f"overlap {row['overlap']:.3f}, equal on {row['equal']:.0%} of queries   target equal >= 95%: {verdict(row['equal'] >= 0.95)}"
        )
    if row["same_content"] is not None:
        print(
            f"    same real page (a copy of an exhaustive hit's text): {row['same_content']:.3f}; exhaustive top 10 holds "
            f"{row['copies_in_truth']:.1f} copies of pages already in it; 10th score below the exhaustive 10th by {row['shortfall_median']:.4f} (median)"
        )
    grew = row["rss_anon_mb"] - row["rss_anon_before_store_mb"]
    print(
        f"  resident memory: private {row['rss_anon_mb']:.0f} MB ({grew:+.0f} MB for the store), mapped from files {row['rss_file_mb']:.0f} MB"
        f"   target private <= {MEMORY_TARGET_MB} MB: {verdict(row['rss_anon_mb'] <= MEMORY_TARGET_MB)}"
    )
    where = "read in place from the segment files, an int8 copy held" if row["pooled_in_place"] else "held in the process"
    print(
        f"  pooled vectors: {where} ({row['pooled_held_mb']:.0f} MB held); snapshot loaded in {row['load_wall_s']:.1f} s wall, {row['load_cpu_s']:.1f} s CPU"
    )


# -- the development store -------------------------------------------------------------------


def ndcg_at_10(hits, relevant: list[dict]) -> float:
    wanted = {(Path(r["file"]).name, int(r["page"])) for r in relevant}
    seen, dcg = set(), 0.0
    for rank, hit in enumerate(hits[:10], start=1):
        key = (Path(hit.path).name, hit.page)
        if key in wanted and key not in seen:
            dcg += 1 / math.log2(rank + 1)
        seen.add(key)
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(wanted), 10) + 1))
    return dcg / ideal if ideal else 0.0


def development(args) -> None:
    from smartcli.models.registry import load_query_encoder
    from smartcli.search.queries import prepare_query
    from smartcli.search.searcher import Searcher
    from smartcli.store.catalog import Store

    store = Store.open(args.dev_store)
    encoder = load_query_encoder(store.model.spec, "cpu")
    judged = read_queries(args.queries)
    texts = [prepare_query(q["query"]) for q in judged]
    weights = Weights(defaults.LAMBDA_ANCHOR, defaults.LAMBDA_LATE)
    searcher = Searcher(store, encoder, device="cpu", cache_bytes=defaults.WARM_CACHE_BYTES, shortlist=defaults.CANDIDATES)
    encoded = encoder.encode_queries(texts)
    pages = len(searcher)

    def bare(query):
        (hits,) = searcher.search_encoded([query], weights, 10, snippets=False)
        return hits

    def with_encode(text):
        (hits,) = searcher.search_encoded(encoder.encode_queries([text]), weights, 10, texts=[text])
        return hits

    hits, cpu, wall = timed_queries(bare, encoded)
    _, encode_cpu, encode_wall = timed_queries(lambda text: encoder.encode_queries([text]), texts)
    # The shown hits' snippets, highlights and token matches, timed inside the searches with
    # encode as they explain their hits (the kernel's matches given, one BLAS thread).
    explain_cpu, explain_wall = [], []
    explain = searcher.explain

    def timed_explain(*args, **kwargs):
        with clock() as timing:
            explained = explain(*args, **kwargs)
        explain_cpu.append(timing.cpu)
        explain_wall.append(timing.wall)
        return explained

    searcher.explain = timed_explain
    full, cpu_full, wall_full = timed_queries(with_encode, texts)
    del searcher.explain
    explain_cpu, explain_wall = explain_cpu[-len(texts) :], explain_wall[-len(texts) :]  # the last round's
    ndcg = float(np.mean([ndcg_at_10(h, q.get("relevant", [])) for h, q in zip(full, judged)]))
    whole, segments = store_kb_per_page(Path(args.dev_store), pages)
    print(f"development store, {pages} pages ({len(texts)} judged queries; {whole:.1f} KB a page, segments {segments:.1f})")
    for label, c, w, target in (
        ("search without encode", cpu, wall, 10.0),
        ("search with encode (snippets)", cpu_full, wall_full, 20.0),
        ("snippets + explain, k shown hits", explain_cpu, explain_wall, 2.0),
        ("(the query encode alone)", encode_cpu, encode_wall, None),
    ):
        judged = f"   target <= {target:g} ms: {verdict(ms(c, 50) <= target)}" if target else ""
        print(
            f"  {label:34} CPU median {ms(c, 50):6.1f} ms, p90 {ms(c, 90):6.1f} (wall median {ms(w, 50):6.1f}, p90 {ms(w, 90):6.1f})"
            + judged
        )
    print(f"  nDCG@10 {ndcg:.3f} (default before issue 24: 0.914)")
    print(f"  store {whole:.1f} KB a page   target <= 24 KB: {verdict(whole <= 24)}")
    store.close()


def real_recall(args) -> None:
    print(f"first stage on real pages ({args.real_store}), benchmarks/first_stage.py:", flush=True)
    subprocess.run(
        [sys.executable, str(HERE / "first_stage.py"), "--store", str(args.real_store), "--queries", str(args.queries)]
        + ["--ks", str(defaults.CANDIDATES), "--weights", "0,2"]
        + (["--pseudo", "2"] if args.smoke else []),
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-store", help="the development store (1-bit token states)")
    parser.add_argument("--queries", help="judged queries, JSON lines (the development set's)")
    parser.add_argument("--synthetic", help="where the synthetic stores are (built when missing)")
    parser.add_argument("--pages", default="10000,100000", help="synthetic store sizes, comma-separated")
    parser.add_argument("--mode", choices=("mix", "copies"), default="mix", help="synthetic pages mixing real pages, or near-copies")
    parser.add_argument("--source", action="append", default=[], help="a real store whose pages --mode mix mixes (repeatable)")
    parser.add_argument("--truth-queries", type=int, default=20, help="queries whose exhaustive top 10 is computed")
    parser.add_argument("--real-store", help="a real store of >= 10,000 pages for the first stage's recall")
    parser.add_argument("--smoke", action="store_true", help="sample_corpus/, 200 synthetic pages")
    parser.add_argument("--measure-store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_store:
        print(json.dumps(measure_store(args.measure_store, args.queries, args.truth_queries, args.mode == "copies")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.smoke:
            args.dev_store = args.real_store = sample_store(Path(tmp))
            args.queries = sample_queries(Path(tmp))
            args.synthetic, args.pages, args.truth_queries = Path(tmp), "200", 5
        if not (args.dev_store and args.queries):
            parser.error("give --dev-store and --queries, or --smoke")
        print(f"issue 24 targets; {machine()}; one thread per query (CPU time), pid {os.getpid()}", flush=True)
        development(args)
        for pages in [int(p) for p in args.pages.split(",") if p] if args.synthetic else []:
            name = f"mix{pages}" if args.mode == "mix" else f"s{pages}"
            print_synthetic(synthetic_row(Path(args.synthetic) / name, pages, args), args.mode)
            sys.stdout.flush()
        if args.real_store:
            real_recall(args)
        print(f"load average at the end: {machine()}")


if __name__ == "__main__":
    main()
