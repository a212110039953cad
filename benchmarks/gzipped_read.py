"""Reading a gzipped PDF (.pdf.gz, decompressed in memory) beside the same PDF uncompressed.

    python benchmarks/gzipped_read.py [--pdf FILE] [--repeat 3]

Both are read as `smart index` reads them, through the sandboxed reader's worker process
(text of every page), alternately in one run; the figure is the median seconds of each and
their ratio (the cost of decompressing in memory), and the size on disk of each.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smartcli.ingest.discovery import SourceFile, kind_of  # noqa: E402
from smartcli.ingest.sandbox import SandboxedReader  # noqa: E402

DEFAULT_PDF = "/work/main/dev_corpus/debian-reference.en.pdf"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pdf", default=DEFAULT_PDF)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        plain = Path(args.pdf)
        zipped = Path(scratch) / (plain.name + ".gz")
        zipped.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=9))
        times: dict[str, list[float]] = {"pdf": [], "pdf.gz": []}
        pages = {}
        with SandboxedReader() as reader:
            reader.read(SourceFile(str(plain), "pdf", 0, 0))  # start the worker, untimed
            for _ in range(args.repeat):
                for label, path in (("pdf", plain), ("pdf.gz", zipped)):
                    source = SourceFile(str(path), kind_of(str(path)), os.path.getsize(path), 0)
                    start = time.perf_counter()
                    document = reader.read(source)
                    times[label].append(time.perf_counter() - start)
                    pages[label] = (len(document.pages), sum(len(p.text) for p in document.pages))
        assert pages["pdf"] == pages["pdf.gz"], pages
        median = {label: statistics.median(t) for label, t in times.items()}
        print(f"file: {plain.name}, {pages['pdf'][0]} pages, {pages['pdf'][1]:,} characters of text")
        print(f"size: pdf {plain.stat().st_size / 1e6:.2f} MB, pdf.gz {zipped.stat().st_size / 1e6:.2f} MB")
        print(f"read (median of {args.repeat}): pdf {median['pdf']:.2f} s, pdf.gz {median['pdf.gz']:.2f} s, "
              f"ratio {median['pdf.gz'] / median['pdf']:.2f}")


if __name__ == "__main__":
    main()
