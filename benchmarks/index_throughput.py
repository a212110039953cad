"""Pages/s of indexing beside the raw forward-pass throughput of the same model on the same texts.

    python benchmarks/index_throughput.py [--corpus DIR] [--format binary] [--smoke]

All are measured in this run with one loaded model, each as wall clock and as this process's CPU
seconds per page (the reader's worker processes are counted apart):
- raw: the page texts (extracted beforehand, untimed) encoded in batches of the indexer's size;
- index: planning (walk, hash), PDF text extraction, encoding, segment writing and catalog
  commits into a fresh store — everything `smart index` does after loading the model;
- raw ONNX Runtime: the same texts through the ONNX export of the same model (onnx_text.py,
  on all CPUs), the fastest raw forward pass available here besides torch eager.
The figures it is judged by are index pages/s divided by torch's raw pages/s (aim: at least
0.9) and by the fastest raw pages/s (issue 12: at least 1.0; `smart index` runs torch).
Default corpus: sample_corpus/ (--smoke: that, with the ONNX pass left out).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _stores import SAMPLE_CORPUS, children_cpu, clock, machine

from smartcli.ingest.discovery import discover, read_document
from smartcli.ingest.indexer import DEFAULT_BATCH_PAGES, Indexer
from smartcli.ingest.planning import plan_changes
from smartcli.models.registry import load_encoder
from smartcli.store.catalog import Store, writes


def encode_all(encoder, texts: list[str]):
    """Wall and CPU seconds of encoding ``texts`` in the indexer's batches (after a warm-up)."""
    encoder.encode_documents(texts[:4])
    with clock() as timing:
        for i in range(0, len(texts), DEFAULT_BATCH_PAGES):
            encoder.encode_documents(texts[i : i + DEFAULT_BATCH_PAGES])
    return timing


def onnx_encoder(encoder):
    """The ONNX Runtime encoder of the default model on all CPUs, or the reason there is none."""
    from smartcli.models.base import default_model_path
    from smartcli.models.onnx_text import OnnxTextQueryEncoder, exported_model_path, load_onnx_query_encoder

    ready, reason = load_onnx_query_encoder(default_model_path(), "default", "default")  # exports once if needed
    if ready is None:
        return None, reason
    path = exported_model_path(encoder.info.fingerprint)
    return OnnxTextQueryEncoder(default_model_path(), path, "default", "default", threads=os.cpu_count()), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(SAMPLE_CORPUS), help="folder of PDFs (default: sample_corpus/)")
    parser.add_argument("--format", default="binary", help="token format of the store (binary, int8, float16)")
    parser.add_argument("--smoke", action="store_true", help="sample_corpus/, torch only (no ONNX pass)")
    args = parser.parse_args()
    if args.smoke:
        args.corpus = str(SAMPLE_CORPUS)
    encoder = load_encoder("default", "cpu")
    files, _ = discover([args.corpus])
    texts = [p.text for f in files if f.kind == "pdf" for p in read_document(f).pages if p.text]
    raw = encode_all(encoder, texts)
    onnx, reason = (None, "left out by --smoke") if args.smoke else onnx_encoder(encoder)
    onnx_raw = encode_all(onnx, texts) if onnx is not None else None

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open_for_writing(Path(tmp) / "store")
        writes.bind_model(store, encoder.info, args.format)
        readers = children_cpu()
        with clock() as indexed:
            plan, hashes = plan_changes(store, [args.corpus])
            summary = Indexer(store, encoder).run(plan, hashes)
        readers = children_cpu() - readers
        store.close()
    pages = summary.pages_encoded
    print(f"{len(texts)} text pages in {len(files)} files; token format {args.format}; {machine()}")
    print(f"{'':20} {'wall':>13}   {'CPU (this process)':>22}")
    print(f"{'raw forward passes':20} {len(texts) / raw.wall:7.2f} pages/s   {raw.cpu / len(texts) * 1000:7.1f} ms CPU a page")
    if onnx_raw is not None:
        print(
            f"{'raw ONNX Runtime':20} {len(texts) / onnx_raw.wall:7.2f} pages/s   {onnx_raw.cpu / len(texts) * 1000:7.1f} ms CPU a page"
            f"   ({raw.wall / onnx_raw.wall:.2f}x torch eager's pages/s)"
        )
    else:
        print(f"{'raw ONNX Runtime':20} not measured ({reason})")
    print(
        f"{'smart index':20} {pages / indexed.wall:7.2f} pages/s   {indexed.cpu / pages * 1000:7.1f} ms CPU a page"
        f" (+ {readers / pages * 1000:.1f} ms in reader processes)"
    )
    raw_rate, index_rate = len(texts) / raw.wall, pages / indexed.wall
    print(
        f"ratio smart index / raw forward passes: {index_rate / raw_rate:.2f} in pages/s (aim: at least 0.9); "
        f"CPU a page {indexed.cpu / pages / (raw.cpu / len(texts)):.2f}x the raw pass's"
    )
    fastest = max(raw_rate, len(texts) / onnx_raw.wall if onnx_raw is not None else 0.0)
    print(f"ratio smart index / fastest raw forward pass: {index_rate / fastest:.2f} in pages/s (issue 12 target: at least 1.0)")


if __name__ == "__main__":
    main()
