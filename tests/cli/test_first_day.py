"""Frictions of a first day with `smart` (issue 14): typos, a bare `smart index`, qids echoed as sent."""

import json
import sqlite3

import pytest

from tests.conftest import run_smart, run_smart_process
from tests.corpus import make_pdf


def test_a_path_that_does_not_exist_is_an_error_recorded_nowhere(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", ["the anchor of the boat"])
    new_store = tmp_path / "new-store"
    typo = run_smart_process("index", tmp_path / "dosc", "--store", new_store)
    assert typo.returncode == 2, typo.stderr
    assert "dosc: no such file or directory" in typo.stderr and "Traceback" not in typo.stderr
    assert not new_store.exists()  # a failed first run leaves no empty store behind

    store = tmp_path / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    typo = run_smart("index", docs, tmp_path / "dosc", "--store", store, "--ocr", "never")
    assert typo.returncode == 2 and "dosc" in typo.stderr
    with sqlite3.connect(store / "catalog.sqlite") as conn:
        roots = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'roots'").fetchone()[0])
    assert roots == [str(docs)]
    # A folder the store indexed that is gone now is no typo: its files are removed.
    (docs / "a.pdf").unlink()
    docs.rmdir()
    gone = run_smart("index", docs, "--store", store, "--json")
    assert json.loads(gone.stdout)["removed"] == 1 and gone.returncode == 3, gone.stderr  # 3: the missing folder is reported


def test_index_without_paths_updates_what_the_store_covers(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", ["the anchor of the boat"])
    store = tmp_path / "store"
    none_yet = run_smart("index", "--store", store)
    assert none_yet.returncode == 2 and "smart index PATH" in none_yet.stderr
    assert not store.exists()
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    make_pdf(docs / "b.pdf", ["a kettle on the stove"])
    again = run_smart("index", "--store", store, "--ocr", "never", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert (summary["added"], summary["unchanged"]) == (1, 1)


def test_qids_come_back_with_their_json_type_errors_included(sample_store):
    store, _ = sample_store
    queries = "\n".join(
        [
            json.dumps({"qid": 7, "query": "tyre pressure"}),
            json.dumps({"qid": "7", "query": "tyre pressure"}),
            json.dumps({"qid": 8}),
            json.dumps({"qid": 9.5, "query": "  "}),
        ]
    )
    result = run_smart("search", "--queries", "-", "--store", store, "-k", "1", input=queries)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["qid"] for line in lines] == [7, "7", 8, 9.5]
    assert [bool(line.get("error")) for line in lines] == [False, False, True, True]


def test_a_model_that_is_not_on_disk_fails_at_once_and_leaves_no_store(tmp_path):
    import os
    import time

    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", ["the anchor of the boat"])
    new_store = tmp_path / "new-store"
    env = {k: "" for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if k in os.environ}
    started = time.monotonic()
    wrong = run_smart_process("index", docs, "--store", new_store, "--model", "foo/bar-not-a-model", "--ocr", "never", env=env)
    assert wrong.returncode == 1, wrong.stderr
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1 and "not on disk" in lines[0] and "Retry" not in wrong.stderr, wrong.stderr
    assert not new_store.exists()
    assert time.monotonic() - started < 120  # no network retries (they took 73 s by themselves)


def test_another_model_than_the_stores_is_refused_before_it_is_looked_for(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", ["the anchor of the boat"])
    store = tmp_path / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    make_pdf(docs / "b.pdf", ["a kettle on the stove"])
    other = run_smart("index", docs, "--store", store, "--model", "openai/clip-vit-base-patch32", "--ocr", "never")
    assert other.returncode == 6 and "was built with model" in other.stderr, other.stderr
    assert run_smart("index", docs, "--store", store, "--dry-run", "--json").stdout.count("b.pdf") == 1  # nothing changed


def test_a_copied_file_is_one_hit_that_lists_the_other_paths(tmp_path):
    import shutil

    docs = tmp_path / "docs"
    (docs / "backup").mkdir(parents=True)
    make_pdf(docs / "boat.pdf", ["the anchor of the boat holds in the harbor", "a kettle on the stove"])
    shutil.copy(docs / "boat.pdf", docs / "backup" / "boat.pdf")
    make_pdf(docs / "other.pdf", ["an orchard of pepper trees in the valley"])
    store = tmp_path / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    answer = json.loads(run_smart("search", "anchor in the harbor", "--store", store, "-k", "3", "--json", check=True).stdout)
    results = answer["results"]
    # Without the copy shown once, the two copies of page 1 were hits 1 and 2 with the same score.
    assert (results[0]["file"], results[0]["page"]) == ("boat.pdf", 1)
    assert sorted((r["file"], r["page"]) for r in results) == [("boat.pdf", 1), ("boat.pdf", 2), ("other.pdf", 1)]
    paths = {str(docs / "boat.pdf"), str(docs / "backup" / "boat.pdf")}
    for r in results:
        if r["file"] == "boat.pdf":
            assert {r["path"], *r["also"]} == paths and len(r["also"]) == 1
        else:
            assert "also" not in r


def test_like_takes_a_base_name_or_path_suffix_when_it_names_one_indexed_file(tmp_path, monkeypatch):
    from smartcli import Index

    docs = tmp_path / "docs"
    (docs / "manuals").mkdir(parents=True)
    (docs / "notes").mkdir()
    make_pdf(docs / "manuals" / "graphs.pdf", ["plotting a graph with axes and labels", "colours of the bars in a chart"])
    make_pdf(docs / "notes" / "graphs.pdf", ["graph theory: vertices, edges and shortest paths"])
    make_pdf(docs / "other.pdf", ["bar charts and pie charts for a report"])
    store = tmp_path / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    monkeypatch.chdir(tmp_path)  # none of the names below is a file here

    by_name = run_smart("search", "--like", "other.pdf:1", "--store", store, "--json", check=True)
    assert json.loads(by_name.stdout)["like"] == {"path": str(docs / "other.pdf"), "page": 1}
    by_suffix = run_smart("search", "--like", "manuals/graphs.pdf:2", "--store", store, "--json", check=True)
    answer = json.loads(by_suffix.stdout)
    assert answer["like"] == {"path": str(docs / "manuals" / "graphs.pdf"), "page": 2}
    assert (str(docs / "manuals" / "graphs.pdf"), 2) not in {(r["path"], r["page"]) for r in answer["results"]}

    ambiguous = run_smart("search", "--like", "graphs.pdf:1", "--store", store)
    assert ambiguous.returncode == 2 and ambiguous.stdout == ""
    (line,) = ambiguous.stderr.strip().splitlines()
    assert str(docs / "manuals" / "graphs.pdf") in line and str(docs / "notes" / "graphs.pdf") in line
    missing = run_smart("search", "--like", "charts.pdf:1", "--store", store)
    assert missing.returncode == 2 and "not in the index" in missing.stderr

    with Index.open(store) as index:  # the library takes the same names
        assert index.item("notes/graphs.pdf", 1).path == str(docs / "notes" / "graphs.pdf")


def test_every_commands_help_shows_readable_placeholders_and_none_after_a_flag():
    import re

    from typer.main import get_command

    from smartcli.cli import app

    commands = sorted(get_command(app).commands)
    assert {"index", "search", "status", "eval", "compact", "serve", "tune", "sync"} <= set(commands)
    for command in ["", *commands]:
        shown = run_smart(*([command] if command else []), "--help", env={"COLUMNS": "200"})
        assert shown.returncode == 0, (command, shown.stderr)
        assert not re.search(r"<(bool|str|int|float|path|list)", shown.stdout), (command, shown.stdout)
        flags = re.findall(r"│ +(--[a-z-]+) +(?:-\w +)?(\S*)", shown.stdout)
        assert ("--help", "Show") in flags, (command, flags)  # nothing between a flag and its help
    search = run_smart("search", "--help", env={"COLUMNS": "200"}).stdout
    for option, placeholder in (("--store", "DIR"), ("--queries", "FILE"), ("--mode", "smart|pooled|late"), ("--explain", "Show,")):
        assert re.search(rf"{option} +(?:-\w +)?{re.escape(placeholder)}", search), (option, search)
    assert re.search(r"--top-k +-k +N \[x>=1\]", search) and re.search(r"│ +QUERY +The query text", search)


def test_compact_says_the_store_grows_for_its_grace_period_with_the_size_now_and_after(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        make_pdf(docs / f"d{i}.pdf", [f"page {j} of document {i} about boats and harbors" for j in range(3)])
    store = tmp_path / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    make_pdf(docs / "d0.pdf", [f"page {j} of a rewritten document about kettles" for j in range(3)])  # 3 dead rows of 15
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    before = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)["bytes"]

    summary = json.loads(run_smart("compact", "--store", store, "--json", check=True).stdout)
    assert summary["dead_rows_dropped"] == 3 and summary["bytes_before"] == before
    assert summary["bytes"] > summary["bytes_before"] > summary["bytes_after_grace"]  # grows, then shrinks
    assert summary["grace_seconds"] == 600
    assert json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)["bytes"] == summary["bytes"]

    again = run_smart("compact", "--store", store, check=True).stdout  # nothing left, old segments still kept
    assert again.startswith("nothing to compact") and "kept 10 minutes" in again

    monkeypatch.setattr("smartcli.store.catalog.retirement.SEGMENT_GRACE_SECONDS", -1)  # the grace period over
    assert run_smart("compact", "--store", store, check=True).stdout == "nothing to compact\n"  # and the old segments deleted
    after = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    assert after["retired_segments"] == 0 and after["bytes"] < summary["bytes"]


def test_compact_summary_in_words():
    from smartcli.cli.compact_cmd import grace_line
    from smartcli.store.compaction import CompactionResult

    result = CompactionResult(bytes=42 * 2**20, store_bytes_before=34 * 2**20, bytes_after_grace=30 * 2**20, grace_seconds=600)
    assert grace_line(result) == (
        "the store is 42.0 MB now (it was 34.0 MB): the old segments are kept 10 minutes for searches already "
        "running, then the next `smart index` or `smart compact` deletes them, leaving 30.0 MB"
    )


def test_status_unencoded_lists_the_pages_without_vectors_and_why(tmp_path, sample_store):
    from smartcli import Index, Note

    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "gaps.pdf", ["the anchor of the boat", "", "", "a kettle on the stove", ""])
    make_pdf(docs / "full.pdf", ["an orchard of pepper trees"])
    store = tmp_path / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)

    # Empty pages that draw nothing are blank_page (no OCR could read them either).
    with Index.open(store) as index:  # the library first: codes, by path and page
        pages = index.unencoded()
    assert [(p.path, p.page, p.note) for p in pages] == [(str(docs / "gaps.pdf"), n, Note.BLANK_PAGE) for n in (2, 3, 5)]

    status = run_smart("status", "--store", store, check=True).stdout
    assert "3 page holds no words and no picture" in status and "--unencoded" in status
    listed = run_smart("status", "--store", store, "--unencoded", env={"COLUMNS": "300"}, check=True)
    assert listed.stdout.splitlines() == [
        f"{docs / 'gaps.pdf'}:2-3  page holds no words and no picture",
        f"{docs / 'gaps.pdf'}:5  page holds no words and no picture",
    ]
    data = json.loads(run_smart("status", "--store", store, "--unencoded", "--json", check=True).stdout)
    assert data["store"] == str(store)
    assert [(r["page"], r["note"], r["reason"]) for r in data["unencoded"]] == [
        (n, "blank_page", "page holds no words and no picture") for n in (2, 3, 5)
    ]

    sample, corpus = sample_store  # images indexed by a text model: one line each, no page
    images = run_smart("status", "--store", sample, "--unencoded", env={"COLUMNS": "300"}, check=True).stdout.splitlines()
    assert images and all(line.endswith("  image: no text for a text model") and ":1 " not in line for line in images)
    assert {line.split("  ")[0] for line in images} == {str(p) for p in (corpus / "photos").iterdir() if p.suffix in (".jpg", ".png")}


def test_a_path_with_a_nul_byte_is_a_page_not_in_the_index_not_a_crash(sample_store):
    """An agent's get_page or similar call may carry any string: one with a NUL byte names no file
    (os.path.realpath raised ValueError, an MCP client got an error with no reason)."""
    from smartcli import ErrorKind, Index, SmartError

    store, corpus = sample_store
    with Index.open(store) as index:
        for path in ("\x00", f"{corpus}/houseplants.pdf\x00", "house\x00plants.pdf"):
            with pytest.raises(SmartError) as caught:
                index.item(path, 1)
            assert caught.value.kind is ErrorKind.NOT_FOUND and "not in the index" in str(caught.value)
            with pytest.raises(SmartError):
                index.like(path, page=1)
