"""`smart index --qdrant`, `smart search --qdrant` and `smart sync` in process, on Qdrant's embedded engine."""

import json
import shutil

import pytest

pytest.importorskip("qdrant_client")

from tests.conftest import SAMPLE_CORPUS, run_smart  # noqa: E402


def test_index_search_and_sync_through_qdrant(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS / "hobbies", corpus)
    store, db = tmp_path / "store", tmp_path / "db"
    indexed = run_smart("index", corpus, "--store", store, "--ocr", "never", "--token-dtype", "float16", "--qdrant", db, "--collection", "c", "--json")
    assert indexed.returncode == 0, indexed.stderr
    summary = json.loads(indexed.stdout)
    assert summary["qdrant"]["upserted"] == summary["pages_encoded"] > 0
    for extra in ([], ["--mode", "late"], ["--glob", "*.pdf", "-k", "3"]):
        local = json.loads(run_smart("search", "tyre pressure", "--store", store, "--json", *extra, check=True).stdout)
        remote = json.loads(run_smart("search", "tyre pressure", "--qdrant", db, "--collection", "c", "--json", *extra, check=True).stdout)
        assert [(r["path"], r["page"], r["snippet"]) for r in local["results"]] == [(r["path"], r["page"], r["snippet"]) for r in remote["results"]]
        assert all(abs(a["score"] - b["score"]) < 1e-3 for a, b in zip(local["results"], remote["results"]))
    # A removed file leaves the collection with the next `smart index --qdrant`.
    gone = sorted(corpus.glob("*.pdf"))[0]
    gone.unlink()
    again = json.loads(run_smart("index", corpus, "--store", store, "--ocr", "never", "--qdrant", db, "--collection", "c", "--json", check=True).stdout)
    assert again["removed"] == 1 and again["qdrant"]["deleted"] > 0 and again["qdrant"]["upserted"] == 0
    files = run_smart("search", "tyre pressure", "--qdrant", db, "--collection", "c", "-l", "-k", "20", check=True).stdout
    assert str(gone) not in files
    synced = json.loads(run_smart("sync", "--store", store, "--qdrant", db, "--collection", "c", "--json", check=True).stdout)
    assert synced["upserted"] == synced["deleted"] == 0


def test_sync_needs_a_location_and_a_missing_collection_is_exit_4(tmp_path, monkeypatch):
    monkeypatch.delenv("SMART_QDRANT_URL", raising=False)
    result = run_smart("sync", "--store", tmp_path / "store")
    assert result.returncode == 2 and "--qdrant" in result.stderr
    result = run_smart("search", "anything", "--qdrant", tmp_path / "db", "--collection", "nope")
    assert result.returncode == 4 and "no Qdrant collection 'nope'" in result.stderr
