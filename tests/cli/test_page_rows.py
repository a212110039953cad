"""Issue 26, item 11: a page's `row` in the catalog that is damaged is found by the integrity check:
the cheap one on every open (out of range, NULL, not a number: search says the store is damaged,
exit 1, never IndexError), the thorough one (`--verify`) also a row in range written for another
page. Copies, moves, changes and compaction never make a healthy store look damaged."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest

from tests.conftest import copy_store, run_smart

PAGE = "page 2 of"


def set_row(store, value) -> str:
    """Page 2 of the bicycle manual points at ``value``; returns the file's path."""
    with sqlite3.connect(store / "catalog.sqlite") as conn:
        item, path = conn.execute(
            "SELECT items.id, files.path FROM items JOIN files ON files.id = items.file_id "
            "WHERE CAST(files.path AS TEXT) LIKE '%bicycle-maintenance.pdf' AND items.page = 2"
        ).fetchone()
        conn.execute("UPDATE items SET row = ? WHERE id = ?", (value, item))
    return os.fsdecode(path)


@pytest.mark.parametrize("value", [1_000_000, -1, "x", None, 2.5], ids=repr)
def test_a_row_that_is_no_row_of_its_segment_is_damage_in_both_modes(sample_store, tmp_path, value):
    store = copy_store(sample_store[0], tmp_path / "store")
    path = set_row(store, value)

    verified = run_smart("status", "--verify", "--store", store, "--json")
    assert verified.returncode == 1
    damaged = json.loads(verified.stdout)["verify"]["damaged"]
    assert [(d["part"], d["dataset"]) for d in damaged] == [("catalog", f"row of {PAGE} {path}")]
    assert damaged[0]["problem"].startswith(f"is {value!r}, not one of the ")

    searched = run_smart("search", "brakes", "--store", store)
    assert searched.returncode == 1
    assert searched.stderr.startswith(f"smart: the store at {store} is damaged: row of {PAGE} {path}: is {value!r}")
    assert "smart index --rebuild" in searched.stderr
    if value != 2.5:  # a real number inside the range is past what the cheap check reads; --verify names it
        plain = run_smart("status", "--store", store)
        assert plain.returncode == 1 and f"row of {PAGE} {path}" in plain.stderr


def test_a_row_in_range_written_for_another_page_is_found_by_verify(sample_store, tmp_path):
    store = copy_store(sample_store[0], tmp_path / "store")
    with sqlite3.connect(store / "catalog.sqlite") as conn:
        (other,) = conn.execute(
            "SELECT items.row FROM items JOIN files ON files.id = items.file_id "
            "WHERE CAST(files.path AS TEXT) LIKE '%bicycle-maintenance.pdf' AND items.page = 1"
        ).fetchone()
    path = set_row(store, other)
    verified = run_smart("status", "--verify", "--store", store)
    assert verified.returncode == 1
    assert f"smart: damaged: the catalog: row of {PAGE} {path}: is {other}, which segment " in verified.stderr
    assert "wrote for page 1" in verified.stderr


def test_copies_moves_changes_and_compaction_stay_healthy(sample_store, tmp_path):
    _, corpus = sample_store
    docs = tmp_path / "docs"
    shutil.copytree(corpus, docs)
    store = tmp_path / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    shutil.copy(docs / "houseplants.pdf", docs / "hobbies" / "houseplants-copy.pdf")  # a copy shares rows
    os.rename(docs / "manuals" / "terminal-guide.pdf", docs / "terminal-guide.pdf")  # a move keeps them
    (docs / "hobbies" / "bicycle-maintenance.pdf").unlink()
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    assert run_smart("status", "--verify", "--store", store).returncode == 0
    run_smart("compact", "--store", store, check=True)
    verified = run_smart("status", "--verify", "--store", store, "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["verify"]["damaged"] == []
