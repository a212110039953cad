"""`smart index` on many files of identical content: the time must grow linearly with their number.

    python benchmarks/identical_files.py [--files 5000 10000 20000] [--kind empty|copies] [--checkout DIR] [--smoke]

Issue 26 item 5: 100,000 empty ``.pdf`` files were still CPU-bound after 262 s with nothing
committed, and 10,000 copies took 52 s against 23 s for 5,000. For each count a folder of that
many files is made here (``empty``: zero bytes each, all skipped as empty files; ``copies``: one
small PDF copied, all shared with the indexed original) beside one small PDF, which a first run
indexes (so that the model is loaded and bound before the measured run, which then loads none);
the measured run is a real process,

    /usr/bin/time -f "%e s %U u %S s" python3 -m smartcli index DIR --store S --ocr never --batch-size 32

Printed per count: the wall seconds, the CPU seconds (the reader processes included), and the CPU
milliseconds per file once the start-up is taken off (the CPU seconds of a run over the same
folder that reads one file). Linear work shows as a steady cost per file: the ratio of the largest
count's to the smallest's is about 1; quadratic work makes it about the counts' ratio (4 for
5,000 and 20,000). ``--checkout`` runs another checkout's smartcli (the code before a change) on
the same files.
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


def small_pdf() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "the harbor timetable lists every ferry to the islands")
    data = doc.tobytes()
    doc.close()
    return data


def make_files(folder: Path, count: int, kind: str) -> None:
    data = small_pdf()
    for i in range(count):
        path = folder / f"{kind}-{i:06d}.pdf"
        if kind == "empty":
            path.touch()
        else:
            path.write_bytes(data)


def index_cost(folder: Path, store: Path, checkout: Path) -> tuple[float, float, str]:
    """Wall and CPU seconds of a `smart index` process over ``folder``, and its summary line."""
    cmd = ["/usr/bin/time", "-f", "%e s %U u %S s", sys.executable, "-m", "smartcli", "index", str(folder), "--store", str(store)]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    # --batch-size: otherwise the model is loaded to learn its own, files to encode or not.
    result = subprocess.run([*cmd, "--ocr", "never", "--batch-size", "32"], capture_output=True, text=True, cwd=checkout, env=env)
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
        folder, store = work / f"{args.kind}-{count}", work / f"store-{args.kind}-{count}"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "original.pdf").write_bytes(small_pdf())
        index_cost(folder, store, checkout)  # binds the model
        # The start-up's cost: a run that reads one file (an unreadable one, read again on every run).
        (folder / "startup.pdf").write_bytes(b"not a pdf")
        _, startup, _ = index_cost(folder, store, checkout)
        make_files(folder, count, args.kind)
        wall, cpu, summary = index_cost(folder, store, checkout)
        per_file = max(cpu - startup, 0.0) / count * 1000
        rows.append((count, per_file))
        print(
            f"{count:>7} files  {wall:8.1f} s  {cpu:8.1f} CPU s (start-up {startup:.1f})  {per_file:6.2f} CPU ms a file   ({summary})",
            flush=True,
        )
    (small, small_cost), (large, large_cost) = rows[0], rows[-1]
    if small_cost > 0:
        print(
            f"CPU a file, {large:,} files / {small:,} files: {large_cost / small_cost:.2f}x "
            f"(linear: about 1; quadratic: about {large / small:.0f})"
        )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
