"""Issue 13: hostile files, full disks and flipped bits. Each test failed before its fix."""

from __future__ import annotations

import json
import time

import pytest

from smartcli import defaults
from tests.attacks import text_bomb, text_page, xobject_bomb
from tests.conftest import run_smart, run_smart_process


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

    from smartcli.store.catalog import Store

    with Store.open(store) as opened:
        (item,) = opened.live_items()
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
