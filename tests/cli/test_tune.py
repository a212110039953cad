"""`smart tune` on the sample corpus (whose PDFs have outlines): the adapter is stored, used by
search, kept through incremental indexing and compaction, removed by --reset; the guard rail."""

import json
import shutil

import pymupdf
import pytest

from smartcli import Index
from tests.conftest import copy_store, run_smart


@pytest.fixture
def tuned_copy(sample_store, tmp_path):
    store, corpus = sample_store
    copy_corpus = tmp_path / "corpus"
    shutil.copytree(corpus, copy_corpus)
    return copy_store(store, tmp_path / "store"), copy_corpus


def late_scores(store, query, tuned=True):
    with Index.open(store, tuned=tuned) as index:
        return {(h.path, h.page): round(h.late, 6) for h in index.search(query, k=20, mode="late")}


def test_tune_stores_an_adapter_search_uses_it_it_survives_index_and_compact_and_reset_removes_it(tuned_copy):
    store, corpus = tuned_copy
    query = "how do I keep the bread dough from sticking"
    untuned = late_scores(store, query)

    ran = run_smart("tune", "--store", store, "--adapter", "--keep", "--json", check=True)
    summary = json.loads(ran.stdout)
    assert summary["kept"] == "adapter"
    assert summary["pairs"]["outline"]["pairs"] == 13 and summary["pairs"]["outline"]["with_outline"] == 5
    assert summary["pairs"]["used"] == summary["pairs"]["train"] + summary["pairs"]["held_back"] == 13
    assert {"untuned", "weights", "adapter"} <= set(summary["held_back"]) and summary["epochs"] >= 1
    assert "13 pairs from the outlines of 5 of 5 PDFs" in ran.stderr

    status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)["tuning"]
    assert status["variant"] == "query" and (store / status["adapter"]).is_file()
    tuned = late_scores(store, query)
    assert tuned.keys() == untuned.keys() and tuned != untuned  # the adapter maps the query's tokens
    assert late_scores(store, query, tuned=False) == untuned
    assert "query adapter and weights" in run_smart("status", "--store", store, check=True).stdout

    # A new outlined PDF indexed incrementally, then a compaction: the tuning stays and is used.
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 90), "Proofing baskets are dusted with rice flour so the dough does not stick.")
    doc.set_toc([[1, "Proofing baskets", 1]])
    doc.save(corpus / "hobbies" / "baskets.pdf")
    (corpus / "houseplants.pdf").unlink()
    run_smart("index", corpus, "--store", store, "--ocr", "never", check=True)
    run_smart("compact", "--store", store, check=True)
    after = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    assert after["tuning"] == status and after["garbage_rows"] == 0
    scores = late_scores(store, query)
    assert scores != late_scores(store, query, tuned=False)

    ran = run_smart("tune", "--store", store, "--reset", check=True)
    assert "back to the frozen model" in ran.stdout
    assert json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)["tuning"] is None
    assert late_scores(store, query) == late_scores(store, query, tuned=False)
    assert "not tuned" in run_smart("tune", "--store", store, "--reset", check=True).stdout


def test_tune_keeps_the_untuned_state_when_held_back_pairs_do_not_improve(tuned_copy):
    store, _ = tuned_copy
    # The sample corpus is easy: the untuned search already ranks every held-back heading's page first.
    ran = run_smart("tune", "--store", store)
    assert ran.returncode == 0, ran.stderr
    assert "stays untuned" in ran.stdout and "held back, untuned:        nDCG@10 1.0000" in ran.stdout
    assert json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)["tuning"] is None


def test_user_pairs_and_their_errors(tuned_copy, tmp_path):
    store, _ = tuned_copy
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "tyres", "file": "bicycle-maintenance.pdf", "page": 1}\n{"query": "x"}\n')
    ran = run_smart("tune", "--store", store, "--pairs", bad)
    assert ran.returncode == 2 and f"{bad}:2: needs" in ran.stderr and "Traceback" not in ran.stderr
    assert run_smart("tune", "--store", store, "--no-outline").returncode == 2

    pairs = tmp_path / "pairs.jsonl"
    lines = [
        {"query": "pump up the tyres", "file": "bicycle-maintenance.pdf", "page": 1},
        {"query": "nowhere", "file": "missing.pdf", "page": 1},
    ]
    pairs.write_text("\n".join(map(json.dumps, lines)) + "\n")
    ran = run_smart("tune", "--store", store, "--pairs", pairs, "--no-outline")
    assert ran.returncode == 2 and "1 usable pairs" in ran.stderr and "--pairs" in ran.stderr
    ran = run_smart("tune", "--store", store, "--pairs", pairs, "--json", check=True)
    summary = json.loads(ran.stdout)
    assert summary["pairs"]["user"] == {"lines": 2, "matched": 1, "unmatched": 1, "pairs": 1}
    assert summary["pairs"]["used"] == 14


def test_tune_body_adds_pseudo_queries_cut_from_the_pages(tuned_copy):
    store, _ = tuned_copy
    ran = run_smart("tune", "--store", store, "--body", "--json", check=True)
    summary = json.loads(ran.stdout)
    body, outline = summary["pairs"]["body"]["pairs"], summary["pairs"]["outline"]["pairs"]
    assert body > 0 and summary["pairs"]["used"] == outline + body
    assert f"{body} pseudo-queries cut from the text of" in ran.stderr
    ran = run_smart("tune", "--store", store, "--body", "--no-outline", "--json")
    if body >= 8:
        assert ran.returncode == 0 and json.loads(ran.stdout)["pairs"]["used"] == body
    else:  # too few to tune on: a clear error, no traceback
        assert ran.returncode == 2 and "usable pairs" in ran.stderr and "Traceback" not in ran.stderr
