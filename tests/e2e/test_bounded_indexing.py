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

from smartcli.store.catalog import CATALOG, SEGMENT_DIR
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
    command = [sys.executable, "-m", "smartcli", "index", str(docs), "--store", str(store), "--ocr", "never", "--batch-pages", "8", "--json"]
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
