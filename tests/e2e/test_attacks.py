"""Issue 13: hostile files, full disks and flipped bits. Each test failed before its fix."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from smartcli import defaults
from tests.attacks import text_bomb, text_page, xobject_bomb
from tests.conftest import copy_store, run_smart, run_smart_process


def test_a_pdf_whose_text_never_ends_is_skipped_remembered_and_the_rest_committed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    xobject_bomb(docs / "a-bomb.pdf")  # read first: before the fix the run never got past it
    text_page(docs / "b-good.pdf", "sourdough starter feeding schedule")
    store = tmp_path / "store"

    started = time.monotonic()
    first = run_smart_process("index", docs, "--store", store, "--ocr", "never", "--read-timeout", "10", "--json")
    assert first.returncode == 3, first.stderr
    assert "Traceback" not in first.stderr
    summary = json.loads(first.stdout)
    assert summary["added"] == 1
    assert [(s["path"].rsplit("/", 1)[1], s["reason"]) for s in summary["skipped"]] == [("a-bomb.pdf", "took longer than 10 s to read")]
    assert f"smart: skipped {docs / 'a-bomb.pdf'}: took longer than 10 s to read" in first.stderr
    assert time.monotonic() - started < 240
    with sqlite3.connect(store / "catalog.sqlite") as conn:  # stored as a code, not the sentence
        assert conn.execute("SELECT reason, reason_detail FROM files WHERE status = 'skipped'").fetchall() == [
            ("read_timeout", "10 s to read")
        ]

    hits = run_smart_process("search", "sourdough", "--store", store, "--json", check=True)
    assert "b-good.pdf" in hits.stdout

    # The next run does not read it again (it would hang for the deadline once more).
    again = run_smart_process("index", docs, "--store", store, "--ocr", "never", "--read-timeout", "30", "--json")
    assert again.returncode == 3
    reason = json.loads(again.stdout)["skipped"][0]["reason"]
    assert reason.startswith("took longer than 10 s to read") and "not read again until the file changes" in reason


def test_a_text_bomb_page_is_cut_to_the_page_caps_with_a_warning_naming_it(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    bomb = text_bomb(docs / "harbor.pdf")
    assert bomb.stat().st_size < 10_000
    store = tmp_path / "store"
    result = run_smart("index", docs, "--store", store, "--ocr", "never", "--json")
    assert result.returncode == 0, result.stderr
    assert f"page 1 of {bomb}: text cut to its first {defaults.MAX_PAGE_CHARS:,} of 4,724,999 characters" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["pages_encoded"] == 1
    assert 0 < summary["tokens_encoded"] <= defaults.MAX_PAGE_TOKENS

    from smartcli.store.catalog import Store, reads

    with Store.open(store) as opened:
        (item,) = reads.live_items(opened)
    assert len(item.text) == defaults.MAX_PAGE_CHARS


def test_token_states_of_one_page_are_capped_with_a_warning(encoder, monkeypatch):
    from smartcli.ingest.indexer import _capped
    from smartcli.store.catalog import PageRecord

    (encoded,) = encoder.encode_documents(["harbor lights " * 400])
    assert encoded.tokens.shape[0] > 300
    monkeypatch.setattr(defaults, "MAX_PAGE_TOKENS", 300)
    said = []
    capped = _capped(encoded, "/docs/x.pdf", PageRecord(7, "...", None), said.append)
    assert capped.tokens.shape == (300, encoded.tokens.shape[1])
    assert capped.token_ids.shape == (300,) and capped.spans.shape == (300, 2)
    assert said == [f"page 7 of /docs/x.pdf: {encoded.tokens.shape[0]:,} token states, only the first 300 kept"]


# -- full disks, read-only mounts (a small tmpfs; skipped where this process cannot mount) ------


@pytest.fixture
def small_disk(tmp_path):
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip() or made.returncode}); needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk, leave_bytes: int):
    """Fill ``disk`` until only about ``leave_bytes`` are free; returns the filler file."""
    import os

    filler = disk / "filler"
    st = os.statvfs(disk)
    size = max(0, st.f_bavail * st.f_frsize - leave_bytes)
    with open(filler, "wb") as f:
        try:
            f.write(b"\0" * size)
        except OSError:
            pass
    return filler


def notes(folder, count, start=0):
    folder.mkdir(exist_ok=True)
    for i in range(start, start + count):
        text_page(folder / f"note{i}.pdf", f"note {i}: harbor tides, ferry timetable {i}")
    return folder


def test_a_full_disk_is_one_line_and_exit_7_nothing_half_committed_and_the_next_run_resumes(small_disk, tmp_path):
    docs = notes(tmp_path / "docs", 2)
    store = small_disk / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    notes(docs, 3, start=2)
    filler = fill(small_disk, 50 * 1024)

    # A real process: before the fix, h5py running out of space crashed it (exit 139).
    full = run_smart_process("index", docs, "--store", store, "--ocr", "never")
    assert full.returncode == 7, (full.returncode, full.stderr)
    # One line besides the plain progress lines a run of more than a few seconds prints on a pipe.
    lines = [line for line in full.stderr.strip().splitlines() if " pages done (" not in line]
    assert len(lines) == 1 and lines[0].startswith(f"smart: no space left on the disk of the store at {store}"), full.stderr
    assert "rebuild" not in full.stderr and "damaged" not in full.stderr
    # Still searchable, still whole: the old pages, nothing half-committed.
    assert searched_files(store) == ["note0.pdf", "note1.pdf"]
    status = run_smart("status", "--store", store, "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["store_problems"] == []

    # --rebuild on a full disk must not destroy the store it could not replace.
    rebuilt = run_smart("index", docs, "--store", store, "--ocr", "never", "--rebuild")
    assert rebuilt.returncode == 7, rebuilt.stderr
    assert searched_files(store) == ["note0.pdf", "note1.pdf"]

    filler.unlink()
    resumed = run_smart("index", docs, "--store", store, "--ocr", "never", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["added"] == 3


@pytest.mark.parametrize("free_kb", [0, 400])
def test_a_disk_with_no_room_or_a_little_room_is_exit_7_too(small_disk, tmp_path, free_kb):
    docs = notes(tmp_path / "docs", 1)
    store = small_disk / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    notes(docs, 40, start=1)
    fill(small_disk, free_kb * 1024)
    full = run_smart("index", docs, "--store", store, "--ocr", "never")
    assert full.returncode == 7, full.stderr
    assert "no space left on the disk" in full.stderr and "damaged" not in full.stderr
    assert searched_files(store) == ["note0.pdf"]


def searched_files(store) -> list[str]:
    found = run_smart("search", "ferry timetable", "--store", store, "--json", "-k", "50")
    assert found.returncode == 0, found.stderr
    return sorted(r["file"] for r in json.loads(found.stdout)["results"])


def test_a_store_on_a_read_only_mount_is_searched_and_refuses_changes_with_its_own_exit_code(small_disk, tmp_path):
    import subprocess

    docs = notes(tmp_path / "docs", 2)
    store = small_disk / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)

    found = run_smart_process("search", "ferry timetable", "--store", store, "--json")  # a real process opens the catalog afresh
    assert found.returncode == 0, found.stderr
    assert {r["file"] for r in json.loads(found.stdout)["results"]} == {"note0.pdf", "note1.pdf"}
    assert run_smart("status", "--store", store).returncode == 0
    changed = run_smart("index", docs, "--store", store, "--ocr", "never")
    assert changed.returncode == 8, changed.stderr
    assert "read-only file system" in changed.stderr and "damaged" not in changed.stderr and "rebuild" not in changed.stderr


def test_files_of_an_unmounted_subfolder_are_not_removed(small_disk, tmp_path):
    import subprocess

    docs = tmp_path / "docs"
    notes(docs, 1)
    usb = docs / "usb"
    usb.mkdir()
    subprocess.run(["mount", "--bind", str(small_disk), str(usb)], check=True)
    try:
        notes(usb, 4, start=1)
        store = tmp_path / "store"
        run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    finally:
        subprocess.run(["umount", str(usb)], check=True)
    assert list(usb.iterdir()) == []

    again = run_smart("index", docs, "--store", store, "--ocr", "never", "--json")
    assert again.returncode == 3, again.stderr
    summary = json.loads(again.stdout)
    assert summary["removed"] == 0
    assert [(s["path"], s["code"], s["reason"]) for s in summary["skipped"]] == [
        (
            str(usb),
            "not_mounted",
            "was a mounted file system when indexed and that file system is not mounted there now; its files stay in the index",
        )
    ]
    assert searched_files(store) == [f"note{i}.pdf" for i in range(5)]


def test_a_folder_1500_levels_deep_is_skipped_past_the_depth_limit_and_the_rest_indexed(tmp_path):
    import os

    from smartcli.ingest.discovery import discover

    top = tmp_path / "deep"
    top.mkdir()
    text_page(top / "top.pdf", "top")
    fd = os.open(top, os.O_RDONLY)
    for _ in range(1500):
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(fd)
    try:
        found, skipped = discover([top])
        assert [f.path for f in found] == [str(top / "top.pdf")]
        (deepest,) = skipped
        assert deepest.reason == f"more than {defaults.MAX_DIRECTORY_DEPTH} folders deep; not searched" and deepest.unlisted
        assert deepest.path == str(top) + "/d" * (defaults.MAX_DIRECTORY_DEPTH + 1)
    finally:
        _remove_deep(top / "d")


def _remove_deep(path):
    """rmtree without recursion (Python 3.11's recurses once per level)."""
    import os

    depth = 0
    while (path / "d").exists():
        path, depth = path / "d", depth + 1
    while depth >= 0:
        os.rmdir(path)
        path, depth = path.parent, depth - 1


def test_a_folder_that_is_not_a_store_is_refused_and_a_users_file_never_deleted(tmp_path):
    import sqlite3

    docs = notes(tmp_path / "docs", 1)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "catalog.sqlite") as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    before = (foreign / "catalog.sqlite").read_bytes()
    for args in ((), ("--rebuild",)):
        refused = run_smart("index", docs, "--store", foreign, "--ocr", "never", *args)
        assert refused.returncode == 10, refused.stderr
        assert f"{foreign} is not empty and is not a smart store" in refused.stderr
    assert (foreign / "catalog.sqlite").read_bytes() == before
    assert sorted(p.name for p in foreign.iterdir()) == ["catalog.sqlite"]

    # A file of the user's in a store's segments folder is not a leftover to delete.
    store = tmp_path / "store"
    (store / "segments").mkdir(parents=True)
    (store / "segments" / "experiment1.h5").write_bytes(b"mine")
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    run_smart("index", docs, "--store", store, "--ocr", "never", "--rebuild", check=True)
    assert (store / "segments" / "experiment1.h5").read_bytes() == b"mine"
    assert json.loads((store / "smart-store.json").read_text())["format"] == "smart-store"


def test_compact_on_a_full_disk_is_exit_7_one_line_the_store_whole_and_it_works_once_space_is_back(small_disk, tmp_path):
    docs = notes(tmp_path / "docs", 4)
    store = small_disk / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    (docs / "note0.pdf").unlink()
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)  # 1 of 4 rows dead: no compaction of its own
    filler = fill(small_disk, 50 * 1024)

    # A real process: before the fix, compaction with 500 KB free printed 32 h5py tracebacks.
    full = run_smart_process("compact", "--store", store)
    assert full.returncode == 7, (full.returncode, full.stderr)
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"smart: no space left on the disk of the store at {store}"), full.stderr
    assert "rebuild" not in full.stderr and "damaged" not in full.stderr
    assert searched_files(store) == ["note1.pdf", "note2.pdf", "note3.pdf"]
    verified = run_smart("status", "--store", store, "--verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["verify"]["damaged"] == []

    filler.unlink()
    again = run_smart("compact", "--store", store, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["dead_rows_dropped"] == 1
    assert searched_files(store) == ["note1.pdf", "note2.pdf", "note3.pdf"]


def test_a_schema_2_store_on_a_read_only_mount_is_still_searched_and_verified(small_disk, tmp_path):
    """Schema 3 (segment identities, digests) only adds columns: a store of schema 2 that
    cannot be upgraded here is read without them rather than refused."""
    import sqlite3
    import subprocess

    docs = notes(tmp_path / "docs", 2)
    store = small_disk / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    conn = sqlite3.connect(store / "catalog.sqlite")  # back to schema 2, as an older smart left it
    conn.execute("ALTER TABLE segments DROP COLUMN uid")
    conn.execute("ALTER TABLE segments DROP COLUMN digests")
    conn.execute("ALTER TABLE items DROP COLUMN text_crc")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)

    assert searched_files(store) == ["note0.pdf", "note1.pdf"]
    verified = run_smart_process("status", "--store", store, "--verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["verify"]["damaged"] == []


def test_a_full_disk_under_the_qdrant_folder_is_named_as_that_disk_and_the_sync_resumes(small_disk, sample_store, tmp_path):
    """Issue 26, item 12: it was "no space left on the disk of the store" (the store's disk had room)."""
    pytest.importorskip("qdrant_client")
    store = copy_store(sample_store[0], tmp_path / "store")  # a sync records what Qdrant acknowledged
    folder = small_disk / "qdrant"
    filler = fill(small_disk, 40 * 1024)
    full = run_smart_process("sync", "--store", store, "--qdrant", folder)
    assert full.returncode == 7, full.stderr
    assert full.stderr.strip() == (
        f"smart: no space left on the disk of the Qdrant folder {folder}; free some space and run the same command again "
        "(it resumes where it stopped)"
    )
    filler.unlink()
    again = run_smart_process("sync", "--store", store, "--qdrant", folder, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["points"] == json.loads(run_smart("status", "--store", store, "--json").stdout)["encoded_items"]


def test_an_svg_of_nested_use_elements_is_skipped_at_the_deadline_even_when_its_pages_are_counted(tmp_path):
    """Issue 26 item 1: 15 levels of <use>, each drawing the one before four times (1.7 KB). The
    progress total's page count opened it in the indexing process, outside the reader's deadline
    and memory limit: still running at 400 s, 1.9 GB. Now it is counted in the reader's worker."""
    import subprocess
    import sys

    from tests.attacks import svg_use_bomb
    from tests.conftest import ROOT

    docs = tmp_path / "docs"
    docs.mkdir()
    bomb = svg_use_bomb(docs / "a-bomb.svg")
    assert bomb.stat().st_size < 2_000
    text_page(docs / "b-good.pdf", "sourdough starter feeding schedule")
    command = [sys.executable, "-m", "smartcli", "index", str(docs), "--store", str(tmp_path / "store"), "--ocr", "never"]
    try:
        ran = subprocess.run([*command, "--read-timeout", "5", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("smart index hung on the SVG of nested <use> elements")
    assert ran.returncode == 3, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["added"] == 1
    assert [(s["path"], s["reason"]) for s in summary["skipped"]] == [(str(bomb), "took longer than 5 s to read")]
    # Refused while its pages were counted: not read a second time in the same run, nor in the next.
    assert ran.stderr.count("a-bomb.svg") == 1, ran.stderr
    again = subprocess.run([*command, "--json"], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert "not read again until the file changes" in json.loads(again.stdout)["skipped"][0]["reason"]


def test_an_svg_that_links_an_image_is_indexed_with_mupdfs_message_as_its_warning_and_json_stays_valid(tmp_path):
    """Issue 26 item 4: MuPDF prints `svg: ignoring external image ...` on stdout, which was the
    reader's message pipe: the parent waited out the deadline and skipped the file on every run,
    and the line landed on `smart index --json`'s stdout (the page count read it in process)."""
    from tests.attacks import svg_linking_an_image

    docs = tmp_path / "docs"
    docs.mkdir()
    linked = [svg_linking_an_image(docs / f"chart-{i}.svg", f"harbor tides chart number {i}") for i in range(3)]
    result = run_smart_process("index", docs, "--store", tmp_path / "store", "--ocr", "never", "--read-timeout", "20", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # stdout holds the summary and nothing else
    assert (summary["added"], summary["skipped"], summary["pages_encoded"]) == (3, [], 3)
    for path in linked:  # each file's own warning, though MuPDF says the same for each
        assert f"smart: {path}: svg: ignoring external image 'file:///etc/hostname'" in result.stderr.splitlines(), result.stderr
    hits = run_smart_process("search", "harbor tides chart", "--store", tmp_path / "store", "--json", check=True)
    assert len(json.loads(hits.stdout)["results"]) == 3
