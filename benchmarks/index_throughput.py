"""Indexing throughput of each way to run a text model on the CPU, side by side, and what int8 costs in quality.

    python benchmarks/index_throughput.py --corpus DIR [--queries JUDGED.jsonl] [--format binary]
    python benchmarks/index_throughput.py --smoke

Measured in this run, each as wall clock and as this process's CPU seconds per page (the
reader's worker processes are counted apart):

- raw forward passes over the corpus's page texts (extracted beforehand, untimed), in the
  indexer's batches: torch eager (``--precision fp32``), ONNX Runtime on the float32 export, and
  ONNX Runtime on the int8 export (``--precision int8``), each beside torch's pages/s and CPU;
- how far the int8 states are from torch's (token and pooled cosines, every page);
- padding: windows batched longest first (what the encoders do) against batched in text
  order — padded share of the tokens run, and torch's CPU for each;
- ``smart index`` into a fresh store (planning, reading, encoding, writing, committing) with
  fp32 and with int8, and its ratio to the raw passes;
- with ``--queries``: nDCG@10 (and MRR@10) of the default search on both stores, the int8
  store's queries encoded in float32 (what ``smart search`` does) and in int8, the deltas, and
  the share of the fp32 store's top 10 the int8 store keeps (steadier than nDCG on few queries).

ONNX Runtime runs on ``$OMP_NUM_THREADS`` threads when set, else one per core, as indexing does.
``--smoke``: sample_corpus/ and its five judged queries.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _stores import SAMPLE_CORPUS, children_cpu, clock, machine, sample_queries

from smartcli.ingest.discovery import discover, read_document
from smartcli.ingest.indexer import DEFAULT_BATCH_PAGES, Indexer
from smartcli.ingest.planning import plan_changes
from smartcli.models.base import FP32, INT8, default_model_path
from smartcli.models.onnx_text import document_threads, load_onnx_encoder
from smartcli.models.registry import load_encoder, load_query_encoder
from smartcli.models.text import window_order
from smartcli.search.evaluate import configs_to_run, evaluate, load_judgments
from smartcli.search.queries import prepare_query
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store, writes


def encode_all(encoder, texts: list[str], sort_by_length: bool = True):
    """Encodings of ``texts`` in the indexer's slices, with the wall and CPU seconds they took (after a warm-up)."""
    encoder.encode_documents(texts[:4])
    out = []
    with clock() as timing:
        for i in range(0, len(texts), DEFAULT_BATCH_PAGES):
            out += encoder.encode_documents(texts[i : i + DEFAULT_BATCH_PAGES], sort_by_length=sort_by_length)
    return out, timing


def padding_share(encoder, texts: list[str], batch_size: int, sort_by_length: bool) -> float:
    """Share of the token positions run that are padding, windows batched as the encoders batch them."""
    run = real = 0
    for i in range(0, len(texts), DEFAULT_BATCH_PAGES):
        counts = [len(ids) for ids in encoder.tokenizer(texts[i : i + DEFAULT_BATCH_PAGES], add_special_tokens=False)["input_ids"]]
        windows = [min(encoder.window, n - s) for n in counts for s in range(0, n, encoder.window)]
        order = window_order(windows, sort_by_length)
        for b in range(0, len(order), batch_size):
            batch = [windows[w] for w in order[b : b + batch_size]]
            run += max(batch) * len(batch)
            real += sum(batch)
    return 1 - real / run


def cosines(fast: list, slow: list) -> tuple[np.ndarray, np.ndarray]:
    tokens = np.concatenate([np.sum(a.tokens * b.tokens, axis=1) for a, b in zip(fast, slow)])
    pooled = np.array([float(a.pooled @ b.pooled) for a, b in zip(fast, slow)])
    return tokens, pooled


def index_into(folder: Path, corpus: str, encoder, token_format: str):
    """A fresh store of ``corpus`` built with ``encoder``: (store path, pages, wall/CPU timing, reader CPU)."""
    root = folder / f"store-{encoder.info.extra.get('precision', FP32)}"
    store = Store.open_for_writing(root)
    writes.bind_model(store, encoder.info, token_format)
    readers = children_cpu()
    with clock() as timing:
        plan, hashes = plan_changes(store, [corpus])
        summary = Indexer(store, encoder).run(plan, hashes)
    store.close()
    return root, summary.pages_encoded, timing, children_cpu() - readers


def quality(root: Path, judged, query_encoder):
    """nDCG@10, MRR@10 and each query's top 10 of the default search (two-stage) on the store at ``root``."""
    with Store.open(root) as store, store.read_snapshot():
        searcher = Searcher(store, query_encoder, device="cpu")
        run = evaluate(searcher, judged, configs_to_run(), 10, encoder=query_encoder).runs[2][1]
        encoded = query_encoder.encode_queries([prepare_query(q.query) for q in judged])
        hits = searcher.rank(encoded, searcher.score(encoded, Weights()), Weights(), 10, snippets=False)
    return run.mean("ndcg"), run.mean("rr"), [{(h.item.path, h.item.page) for h in query} for query in hits]


def overlap(tops: list[set], reference: list[set]) -> float:
    return float(np.mean([len(a & b) / max(1, len(b)) for a, b in zip(tops, reference)]))


def rate_line(label: str, pages: int, timing, torch_timing=None) -> str:
    line = f"{label:28} {pages / timing.wall:7.2f} pages/s   {timing.cpu / pages * 1000:7.1f} ms CPU a page"
    if torch_timing is not None:
        line += f"   {torch_timing.wall / timing.wall:5.2f}x torch's pages/s, {torch_timing.cpu / timing.cpu:5.2f}x its pages a CPU second"
    return line


def index_tail(pages: int, readers: float, timing, texts: int, raw) -> str:
    return f" (+ {readers / pages * 1000:.1f} ms in reader processes); {pages / timing.wall / (texts / raw.wall):.2f} of its raw pass's pages/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(SAMPLE_CORPUS), help="folder of PDFs (default: sample_corpus/)")
    parser.add_argument("--queries", help="judged queries of the corpus (JSON lines, as `smart eval` reads them)")
    parser.add_argument("--format", default="binary", help="token format of the stores (binary, int8, float16)")
    parser.add_argument("--smoke", action="store_true", help="sample_corpus/ and its judged queries")
    args = parser.parse_args()
    work = tempfile.TemporaryDirectory()
    if args.smoke:
        args.corpus, args.queries = str(SAMPLE_CORPUS), str(sample_queries(Path(work.name)))

    torch_encoder = load_encoder("default", "cpu")
    fp32, reason = load_onnx_encoder(default_model_path(), "default", torch_encoder.info.name, FP32, document_threads())
    int8 = load_encoder("default", "cpu", {"precision": INT8})
    files, _ = discover([args.corpus])
    texts = [p.text for f in files if f.kind == "pdf" for p in read_document(f).pages if p.text]
    print(f"{len(texts)} text pages in {len(files)} files; token format {args.format}; {machine()}")

    torch_states, torch_raw = encode_all(torch_encoder, texts)
    int8_states, int8_raw = encode_all(int8, texts)
    onnx_raw = encode_all(fp32, texts)[1] if fp32 is not None else None
    in_order = encode_all(torch_encoder, texts, sort_by_length=False)[1]

    print(f"{'':28} {'wall':>13}   {'CPU (this process)':>22}")
    print(rate_line("raw torch (fp32)", len(texts), torch_raw))
    if onnx_raw is not None:
        print(rate_line("raw ONNX Runtime fp32", len(texts), onnx_raw, torch_raw))
    else:
        print(f"{'raw ONNX Runtime fp32':28} not measured ({reason})")
    print(rate_line("raw ONNX Runtime int8", len(texts), int8_raw, torch_raw))
    tokens, pooled = cosines(int8_states, torch_states)
    print(
        f"int8 states against torch's: token cosine mean {tokens.mean():.5f}, 1st percentile {np.percentile(tokens, 1):.5f},"
        f" lowest {tokens.min():.5f}; pooled cosine mean {pooled.mean():.6f}, lowest {pooled.min():.6f} ({len(tokens):,} tokens)"
    )
    batch = torch_encoder.default_batch_size
    print(
        f"padding, batches of {batch} windows: longest first {padding_share(torch_encoder, texts, batch, True):.1%} of the positions run,"
        f" in text order {padding_share(torch_encoder, texts, batch, False):.1%};"
        f" torch CPU a page {torch_raw.cpu / len(texts) * 1000:.1f} ms sorted, {in_order.cpu / len(texts) * 1000:.1f} ms in text order"
        f" ({in_order.cpu / torch_raw.cpu:.2f}x)"
    )

    folder = Path(work.name)
    fp32_store, pages, fp32_index, readers = index_into(folder, args.corpus, torch_encoder, args.format)
    print(rate_line("smart index --precision fp32", pages, fp32_index) + index_tail(pages, readers, fp32_index, len(texts), torch_raw))
    int8_store, pages, int8_index, readers = index_into(folder, args.corpus, int8, args.format)
    print(
        rate_line("smart index --precision int8", pages, int8_index, fp32_index)
        + index_tail(pages, readers, int8_index, len(texts), int8_raw)
    )

    if args.queries:
        judged = load_judgments(args.queries)
        query_fp32 = load_query_encoder("default", "cpu")
        base = quality(fp32_store, judged, query_fp32)
        int8_fp32_queries = quality(int8_store, judged, query_fp32)
        int8_int8_queries = quality(int8_store, judged, int8)
        print(f"quality, {len(judged)} judged queries (smart, two-stage):  nDCG@10   MRR@10   nDCG@10 delta   top-10 kept")
        print(f"  fp32 pages, fp32 queries                        {base[0]:.4f}   {base[1]:.4f}")
        for label, (ndcg, rr, tops) in (
            ("int8 pages, fp32 queries (smart search)", int8_fp32_queries),
            ("int8 pages, int8 queries", int8_int8_queries),
        ):
            print(f"  {label:47} {ndcg:.4f}   {rr:.4f}   {ndcg - base[0]:+.4f}         {overlap(tops, base[2]):.1%}")
    work.cleanup()


if __name__ == "__main__":
    main()
