"""Peak memory of `smart index` on a short and a long PDF of the same pages, side by side.

    python benchmarks/long_file_memory.py [--pages 50 2000] [--words 375] [--workdir DIR] [--smoke]

Each PDF is made here with PyMuPDF (``--words`` words of plain English a page, the same
pages repeated); each is indexed into a fresh store by a real process,

    /usr/bin/time -f "%e s %U u %S s %M KB" python3 -m smartcli index DIR --store S --ocr never

and the elapsed time, the CPU seconds (user + system, the reader processes included) and peak
resident memory (``%M``: the largest of the process and the reader process it waits for) are
printed per PDF, with the ratios of the longest to the shortest. Memory bounded by the batch
(``defaults.BATCH_PAGES`` pages), not by the file, shows as a ratio near 1 while the page ratio
is 40.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _stores import ROOT, machine

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


def index_peak(pdf: Path, work: Path, extra: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds and peak KB of a `smart index` process indexing ``pdf``, and its summary line."""
    folder = work / pdf.stem
    folder.mkdir()
    shutil.copy(pdf, folder / pdf.name)
    store = work / f"{pdf.stem}-store"
    cmd = [
        "/usr/bin/time",
        "-f",
        "%e s %U u %S s %M KB",
        sys.executable,
        "-m",
        "smartcli",
        "index",
        str(folder),
        "--store",
        str(store),
        "--ocr",
        "never",
        *extra,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    timing = re.findall(r"([\d.]+) s ([\d.]+) u ([\d.]+) s (\d+) KB", result.stderr)
    if result.returncode != 0 or not timing:
        raise SystemExit(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    seconds, user, system, kb = timing[-1]
    summary = next((line for line in result.stdout.splitlines() if "added" in line), result.stdout.strip()[:200])
    return float(seconds), float(user) + float(system), int(kb), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, nargs="+", default=[50, 2000], help="pages of each PDF (default 50 2000)")
    parser.add_argument("--words", type=int, default=375, help="words a page")
    parser.add_argument("--batch-pages", type=int, default=None, help="passed to smart index (default: its own)")
    parser.add_argument("--workdir", default=None, help="where the PDFs and stores go (default: a temporary folder, removed)")
    parser.add_argument("--smoke", action="store_true", help="4 and 32 pages of 20 words, batches of 8 pages")
    args = parser.parse_args()
    if args.smoke:
        args.pages, args.words, args.batch_pages = [4, 32], 20, 8
    extra = ["--batch-pages", str(args.batch_pages)] if args.batch_pages else []
    work = Path(args.workdir or tempfile.mkdtemp(prefix="smart-long-file-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"smart index --ocr never {' '.join(extra)}; {args.words} words a page; {machine()}")
    rows = []
    for pages in args.pages:
        pdf = make_pdf(work / f"long-{pages}.pdf", pages, args.words)
        seconds, cpu, kb, summary = index_peak(pdf, work, extra)
        rows.append((pages, seconds, cpu, kb))
        print(
            f"{pages:>6} pages  {seconds:8.1f} s  {cpu:8.1f} CPU s ({cpu / pages * 1000:6.0f} ms a page)  peak {kb / 1024:8.1f} MB   ({summary})",
            flush=True,
        )
    (short, _, short_cpu, short_kb), (long, _, long_cpu, long_kb) = min(rows), max(rows)
    print(
        f"pages ratio {long / short:.0f}x; peak memory ratio {long_kb / short_kb:.2f}x ({long_kb / 1024:.0f} MB / {short_kb / 1024:.0f} MB); "
        f"CPU a page ratio {long_cpu / long / (short_cpu / short):.2f}x"
    )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
