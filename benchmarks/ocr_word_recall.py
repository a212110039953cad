"""How much of the born-digital text OCR recovered: a store of scanned copies against the originals.

    python benchmarks/ocr_word_recall.py --store /tmp/scan --originals dev_corpus

For every page of the store whose file has a born-digital original of the same base name,
counts the original text layer's words (lower-cased runs of letters and digits) that the
stored OCR text also has, with multiplicity. Prints the recall over all words, the share of
the lost words that are numbers, and the pages that lost most.
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from smartcli.ingest.discovery import normalize_text  # noqa: E402  (the indexer's own normalization)

WORD = re.compile(r"[a-z0-9]+")


def words(text: str | None) -> Counter:
    return Counter(WORD.findall((text or "").lower()))


def stored_pages(store: Path):
    """(base name, page, text) of every item, read-only."""
    conn = sqlite3.connect(f"file:{store / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT files.path, items.page, items.text FROM items JOIN files ON files.id = items.file_id")
        yield from ((os.path.basename(os.fsdecode(path)), page, text) for path, page, text in rows)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="store of the scanned copies")
    parser.add_argument("--originals", type=Path, required=True, help="folder of the born-digital PDFs")
    parser.add_argument("--worst", type=int, default=5, help="pages listed that lost most words")
    args = parser.parse_args(argv)

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
