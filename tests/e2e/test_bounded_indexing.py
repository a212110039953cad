"""Issue 13 items 2 and 10, issue 14 item 7: what one file may cost a run.

A long file is encoded and written in slices of ``--batch-pages`` pages and committed whole;
a file is judged by ``stat`` before it is opened; an unchanged tree costs a stat per file.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from smartcli.store.catalog.layout import CATALOG, SEGMENT_DIR
from tests.conftest import ROOT, run_smart, run_smart_process
from tests.corpus import make_pdf

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def long_pdf(path: Path, pages: int) -> Path:
    return make_pdf(path, [f"page {i + 1} of the ledger: entry code{i + 1:04d} for ships and grain" for i in range(pages)])


def segment_rows(store: Path) -> dict[str, int]:
    with sqlite3.connect(store / CATALOG) as conn:
        return dict(conn.execute("SELECT segment, COUNT(*) FROM items WHERE segment IS NOT NULL GROUP BY segment"))


def test_a_long_file_is_encoded_in_slices_of_the_batch_and_committed_whole(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    long_pdf(docs / "ledger.pdf", 40)
    store = tmp_path / "store"
    result = run_smart("index", docs, "--store", store, "--ocr", "never", "--batch-pages", "8", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["pages_encoded"]) == (1, 40)
    # No slice held more than a batch of pages: five segments of 8 rows, all named by the catalog.
    rows = segment_rows(store)
    assert sorted(rows.values()) == [8] * 5
    assert {p.stem for p in (store / SEGMENT_DIR).glob("*.h5")} == set(rows)
    hits = json.loads(run_smart("search", "code0037", "--store", store, "--json", "-k", "1", check=True).stdout)
    assert (hits[0]["page"] if isinstance(hits, list) else hits["results"][0]["page"]) == 37


def test_a_run_killed_inside_a_long_file_commits_none_of_it_and_the_next_run_encodes_it_once(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    long_pdf(docs / "ledger.pdf", 48)
    store = tmp_path / "store"
    command = [
        sys.executable,
        "-m",
        "smartcli",
        "index",
        str(docs),
        "--store",
        str(store),
        "--ocr",
        "never",
        "--batch-pages",
        "8",
        "--json",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        # Kill once a slice of the file has been written ahead of its commit.
        while not list((store / SEGMENT_DIR).glob("seg-*.h5")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before a slice was written"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    with sqlite3.connect(store / CATALOG) as conn:
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0  # nothing of the file committed
        assert conn.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 0
    again = run_smart_process("index", docs, "--store", store, "--ocr", "never", "--batch-pages", "8", "--json", env=ENV)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["added"], summary["pages_encoded"]) == (1, 48)
    rows = segment_rows(store)
    assert sum(rows.values()) == 48 and max(rows.values()) <= 8
    # The slices the killed run wrote are gone: every segment file is one the catalog names.
    assert {p.stem for p in (store / SEGMENT_DIR).glob("*.h5")} == set(rows)
    with sqlite3.connect(store / CATALOG) as conn:
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT page) FROM items").fetchone() == (48, 48)


def test_a_symlink_to_a_huge_sparse_file_is_skipped_by_stat_before_it_is_opened(tmp_path):
    holes = tmp_path / "holes.bin"
    with open(holes, "wb") as f:
        os.truncate(f.fileno(), 20 << 30)  # 20 GB long, nothing on disk
    st = os.stat(holes)
    if st.st_blocks * 512 * 8 >= st.st_size:
        import pytest

        pytest.skip("this file system does not keep sparse files sparse")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "big.pdf").symlink_to(holes)
    make_pdf(docs / "good.pdf", ["a small good page about sourdough"])
    store = tmp_path / "store"
    started = time.monotonic()
    result = run_smart_process("index", docs, "--store", store, "--ocr", "never", "--json")
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)
    assert summary["added"] == 1
    [skipped] = summary["skipped"]
    assert skipped["path"] == str(docs / "big.pdf")
    assert skipped["reason"] == "sparse file (20.0 GB long, 0 bytes of it on disk): mostly holes, not a document; not read"
    assert f"smart: skipped {docs / 'big.pdf'}: sparse file (20.0 GB long" in result.stderr
    # Nothing read it: hashing 20 GB of holes alone takes over a minute (117 s in the issue).
    assert os.stat(holes).st_atime_ns == st.st_atime_ns or time.monotonic() - started < 60
    again = run_smart_process("index", docs, "--store", store, "--ocr", "never", "--dry-run", "--json")
    assert [s["reason"] for s in json.loads(again.stdout)["skip"]] == [skipped["reason"]]


def test_a_file_over_the_size_limit_of_its_kind_is_skipped_by_stat(tmp_path, monkeypatch):
    from smartcli import defaults
    from smartcli.ingest.discovery import discover

    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", ["some text " * 200])
    size = os.stat(docs / "a.pdf").st_size
    monkeypatch.setitem(defaults.MAX_FILE_BYTES, "pdf", size - 1)
    found, skipped = discover([docs])
    assert found == []
    [reason] = [s.reason for s in skipped]
    assert reason.startswith("file of ") and reason.endswith(" limit for a pdf file; not read"), reason


# -- OCR: decided from the text pass, and never repeated for an unchanged file ------------------

UPDATE_SCRIPT = """
import json, sys
from smartcli import Index
summary = Index.open(sys.argv[1], create=True).update([sys.argv[2]], ocr=sys.argv[3], ocr_workers=1)
heavy = ("torch", "transformers", "onnxruntime", "smartcli.models.text")
print(json.dumps({"summary": summary.as_json(), "loaded": [m for m in heavy if m in sys.modules]}))
"""


def update_in_a_process(store: Path, docs: Path, ocr: str) -> tuple[dict, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", UPDATE_SCRIPT, str(store), str(docs), ocr], capture_output=True, text=True, cwd=ROOT, env=ENV
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    return answer["summary"], answer["loaded"]


def pages_pdf(path: Path) -> Path:
    """A text page, a page showing a white picture (OCR finds nothing), a blank page, a page
    holding only its number, and a page showing marks on a photo (OCR reads no words)."""
    import io

    import pymupdf
    from PIL import Image

    from tests.unit.test_text_fidelity import marks_photo

    white = io.BytesIO()
    Image.new("RGB", (400, 300), (255, 255, 255)).save(white, format="PNG")
    marks = marks_photo(path.parent.parent / "marks.png")
    doc = pymupdf.open()
    doc.new_page().insert_textbox(pymupdf.Rect(72, 72, 540, 770), "The harbor master keeps the tide tables for every ship.")
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 472, 372), stream=white.getvalue())
    doc.new_page()
    doc.new_page().insert_text((300, 800), "4", fontsize=9)
    doc.new_page().insert_image(pymupdf.Rect(40, 40, 560, 360), filename=str(marks))
    doc.save(path)
    return path


def test_an_unchanged_tree_is_not_read_or_ocrd_again_whatever_ocr_found_and_loads_no_model(tmp_path):
    from smartcli.ingest.ocr import resolve_settings

    if resolve_settings("auto", "eng", 1).missing_languages:
        import pytest

        pytest.skip("Tesseract's eng.traineddata is not installed")
    docs = tmp_path / "docs"
    docs.mkdir()
    pages_pdf(docs / "mixed.pdf")
    store = tmp_path / "store"
    first, _ = update_in_a_process(store, docs, "auto")
    # The blank page and the number-only page were not rendered for OCR: the text pass saw no picture.
    assert first["ocr"]["attempted"] == 2, first
    assert first["not_encoded"] == {"ocr_no_text": 1, "blank_page": 1, "ocr_unreadable": 1}, first
    assert first["pages_encoded"] == 2

    again, loaded = update_in_a_process(store, docs, "auto")
    assert (again["added"], again["updated"], again["unchanged"], again["pages_encoded"]) == (0, 0, 1, 0), again
    assert again["ocr"]["attempted"] == 0
    assert loaded == []  # no model, not even its libraries
    plan = json.loads(run_smart_process("index", docs, "--store", store, "--dry-run", "--json", env=ENV, check=True).stdout)
    assert (plan["add"], plan["update"], plan["unchanged"]) == ([], [], 1)


def test_pages_without_text_are_read_again_only_when_the_ocr_mode_lets_them_be_read(tmp_path):
    from smartcli.ingest.ocr import resolve_settings

    docs = tmp_path / "docs"
    docs.mkdir()
    pages_pdf(docs / "mixed.pdf")
    store = tmp_path / "store"
    first, _ = update_in_a_process(store, docs, "never")
    assert first["not_encoded"] == {"no_text_layer": 2, "blank_page": 1}, first
    again, loaded = update_in_a_process(store, docs, "never")
    assert (again["updated"], again["unchanged"]) == (0, 1) and loaded == [], again
    plan = json.loads(
        run_smart_process("index", docs, "--store", store, "--ocr", "never", "--dry-run", "--json", env=ENV, check=True).stdout
    )
    assert (plan["update"], plan["unchanged"]) == ([], 1)
    if resolve_settings("auto", "eng", 1).missing_languages:
        return
    # OCR can run now: the pages that show a picture are read again (the blank one is not OCR'd).
    plan = json.loads(run_smart_process("index", docs, "--store", store, "--dry-run", "--json", env=ENV, check=True).stdout)
    assert plan["update"] == [str(docs / "mixed.pdf")]
    now, _ = update_in_a_process(store, docs, "auto")
    assert now["updated"] == 1 and now["ocr"]["attempted"] == 2, now


def _calls_to_index_identical_files(root: Path, count: int) -> tuple[int, dict]:
    """Python function calls one `Index.update` makes over ``count`` empty PDFs and ``count`` copies
    of an indexed PDF (no model work: the store's one real page is indexed first), and its summary."""
    import cProfile
    import pstats
    import shutil

    from smartcli import Index

    docs = root / "docs"
    docs.mkdir(parents=True)
    original = make_pdf(docs / "original.pdf", ["the harbor timetable lists every ferry to the islands"])
    index = Index.open(root / "store", create=True)
    index.update([docs], ocr="never")
    for i in range(count):
        (docs / f"empty-{i:04d}.pdf").touch()
        shutil.copy(original, docs / f"copy-{i:04d}.pdf")
    profile = cProfile.Profile()
    summary = profile.runcall(index.update, [docs], ocr="never")
    return pstats.Stats(profile).total_calls, summary


def test_identical_files_cost_each_the_same_so_a_run_is_linear_in_their_number(tmp_path):
    """Issue 26 item 5: 10,000 copies took 52 s against 23 s for 5,000, and 100,000 empty PDFs were
    still CPU-bound after 262 s with nothing committed: each file was looked up in lists of the
    others, and a batch of files without pages was summed again for every file (and never full).
    The shape without a clock: twice the files, twice the calls (benchmarks/identical_files.py times it)."""
    small_calls, small = _calls_to_index_identical_files(tmp_path / "small", 150)
    large_calls, large = _calls_to_index_identical_files(tmp_path / "large", 300)
    assert (large.copied, len(large.skipped)) == (300, 300) and (small.copied, len(small.skipped)) == (150, 150)
    assert {s.reason for s in large.skipped} == {"empty file"}
    assert large_calls < 2.3 * small_calls, (small_calls, large_calls)

    # A copy finds its content's indexed file through an index, never by scanning every file.
    from smartcli.store.catalog import Store

    with Store.open(tmp_path / "large" / "store") as store:
        plan = store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM files WHERE sha256 = ? AND status = 'indexed' AND path != ? ORDER BY id LIMIT 1", ("x", "y")
        ).fetchall()
    assert "USING INDEX files_by_content (sha256=? AND status=?)" in str(plan), plan


def test_files_without_pages_are_committed_in_batches_not_all_at_the_end(tmp_path):
    """Issue 26 item 5: 100,000 empty files made one batch that was committed only at the run's
    end. A file of no pages (skipped) counts one page toward the batch."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(30):
        (docs / f"broken-{i:02d}.pdf").write_bytes(b"not a pdf %d" % i)  # each its own content: each read
    from smartcli import Index, UpdateEvents, UpdateOptions

    commits = []

    class Events(UpdateEvents):
        wants_progress = True

        def committed(self, files, pages, encoded, total_pages):
            commits.append(files)

    summary = Index.open(tmp_path / "store", create=True).update([docs], UpdateOptions(ocr="never", batch_pages=8), events=Events())
    assert len(summary.skipped) == 30
    assert len(commits) == 4, commits  # 8 + 8 + 8 + 6 files


def _segments(store: Path) -> set[str]:
    return {p.name for p in (store / SEGMENT_DIR).glob("*.h5")}


def _rebuild_killed_after_a_segment(docs: Path, store: Path) -> set[str]:
    """Start `smart index --rebuild`, kill -9 it once it wrote a segment; the segments it left."""
    before = _segments(store)
    command = [sys.executable, "-m", "smartcli", "index", str(docs), "--store", str(store), "--ocr", "never", "--batch-pages", "2"]
    smart = subprocess.Popen([*command, "--rebuild"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=ENV)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and smart.poll() is None and not {s for s in _segments(store) - before if s.startswith("seg-")}:
            time.sleep(0.02)
        assert smart.poll() is None, "the rebuild ended before it could be killed"
        smart.send_signal(signal.SIGKILL)
        smart.wait(timeout=60)
    finally:
        smart.kill()
    return _segments(store) - before


def test_a_killed_rebuilds_segments_are_removed_by_the_next_run_of_any_kind(tmp_path):
    """Issue 26 item 13: segments written by a killed `--rebuild` stayed until a later rebuild
    completed; a rebuild killed again and again piled them up."""
    from tests.corpus import make_many_pdfs

    docs, store = tmp_path / "docs", tmp_path / "store"
    make_many_pdfs(docs, 40, seed=26, max_pages=2)
    run_smart_process("index", docs, "--store", store, "--ocr", "never", env=ENV, check=True)
    first = _rebuild_killed_after_a_segment(docs, store)
    assert first
    second = _rebuild_killed_after_a_segment(docs, store)  # a later rebuild, killed as well
    assert second and not (first & _segments(store)), "the first killed rebuild's segments are still there"
    run_smart_process("status", "--store", store, "--verify", env=ENV, check=True)
    # A later run of another kind (here a compaction) removes the second's.
    run_smart_process("compact", "--store", store, env=ENV, check=True)
    assert not (second & _segments(store))
    with sqlite3.connect(store / CATALOG) as conn:
        named = {f"{r[0]}.h5" for r in conn.execute("SELECT name FROM segments UNION SELECT name FROM retired_segments")}
    assert _segments(store) <= named
