"""Where OCR text stops being text: readability and coverage of OCR output on scans and on photos.

    python benchmarks/ocr_garbage.py --dev-corpus DIR --photos DIR [--pages 30] [--seed 0]

Scans a seeded sample of ``--pages`` pages of the development PDFs in ``--dev-corpus`` (each page
through ``scanned_corpus.scan_page``: grey, 200 dpi, up to 1 degree of skew, noise 10) and OCRs
each as an image, and every image under ``--photos``, the way `smart index` does (same
preparation, same Tesseract). Prints, per group, the range of ``ocr.readability`` (share of
letters in known words) and ``ocr.coverage`` (share of visible characters in known words), and
how many are kept by the share rule alone and by ``ocr.is_readable`` (share, known words and
coverage). A scan not kept is a page the index would lose; a photo kept is noise it would keep.
An experiment (docs/experiments.md), not a benchmark.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import pymupdf
from _stores import ROOT  # noqa: F401  (puts this checkout's smartcli on the path)
from scanned_corpus import scan_page

from smartcli.ingest import ocr
from smartcli.ingest.discovery import IMAGE_SUFFIXES


def scanned_pages(corpus: Path, pages: int, seed: int, out: Path) -> list[Path]:
    every = []
    for pdf in sorted(corpus.glob("*.pdf")):
        with pymupdf.open(pdf) as doc:
            every += [(pdf, n) for n in range(doc.page_count)]
    rng, noise = random.Random(seed), np.random.default_rng(seed)
    images = []
    for pdf, n in sorted(rng.sample(every, min(pages, len(every)))):
        with pymupdf.open(pdf) as doc:
            image = scan_page(doc[n], 200, 1.0, 10.0, noise)
        images.append(out / f"{pdf.stem}-{n + 1}.png")
        image.save(images[-1])
    return images


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev-corpus", type=Path, required=True, help="folder of the development PDFs")
    parser.add_argument("--photos", type=Path, required=True, help="folder of photos (wallpapers: mostly without text)")
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tessdata = ocr.find_tessdata(["eng"])
    with tempfile.TemporaryDirectory() as scratch:
        groups = {
            "scan": scanned_pages(args.dev_corpus, args.pages, args.seed, Path(scratch)),
            "photo": sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES),
        }
        for group, images in groups.items():
            rows = []
            for image in images:
                text = ocr.recognize(ocr.OcrJob(str(image), "image", 1, "eng", tessdata)).text
                share, known = ocr.readability(text)
                rows.append((share, known, ocr.coverage(text), ocr.is_readable(text), image.name, text))
            by_share = sum(1 for r in rows if r[0] >= ocr.READABLE_SHARE and r[1] >= ocr.READABLE_MIN_WORDS)
            kept = [r for r in rows if r[3]]
            print(
                f"{group}: {len(rows)}; readability {min(r[0] for r in rows):.2f}-{max(r[0] for r in rows):.2f}, "
                f"coverage {min(r[2] for r in rows):.2f}-{max(r[2] for r in rows):.2f}; "
                f"kept by the share rule {by_share}, by is_readable {len(kept)}"
            )
            shown = kept if group == "photo" else sorted(rows, key=lambda r: r[2])[:3]
            for share, known, cover, readable, name, text in shown:
                print(f"  {name}: share {share:.2f}, {known} known, coverage {cover:.2f}, kept {readable}: {text[:70]!r}")
            if group == "photo":
                passed = [r for r in rows if r[0] >= ocr.READABLE_SHARE and r[1] >= ocr.READABLE_MIN_WORDS]
                print(f"  coverage of the photos the share rule keeps: {sorted(round(r[2], 2) for r in passed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
