"""Where OCR text stops being text: the readability score of OCR output on scans and on photos.

    python benchmarks/scanned_corpus.py dev_corpus /tmp/scan
    python benchmarks/ocr_garbage.py --scans /tmp/scan --photos /usr/share/backgrounds --pages 40

OCRs a seeded sample of ``--pages`` pages of the scanned PDFs and every image under ``--photos``
(the way `smart index` does: same rendering, same Tesseract), and prints for each group the
distribution of ``smartcli.ingest.ocr.readability`` (share of letters in known words) and how
many would be kept at the threshold `smart index` uses (``READABLE_SHARE``). A scan below the
threshold is a page the index would lose; a photo above it is noise the index would keep.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymupdf  # noqa: E402

from smartcli.ingest import ocr  # noqa: E402
from smartcli.ingest.discovery import IMAGE_SUFFIXES  # noqa: E402


def jobs_for(scans: Path, photos: Path | None, pages: int, seed: int, language: str, tessdata: str):
    rng = random.Random(seed)
    scan_pages = []
    for pdf in sorted(scans.rglob("*.pdf")):
        with pymupdf.open(pdf) as doc:
            scan_pages += [(str(pdf), n + 1) for n in range(doc.page_count)]
    sample = sorted(rng.sample(scan_pages, min(pages, len(scan_pages))))
    jobs = [("scan", ocr.OcrJob(p, "pdf", n, language, tessdata)) for p, n in sample]
    if photos:
        images = sorted(p for p in photos.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        jobs += [("photo", ocr.OcrJob(str(p), "image", 1, language, tessdata)) for p in images]
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=Path, required=True, help="folder of scanned PDFs (benchmarks/scanned_corpus.py)")
    parser.add_argument("--photos", type=Path, help="folder of photos without text")
    parser.add_argument("--pages", type=int, default=40, help="scanned pages sampled (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--language", default="eng")
    args = parser.parse_args()
    settings = ocr.resolve_settings("auto", args.language, args.workers)
    if settings.missing_languages:
        print(f"OCR language data missing: {settings.missing_languages}", file=sys.stderr)
        return 2
    jobs = jobs_for(args.scans, args.photos, args.pages, args.seed, args.language, settings.tessdata)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(ocr.recognize, [job for _, job in jobs]))
    print(f"{len(jobs)} OCR jobs in {time.perf_counter() - start:.1f} s")
    groups: dict[str, list[tuple[float, int, str, str]]] = {}
    for (group, job), result in zip(jobs, results):
        share, known = ocr.readability(result.text)
        groups.setdefault(group, []).append((share, known, f"{Path(job.path).name}:{job.page}", result.text))
    for group, rows in groups.items():
        rows.sort()
        shares = [r[0] for r in rows]
        kept = sum(ocr.is_readable(r[3]) for r in rows)
        with_text = sum(1 for r in rows if r[3])
        q = lambda f: shares[min(len(shares) - 1, int(f * len(shares)))]  # noqa: E731
        print(
            f"{group}: {len(rows)} items, {with_text} with OCR text; readability min {shares[0]:.2f} p10 {q(0.1):.2f} "
            f"median {q(0.5):.2f} max {shares[-1]:.2f}; kept at {ocr.READABLE_SHARE} (and >= {ocr.READABLE_MIN_WORDS} words): {kept}/{len(rows)}"
        )
        for share, known, name, text in rows[:3] + rows[-3:] if group == "scan" else rows:
            print(f"  {share:.2f} {known:4d} words  {name}  {text[:70]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
