"""Pages/s of indexing beside the raw forward-pass throughput of the same model on the same texts.

    python benchmarks/index_throughput.py --corpus DIR [--format binary] [--smoke]

Both are measured in this run with one loaded model:
- raw: the page texts (extracted beforehand, untimed) encoded in batches of the indexer's size;
- index: planning (walk, hash), PDF text extraction, encoding, segment writing and catalog
  commits into a fresh store — everything `smart index` does after loading the model.
- raw ONNX Runtime: the same texts through the ONNX export of the same model (onnx_text.py,
  on all CPUs), the fastest raw forward pass available here besides torch eager.
The figures it is judged by are index pages/s divided by torch's raw pages/s (aim: at least
0.9) and by the fastest raw pages/s (issue 12: at least 1.0; `smart index` runs torch).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smartcli.ingest.discovery import discover, read_document
from smartcli.models.registry import load_encoder
from smartcli.ingest.indexer import DEFAULT_BATCH_PAGES, Indexer
from smartcli.ingest.planning import plan_changes
from smartcli.store.catalog import Store, writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(Path(__file__).resolve().parent.parent / "sample_corpus"))
    parser.add_argument("--format", default="binary")
    parser.add_argument("--smoke", action="store_true", help="the sample corpus, to check the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.corpus = str(Path(__file__).resolve().parent.parent / "sample_corpus")
    encoder = load_encoder("default", "cpu")
    files, _ = discover([args.corpus])
    texts = [p.text for f in files if f.kind == "pdf" for p in read_document(f).pages if p.text]
    encoder.encode_documents(texts[:4])  # warm up

    start = time.perf_counter()
    for i in range(0, len(texts), DEFAULT_BATCH_PAGES):
        encoder.encode_documents(texts[i : i + DEFAULT_BATCH_PAGES])
    raw = len(texts) / (time.perf_counter() - start)

    from smartcli.models.base import default_model_path
    from smartcli.models.onnx_text import OnnxTextQueryEncoder, load_onnx_query_encoder

    onnx_raw = None
    ready, reason = load_onnx_query_encoder(default_model_path(), "default", "default")  # exports once if needed
    if ready is not None:
        from smartcli.models.onnx_text import exported_model_path

        onnx = OnnxTextQueryEncoder(default_model_path(), exported_model_path(encoder.info.fingerprint), "default", "default", threads=os.cpu_count())
        onnx.encode_documents(texts[:4])
        start = time.perf_counter()
        for i in range(0, len(texts), DEFAULT_BATCH_PAGES):
            onnx.encode_documents(texts[i : i + DEFAULT_BATCH_PAGES])
        onnx_raw = len(texts) / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open_for_writing(Path(tmp) / "store")
        writes.bind_model(store, encoder.info, args.format)
        start = time.perf_counter()
        plan, hashes = plan_changes(store, [args.corpus])
        summary = Indexer(store, encoder).run(plan, hashes)
        seconds = time.perf_counter() - start
        store.close()
    indexed = summary.pages_encoded / seconds
    print(f"{len(texts)} text pages in {len(files)} files; token format {args.format}")
    print(f"raw forward passes: {raw:7.2f} pages/s")
    if onnx_raw is not None:
        print(f"raw ONNX Runtime:   {onnx_raw:7.2f} pages/s   ({onnx_raw / raw:.2f}x torch eager)")
    else:
        print(f"raw ONNX Runtime:   not available ({reason})")
    print(f"smart index:        {indexed:7.2f} pages/s   ratio {indexed / raw:.2f} (aim: at least 0.9)")
    fastest = max(raw, onnx_raw or 0.0)
    print(f"smart index / fastest raw forward pass: {indexed / fastest:.2f} (issue 12 target: at least 1.0)")


if __name__ == "__main__":
    main()
