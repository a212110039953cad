"""Peak memory of `smart index` on a short and a long PDF of the same pages, side by side.

    python benchmarks/long_file_memory.py [--pages 50 2000] [--words 375] [--workdir DIR] [--smoke]

Each PDF is made here with PyMuPDF (``--words`` words of plain English a page, the same
pages repeated); each is indexed into a fresh store by a real process,

    /usr/bin/time -f "%e s %M KB" python3 -m smartcli index DIR --store S --ocr never

and the elapsed time and peak resident memory (``%M``: the largest of the process and the
reader process it waits for) are printed per PDF, with the ratio of the longest to the
shortest. Memory bounded by the batch (``defaults.BATCH_PAGES`` pages), not by the file,
shows as a ratio near 1 while the page ratio is 40.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "the harbor ship sails at dawn while the crew checks ropes and sails before the long voyage across "
    "cold northern water where storms gather quickly and the captain reads charts by lamp light in a small "
    "cabin full of maps instruments letters and old books about tides currents winds stars islands reefs "
    "lighthouses ports cargo grain timber iron coal wool salt fish oil wine cloth paper tools engines pumps"
).split()


def make_pdf(path: Path, pages: int, words: int, seed: int = 7) -> Path:
    import pymupdf

    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(min(pages, 50))]
    doc = pymupdf.open()
    for i in range(pages):
        page = doc.new_page(width=595, height=842)
        page.insert_textbox(pymupdf.Rect(40, 40, 555, 800), f"Page {i + 1}. " + texts[i % len(texts)], fontsize=8)
    doc.save(path)
    doc.close()
    return path


def index_peak(pdf: Path, work: Path, extra: list[str]) -> tuple[float, int, str]:
    folder = work / pdf.stem
    folder.mkdir()
    shutil.copy(pdf, folder / pdf.name)
    store = work / f"{pdf.stem}-store"
    cmd = ["/usr/bin/time", "-f", "%e s %M KB", sys.executable, "-m", "smartcli", "index", str(folder), "--store", str(store), "--ocr", "never", *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    timing = re.findall(r"([\d.]+) s (\d+) KB", result.stderr)
    if result.returncode != 0 or not timing:
        raise SystemExit(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    seconds, kb = timing[-1]
    summary = next((line for line in result.stdout.splitlines() if "added" in line), result.stdout.strip()[:200])
    return float(seconds), int(kb), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[50, 2000])
    parser.add_argument("--words", type=int, default=375, help="words a page")
    parser.add_argument("--batch-pages", type=int, default=None, help="passed to smart index (default: its own)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--smoke", action="store_true", help="10 and 80 pages of 20 words, batches of 16 pages")
    args = parser.parse_args()
    if args.smoke:
        args.pages, args.words, args.batch_pages = [10, 80], 20, 16
    extra = ["--batch-pages", str(args.batch_pages)] if args.batch_pages else []
    work = Path(args.workdir or tempfile.mkdtemp(prefix="smart-long-file-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"smart index --ocr never {' '.join(extra)}; {args.words} words a page; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    rows = []
    for pages in args.pages:
        pdf = make_pdf(work / f"long-{pages}.pdf", pages, args.words)
        seconds, kb, summary = index_peak(pdf, work, extra)
        rows.append((pages, seconds, kb))
        print(f"{pages:>6} pages  {seconds:8.1f} s  peak {kb / 1024:8.1f} MB   ({summary})", flush=True)
    (short, _, short_kb), (long, _, long_kb) = min(rows), max(rows)
    print(f"pages ratio {long / short:.0f}x; peak memory ratio {long_kb / short_kb:.2f}x ({long_kb / 1024:.0f} MB / {short_kb / 1024:.0f} MB)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
