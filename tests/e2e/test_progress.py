"""`smart index` progress in real processes: plain lines when stderr is a pipe, counts that end
equal to the summary, Ctrl-C saying what was kept, and Tesseract's chatter kept off stderr."""

import json
import re
import signal
import subprocess
import sys
import threading
import time

import pymupdf

from tests.cli.test_ocr import needs_language_data
from tests.conftest import ROOT, run_smart_process
from tests.corpus import make_many_pdfs

LINE = re.compile(r"^smart: (\d+)/(\d+) pages done \((\d+) encoded\), (\d+) files? committed")
FAST = {"SMART_PROGRESS_SECONDS": "0.05"}  # many lines even where 120 short pages encode in a second


def progress_lines(stderr: str) -> list[tuple[int, int, int, int]]:
    return [tuple(map(int, m.groups())) for m in map(LINE.match, stderr.splitlines()) if m]


def test_a_piped_run_prints_plain_progress_whose_last_line_equals_the_summary(tmp_path):
    made = make_many_pdfs(tmp_path / "docs", 12, seed=14, max_pages=3)
    result = run_smart_process(
        "index", tmp_path / "docs", "--store", tmp_path / "store", "--ocr", "never", "--batch-pages", "4", "--json", env=FAST
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    lines = progress_lines(result.stderr)
    assert len(lines) >= 2, result.stderr
    pages = sum(len(p) for p in made.values())
    done, total, encoded, files = lines[-1]
    assert (done, total, encoded, files) == (pages, pages, summary["pages_encoded"], summary["added"])
    assert summary["pages_encoded"] == pages
    # Counts only grow, and never pass the total: nothing is counted before it is committed.
    assert [line[0] for line in lines] == sorted(line[0] for line in lines)
    assert all(d <= t for d, t, _, _ in lines)
    assert "eta " in result.stderr and "pages/s" in result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr  # plain lines, no bar drawing


def index_a_120_page_pdf(tmp_path, *options):
    """`smart index --json` of one 120-page PDF with ``options``: the run and its progress lines."""
    from tests.corpus import make_pdf

    (tmp_path / "docs").mkdir()
    make_pdf(tmp_path / "docs" / "ledger.pdf", [f"page {i} of the harbor ledger: ships, grain and timber" for i in range(1, 121)])
    result = run_smart_process("index", tmp_path / "docs", "--store", tmp_path / "store", "--ocr", "never", *options, "--json", env=FAST)
    assert result.returncode == 0, result.stderr
    return result, progress_lines(result.stderr)


def test_progress_lines_during_a_long_file_show_its_pages_encoded_rising(tmp_path):
    """Issue 23 item 3: a long file's slices are encoded and written ahead of its commit, but were
    counted only at the commit: `0/703 pages done (0 encoded)` for 8 minutes, then a jump. Now pages
    count as they are encoded, a stall repeats no line, and the last line's rate is the average."""
    result, lines = index_a_120_page_pdf(tmp_path, "--batch-pages", "8")
    during = [encoded for done, total, encoded, files in lines if files == 0]  # before the file's commit
    assert len(set(during)) >= 3 and during == sorted(during) and during[-1] > 8, result.stderr
    assert all(done == 0 for done, _, _, files in lines if files == 0)  # done: committed, and nothing is yet
    assert lines[-1] == (120, 120, 120, 1)
    printed = [line for line in result.stderr.splitlines() if LINE.match(line)]
    assert all(a != b for a, b in zip(printed, printed[1:])), result.stderr  # no run of identical lines
    last = re.search(r"([\d.]+) pages/s, in (\d+):(\d\d):(\d\d)$", printed[-1])
    assert last, printed[-1]
    rate, seconds = float(last.group(1)), int(last.group(2)) * 3600 + int(last.group(3)) * 60 + int(last.group(4))
    assert 120 / (seconds + 0.5) - 0.05 <= rate <= 120 / max(seconds - 0.5, 0.1) + 0.05, printed[-1]


def test_progress_moves_within_a_batch_of_the_default_size(tmp_path):
    """A batch (up to --batch-pages 128 pages, and its last slice up to half more) was counted
    only once it was all encoded: a first run on 199 pages of manuals showed `0/172 pages done (0
    encoded)` for a minute, and a Ctrl-C in that minute kept nothing. Pages now count as each
    forward pass's worth is encoded."""
    result, lines = index_a_120_page_pdf(tmp_path, "--batch-size", "2")
    during = [encoded for done, total, encoded, files in lines if files == 0]  # one batch, one slice: before its commit
    assert len(set(during) - {0}) >= 3 and during == sorted(during), result.stderr
    assert lines[-1] == (120, 120, 120, 1)


def test_a_plain_ticker_prints_a_line_only_when_the_counts_changed():
    from smartcli.cli.progress import PlainTicker, RunCounts

    counts, emitted = RunCounts(), []
    ticker = PlainTicker(counts, emitted.append, interval=0.05)
    counts.started(100)
    ticker.start()
    time.sleep(0.5)  # a stall: one line, not ten
    counts.encoded_now(8)
    time.sleep(0.3)
    counts.committed(1, 8, 8, 100)
    time.sleep(0.3)
    counts.finish()
    ticker.stop(finished=True)
    assert emitted[0].startswith("0/100 pages done (0 encoded)")
    assert any(line.startswith("0/100 pages done (8 encoded)") for line in emitted), emitted
    assert all(a != b for a, b in zip(emitted, emitted[1:])) and len(emitted) == 4, emitted
    assert emitted[-1].startswith("8/100 pages done (8 encoded), 1 file committed") and ", in 0:00:0" in emitted[-1]


def test_ctrl_c_says_how_many_files_were_committed_and_the_next_run_resumes(tmp_path):
    made = make_many_pdfs(tmp_path / "docs", 60, seed=15, max_pages=2)
    store = tmp_path / "store"
    smart = subprocess.Popen(
        [sys.executable, "-m", "smartcli", "index", str(tmp_path / "docs"), "--store", str(store), "--ocr", "never", "--batch-pages", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**__import__("os").environ, "SMART_PROGRESS_SECONDS": "0.2"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(smart.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and smart.poll() is None:
            if any(p[3] >= 2 for p in progress_lines("".join(lines))):
                break
            time.sleep(0.1)
        assert smart.poll() is None, "the run ended before it could be interrupted:\n" + "".join(lines)
        smart.send_signal(signal.SIGINT)
        smart.wait(timeout=120)
    finally:
        smart.kill()
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert smart.returncode == 130, stderr
    assert "Traceback" not in stderr
    kept = re.search(r"^smart: interrupted: (\d+) files? committed; run again to resume$", stderr, re.M)
    assert kept, stderr
    committed = int(kept.group(1))
    assert committed >= 2
    assert committed >= max(p[3] for p in progress_lines(stderr))

    again = run_smart_process("index", tmp_path / "docs", "--store", store, "--ocr", "never", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["unchanged"], summary["added"]) == (committed, len(made) - committed)


def _page_tesseract_complains_about(path):
    """A page of words and hair-thin bars: Tesseract prints "Image too small to scale!!" on it."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Some words on a line", fontsize=12)
    for i, (w, h) in enumerate([(0.3, 20), (0.5, 40), (0.7, 10), (0.2, 60), (1, 3), (3, 0.5), (10, 0.3)]):
        x = 100 + i * 40
        page.draw_rect(pymupdf.Rect(x, 200, x + w, 200 + h), color=None, fill=(0, 0, 0))
    doc.save(path)


@needs_language_data
def test_tesseract_chatter_stays_off_stderr(tmp_path):
    (tmp_path / "docs").mkdir()
    _page_tesseract_complains_about(tmp_path / "docs" / "bars.pdf")
    result = run_smart_process("index", tmp_path / "docs", "--store", tmp_path / "store", "--ocr", "always", "--json", env=FAST)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ocr"]["attempted"] == 1 and summary["ocr"]["pages"] == 1
    assert "too small to scale" not in result.stderr and "cannot be recognized" not in result.stderr
    assert all(line.startswith("smart: ") for line in result.stderr.splitlines()), result.stderr
    # The OCR count of the last progress line is the summary's.
    assert result.stderr.splitlines()[-1].endswith("; OCR 1/1 pages"), result.stderr
