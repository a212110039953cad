"""`smart index --token-pooling`: Ward-pooled token states, kept in the store's settings and
used by every update of the store."""

import json
import shutil
import sqlite3

import numpy as np

from smartcli import Index
from smartcli.store.pooling import pool_tokens
from tests.conftest import SAMPLE_CORPUS, run_smart
from tests.unit.test_kernel import real_pages  # noqa: F401  (a fixture)


def test_pooled_real_pages_keep_fewer_unit_tokens_each_at_a_members_span(real_pages):  # noqa: F811
    pages, _ = real_pages
    for *_, encoded in pages:
        pooled = pool_tokens(encoded, 0.5)
        assert pool_tokens(encoded, 0) is encoded
        assert 0 < len(pooled.tokens) <= len(encoded.tokens) and pooled.tokens.shape[1] == encoded.tokens.shape[1]
        np.testing.assert_allclose(np.linalg.norm(pooled.tokens, axis=1), 1, atol=1e-5)
        assert {tuple(s) for s in pooled.spans.tolist()} <= {tuple(s) for s in encoded.spans.tolist()}
        assert (np.diff(pooled.spans[:, 0]) >= 0).all()  # in reading order
        np.testing.assert_array_equal(pooled.token_ids, encoded.token_ids)  # the postings see every word
        np.testing.assert_array_equal(pooled.pooled, encoded.pooled)
    total = sum(len(e.tokens) for *_, e in pages)
    assert sum(len(pool_tokens(e, 0.5).tokens) for *_, e in pages) < 0.9 * total


def token_counts(store) -> dict:
    with sqlite3.connect(store / "catalog.sqlite") as conn:
        rows = conn.execute(
            "SELECT files.path, items.page, items.n_tokens FROM items JOIN files ON files.id = items.file_id WHERE n_tokens > 0"
        )
        return {(bytes(path).decode().rsplit("/", 1)[-1], page): n for path, page, n in rows}


def test_a_pooled_store_keeps_its_pooling_for_updates_refuses_another_and_searches(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE_CORPUS / "houseplants.pdf", corpus)
    plain, pooled = tmp_path / "plain", tmp_path / "pooled"
    run_smart("index", corpus, "--store", plain, "--ocr", "never", check=True)
    run_smart("index", corpus, "--store", pooled, "--ocr", "never", "--token-pooling", "0.5", check=True)
    with sqlite3.connect(pooled / "catalog.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'token_pooling'").fetchone() == ("0.5",)
    extra = next(p for p in sorted(SAMPLE_CORPUS.rglob("*.pdf")) if p.name != "houseplants.pdf")
    shutil.copy(extra, corpus)
    for store in (plain, pooled):  # an update without the option: the store's setting
        run_smart("index", "--store", store, "--ocr", "never", check=True)
    before, after = token_counts(plain), token_counts(pooled)
    assert before.keys() == after.keys() and any(name == extra.name for name, _ in before)
    assert all(after[key] < before[key] for key in before if before[key] > 2), (before, after)

    refused = run_smart("index", "--store", pooled, "--token-pooling", "0.3")
    assert refused.returncode != 0
    assert "--token-pooling: this store pools token states at 0.5, kept from its first run" in refused.stderr
    found = run_smart("search", "watering", "--store", pooled, "--json", check=True)
    assert '"snippet"' in found.stdout and "houseplants.pdf" in found.stdout
    with sqlite3.connect(pooled / "catalog.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'token_pooling'").fetchone() == ("0.5",)
    with Index.open(pooled) as index:
        assert index.verify().healthy  # the catalog's token counts are the segments'
    assert json.loads(run_smart("status", "--store", pooled, "--json", check=True).stdout)["token_pooling"] == 0.5
    assert "tokens as binary, pooled at 0.5)" in run_smart("status", "--store", pooled, env={"COLUMNS": "200"}, check=True).stdout
    assert json.loads(run_smart("status", "--store", plain, "--json", check=True).stdout)["token_pooling"] == 0

    refused = run_smart("index", "--store", plain, "--ocr", "never", "--token-pooling", "0.5")
    assert refused.returncode != 0 and "this store does not pool token states, kept from its first run" in refused.stderr
    run_smart("index", corpus, "--store", plain, "--ocr", "never", "--token-pooling", "0.5", "--rebuild", check=True)
    assert token_counts(plain) == after  # the way to pool an existing store: pages pooled as a new store's
