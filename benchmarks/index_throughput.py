"""Pages/s of indexing beside the raw forward-pass throughput of the same model on the same texts.

    python benchmarks/index_throughput.py --corpus DIR [--format binary] [--smoke]

Both are measured in this run with one loaded model:
- raw: the page texts (extracted beforehand, untimed) encoded in batches of the indexer's size;
- index: planning (walk, hash), PDF text extraction, encoding, segment writing and catalog
  commits into a fresh store — everything `smart index` does after loading the model.
The figure it is judged by is index pages/s divided by raw pages/s (aim: at least 0.9).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from smartcli.ingest.discovery import discover, read_document
from smartcli.models.registry import load_encoder
from smartcli.ingest.indexer import DEFAULT_BATCH_PAGES, Indexer
from smartcli.ingest.planning import plan_changes
from smartcli.store.catalog import Store


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

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open_for_writing(Path(tmp) / "store")
        store.bind_model(encoder.info, args.format)
        start = time.perf_counter()
        plan, hashes = plan_changes(store, [args.corpus])
        summary = Indexer(store, encoder).run(plan, hashes)
        seconds = time.perf_counter() - start
        store.close()
    indexed = summary.pages_encoded / seconds
    print(f"{len(texts)} text pages in {len(files)} files; token format {args.format}")
    print(f"raw forward passes: {raw:7.2f} pages/s")
    print(f"smart index:        {indexed:7.2f} pages/s   ratio {indexed / raw:.2f} (aim: at least 0.9)")


if __name__ == "__main__":
    main()
