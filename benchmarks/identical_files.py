"""`smart index` on many files of identical content: the time must grow linearly with their number.

    python benchmarks/identical_files.py [--files 5000 10000 20000] [--kind empty|copies] [--checkout DIR] [--smoke]

Issue 26 item 5: 100,000 empty ``.pdf`` files were still CPU-bound after 262 s with nothing
committed, and 10,000 copies took 52 s against 23 s for 5,000. For each count a folder of that
many files is made here (``empty``: zero bytes each, all skipped as empty files; ``copies``: one
small PDF copied, encoded once and shared by the copies) and indexed into a fresh store by a real
process,

    /usr/bin/time -f "%e s %U u %S s" python3 -m smartcli index DIR --store S --ocr never

Printed per count: the wall seconds, the CPU seconds (the reader processes included) and, between
consecutive counts, the CPU seconds each further 1,000 files cost. Linear work shows as a steady
marginal cost (a fixed start-up, the model's load, makes the totals' ratio less than the counts');
quadratic work shows as a marginal cost that doubles with the count. ``--checkout`` runs another
checkout's smartcli (the code before a change) on the same files.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _stores import ROOT, machine


def make_files(folder: Path, count: int, kind: str) -> None:
    folder.mkdir(parents=True)
    if kind == "empty":
        for i in range(count):
            (folder / f"empty-{i:06d}.pdf").touch()
        return
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "the harbor timetable lists every ferry to the islands")
    data = doc.tobytes()
    doc.close()
    for i in range(count):
        (folder / f"copy-{i:06d}.pdf").write_bytes(data)


def index_cost(folder: Path, store: Path, checkout: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds of a `smart index` process over ``folder``, and its summary line."""
    cmd = ["/usr/bin/time", "-f", "%e s %U u %S s", sys.executable, "-m", "smartcli", "index", str(folder), "--store", str(store)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    result = subprocess.run([*cmd, "--ocr", "never"], capture_output=True, text=True, cwd=checkout, env=env)
    timing = re.findall(r"([\d.]+) s ([\d.]+) u ([\d.]+) s", result.stderr)
    if result.returncode not in (0, 3) or not timing:
        raise SystemExit(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    wall, user, system = timing[-1]
    summary = next((line for line in result.stdout.splitlines() if "added" in line), result.stdout.strip()[:200])
    return float(wall), float(user) + float(system), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, nargs="+", default=[5000, 10000, 20000], help="file counts (default 5000 10000 20000)")
    parser.add_argument("--kind", choices=("empty", "copies"), default="empty", help="empty files, or copies of one small PDF")
    parser.add_argument("--checkout", default=str(ROOT), help="the checkout whose smartcli runs (default: this one)")
    parser.add_argument("--workdir", default=None, help="where the files and stores go (default: a temporary folder, removed)")
    parser.add_argument("--smoke", action="store_true", help="20 and 40 files")
    args = parser.parse_args()
    if args.smoke:
        args.files = [20, 40]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="smart-identical-"))
    work.mkdir(parents=True, exist_ok=True)
    checkout = Path(args.checkout).resolve()
    print(f"smart index --ocr never over {args.kind} files; smartcli of {checkout}; {machine()}")
    rows = []
    for count in sorted(args.files):
        folder = work / f"{args.kind}-{count}"
        shutil.rmtree(folder, ignore_errors=True)
        make_files(folder, count, args.kind)
        wall, cpu, summary = index_cost(folder, work / f"store-{args.kind}-{count}", checkout)
        marginal = ""
        if rows:
            before_count, _, before_cpu = rows[-1]
            marginal = f"  {(cpu - before_cpu) / (count - before_count) * 1000:6.2f} CPU s per further 1,000 files"
        rows.append((count, wall, cpu))
        print(f"{count:>7} files  {wall:8.1f} s  {cpu:8.1f} CPU s{marginal}   ({summary})", flush=True)
    if len(rows) >= 3:
        first = (rows[1][2] - rows[0][2]) / (rows[1][0] - rows[0][0])
        last = (rows[-1][2] - rows[-2][2]) / (rows[-1][0] - rows[-2][0])
        print(f"marginal CPU cost, last step / first step: {last / first:.2f}x (linear: about 1; quadratic: the counts' ratio)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
