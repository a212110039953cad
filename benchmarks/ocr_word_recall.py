"""How much of the born-digital text OCR recovered: a store of scanned copies against the originals.

    python benchmarks/ocr_word_recall.py --store /tmp/scan --originals dev_corpus
    python benchmarks/ocr_word_recall.py --smoke    # sample_corpus/'s first pages scanned, indexed with OCR

For every page of the store whose file has a born-digital original of the same base name,
counts the original text layer's words (lower-cased runs of letters and digits) that the
stored OCR text also has, with multiplicity. Prints the recall over all words, the share of
the lost words that are numbers, and the pages that lost most. (The store is made by
benchmarks/scanned_corpus.py and `smart index`, which reports OCR's pages/s and CPU seconds a
page in its `--json` summary.)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pymupdf
from _stores import SAMPLE_CORPUS, clock

from smartcli import Index
from smartcli.ingest.discovery import normalize_text  # the indexer's own normalization
from smartcli.store.catalog import Store, reads

WORD = re.compile(r"[a-z0-9]+")


def words(text: str | None) -> Counter:
    return Counter(WORD.findall((text or "").lower()))


def stored_pages(store: Path) -> list[tuple[str, int, str]]:
    """(base name, page, text) of every page of the store."""
    with Store.open(store) as opened:
        return [(os.path.basename(item.path), item.page, item.text) for item in reads.live_items(opened)]


def scanned_sample(folder: Path) -> tuple[Path, Path]:
    """The first page of each PDF of sample_corpus/ scanned (scanned_corpus.py) and indexed with
    OCR into a store: (store, folder of the originals)."""
    import scanned_corpus

    scanned_corpus.main(["--smoke", "--pages", "1", str(folder / "scanned")])
    store = folder / "store"
    with Index.open(store, create=True) as index, clock() as timing:
        summary = index.update([folder / "scanned"])
    ocr = summary.ocr or {}
    print(
        f"indexed with OCR: {ocr.get('pages', 0)} pages in {timing.wall:.1f} s ({timing.cpu:.1f} CPU s in this process; "
        f"OCR workers' CPU {ocr.get('cpu_seconds_per_page', 0):.2f} s a page)"
    )
    originals = folder / "originals"
    originals.mkdir()
    for pdf in SAMPLE_CORPUS.rglob("*.pdf"):
        (originals / pdf.name).symlink_to(pdf)
    return store, originals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, help="store of the scanned copies")
    parser.add_argument("--originals", type=Path, help="folder of the born-digital PDFs")
    parser.add_argument("--worst", type=int, default=5, help="pages listed that lost most words")
    parser.add_argument("--smoke", action="store_true", help="sample_corpus/'s first pages, scanned and indexed with OCR here")
    args = parser.parse_args(argv)
    if args.smoke:
        with tempfile.TemporaryDirectory() as tmp:
            args.store, args.originals = scanned_sample(Path(tmp))
            return recall(args)
    if not (args.store and args.originals):
        parser.error("--store and --originals are required (or --smoke)")
    return recall(args)


def recall(args) -> int:
    originals = {p.name: pymupdf.open(p) for p in args.originals.glob("*.pdf")}
    found = total = 0
    lost: Counter = Counter()
    per_page = []
    for name, page, text in stored_pages(args.store):
        if name not in originals:
            continue
        truth = words(normalize_text(originals[name][page - 1].get_text()))
        missing = truth - words(text)
        total += sum(truth.values())
        found += sum(truth.values()) - sum(missing.values())
        lost += missing
        per_page.append((sum(missing.values()), sum(truth.values()), name, page))
    if not total:
        print("no page of the store has an original in", args.originals, file=sys.stderr)
        return 1
    numbers = sum(n for word, n in lost.items() if word.isdigit())
    print(f"{len(per_page)} pages, {total} words in the text layers: OCR recovered {found / total:.1%}")
    print(f"lost words that are numbers: {numbers / max(sum(lost.values()), 1):.0%}")
    for missing, words_on_page, name, page in sorted(per_page, reverse=True)[: args.worst]:
        print(f"  {name} page {page}: {missing} of {words_on_page} words lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
