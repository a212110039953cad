"""What default OCR costs on many tiny pages that show no picture, beside `--ocr never`, in one run.

    python benchmarks/ocr_probe.py [--pages 2000] [--before-root DIR] [--workdir DIR] [--smoke]

One PDF of ``--pages`` tiny pages (144 x 144 pt), each holding only its page number, is made
with PyMuPDF and indexed into fresh stores by real processes:

    python3 -m smartcli index DIR --store S --ocr auto     (the default)
    python3 -m smartcli index DIR --store S --ocr never

and the seconds of each, the pages OCR read, and the ratio auto / never are printed. With
``--before-root`` (another checkout of smart, e.g. made with `git archive`), the same auto run
is timed with that code too, so that before and after are measured side by side.
Issue 13's report: 20,000 such pages took 1,475 s with default OCR vs 54 s with --ocr never.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_pdf(path: Path, pages: int) -> Path:
    import pymupdf

    doc = pymupdf.open()
    for i in range(pages):
        doc.new_page(width=144, height=144).insert_text((60, 130), str(i + 1), fontsize=9)
    doc.save(path)
    doc.close()
    return path


def timed_index(root: Path, docs: Path, store: Path, ocr: str) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(root))
    cmd = [sys.executable, "-m", "smartcli", "index", str(docs), "--store", str(store), "--ocr", ocr, "--json"]
    started = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} (in {root}) exited {result.returncode}:\n{result.stderr[-2000:]}")
    return seconds, json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--before-root", default=None, help="a checkout of the code before the change")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--smoke", action="store_true", help="40 pages")
    args = parser.parse_args()
    if args.smoke:
        args.pages = 40
    work = Path(args.workdir or tempfile.mkdtemp(prefix="smart-ocr-probe-"))
    docs = work / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    make_pdf(docs / "tiny-pages.pdf", args.pages)
    print(f"{args.pages} pages of 144 x 144 pt holding their number; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    runs = [("after", ROOT, "auto"), ("after", ROOT, "never")]
    if args.before_root:
        runs.insert(0, ("before", Path(args.before_root).resolve(), "auto"))
    seconds = {}
    for label, root, ocr in runs:
        store = work / f"store-{label}-{ocr}"
        shutil.rmtree(store, ignore_errors=True)
        took, summary = timed_index(root, docs, store, ocr)
        seconds[label, ocr] = took
        attempted = (summary.get("ocr") or {}).get("attempted", 0)
        print(f"{label:>6} --ocr {ocr:<5} {took:8.1f} s   pages encoded {summary['pages_encoded']}, OCR read {attempted}", flush=True)
    never = seconds["after", "never"]
    print(f"after: auto / never = {seconds['after', 'auto'] / never:.2f}x")
    if ("before", "auto") in seconds:
        print(f"before: auto / never = {seconds['before', 'auto'] / never:.2f}x; auto before / after = "
              f"{seconds['before', 'auto'] / seconds['after', 'auto']:.1f}x")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
