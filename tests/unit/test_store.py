import sqlite3

import h5py
import numpy as np
import pytest

from smartcli.cli.errors import describe
from smartcli.errors import ErrorKind, ModelMismatch, StoreBusy, StoreDamaged, StoreMissing
from smartcli.models.base import ModelInfo
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store, reads, writes
from smartcli.store.catalog.layout import SEGMENT_DIR
from tests.store_helpers import RANDOM_MODEL, build_random_store, page_vocabulary, remove_paths


def test_round_trip_keeps_items_vectors_and_metadata(tmp_path):
    rng = np.random.default_rng(3)
    counts = [3, 1, 6, 2, 5]
    store, docs = build_random_store(tmp_path, rng, counts, dims=8, pages_per_segment=2)
    store.close()

    reopened = Store.open(tmp_path / "store")
    assert reopened.model.dims == 8 and reopened.model.fingerprint == RANDOM_MODEL.fingerprint
    assert reopened.token_dtype == "float16"
    items = reads.live_items(reopened)
    assert len(items) == len(docs)
    by_page = {(item.path, item.page): item for item in items}
    assert len(by_page) == len(docs)
    for item in items:
        doc = docs[item.page - 1]
        with reopened.open_segment(item.segment) as seg:
            assert seg.dims == 8
            start, stop = seg.token_range(item.row)
            assert seg.stored_tokens(start, stop).data.dtype == np.float16
            np.testing.assert_allclose(seg.tokens(start, stop), doc.tokens, atol=1e-3)
            np.testing.assert_allclose(seg.pooled([item.row])[0], doc.pooled, atol=1e-6)
            np.testing.assert_array_equal(page_vocabulary(seg, item.row), np.unique(doc.token_ids))
            np.testing.assert_array_equal(seg.spans(start, stop), doc.spans)
        assert item.n_tokens == counts[item.page - 1]


def test_int8_tokens_round_trip_within_quantization_error(tmp_path):
    rng = np.random.default_rng(4)
    store, docs = build_random_store(tmp_path, rng, [4, 9], dims=32, token_dtype="int8")
    for item in reads.live_items(store):
        with store.open_segment(item.segment) as seg:
            start, stop = seg.token_range(item.row)
            assert seg.stored_tokens(start, stop).data.dtype == np.int8
            np.testing.assert_allclose(seg.tokens(start, stop), docs[item.page - 1].tokens, atol=0.01)


def test_interrupted_segment_write_leaves_nothing_behind(tmp_path):
    rng = np.random.default_rng(5)
    store, _ = build_random_store(tmp_path, rng, [2, 2], dims=4)
    segments = tmp_path / "store" / SEGMENT_DIR
    # What a crash leaves: a temporary file and a complete segment that was never committed.
    (segments / ".tmp-seg-x.h5").write_bytes(b"partial")
    with h5py.File(segments / "seg-uncommitted.h5", "w") as f:
        f["pooled"] = np.zeros((1, 4))
    store.close()
    store = Store.open_for_writing(tmp_path / "store")
    names = sorted(p.name for p in segments.iterdir())
    assert names == sorted(f"{i.segment}.h5" for i in reads.live_items(store)[:1]) or all(
        not n.startswith(".tmp") and n != "seg-uncommitted.h5" for n in names
    )
    assert "seg-uncommitted.h5" not in names and ".tmp-seg-x.h5" not in names
    assert len(reads.live_items(store)) == 2


def test_second_writer_is_refused_while_first_holds_the_lock(tmp_path):
    first = Store.open_for_writing(tmp_path / "s")
    with pytest.raises(StoreBusy):
        Store.open_for_writing(tmp_path / "s")
    first.close()
    Store.open_for_writing(tmp_path / "s").close()


def test_opening_a_missing_store_says_so(tmp_path):
    with pytest.raises(StoreMissing, match="no index at") as raised:
        Store.open(tmp_path / "nothing")
    assert raised.value.kind is ErrorKind.STORE_MISSING


def test_binding_another_model_is_refused(tmp_path):
    store = Store.open_for_writing(tmp_path / "s")
    writes.bind_model(store, RANDOM_MODEL)
    other = ModelInfo(**{**RANDOM_MODEL.__dict__, "fingerprint": "f" * 16, "name": "other"})
    with pytest.raises(ModelMismatch, match="other"):
        writes.bind_model(store, other)


def test_replacing_a_file_drops_its_old_rows_from_search(tmp_path):
    rng = np.random.default_rng(6)
    store, _ = build_random_store(tmp_path, rng, [2, 3, 4], dims=4, pages_per_segment=3)
    remove_paths(store, ["/random/doc-0.pdf"])
    assert reads.live_items(store) == []
    assert reads.stats(store)["segments"] == 0
    assert Searcher(store, encoder=None, device="cpu").items == []


def test_catalog_that_is_not_sqlite_gives_a_clear_error(tmp_path):
    root = tmp_path / "broken"
    root.mkdir()
    (root / "catalog.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreDamaged) as info:
        Store.open(root)
    assert info.value.kind is ErrorKind.STORE_DAMAGED and "damaged" in str(info.value)
    assert "smart index --rebuild" in describe(info.value)  # the CLI's wording of it
    assert not isinstance(info.value, sqlite3.DatabaseError)


def test_a_writer_killed_while_creating_the_tables_leaves_none_or_all(tmp_path):
    """The tables of a new catalog are made in one transaction: a process killed between two
    CREATE TABLE statements leaves a catalog a reader calls empty, never one without `segments`."""
    import subprocess
    import sys

    from smartcli import ErrorKind, SmartError
    from smartcli.store.catalog import Store

    child = f"""
import os, sqlite3
from smartcli.store.catalog import connection, store

real = connection.connect
def dying(path, reading=False):
    conn = real(path, reading)
    conn.set_trace_callback(lambda sql: os._exit(137) if "CREATE TABLE IF NOT EXISTS segments" in sql else None)
    return conn
store.connect = dying
store.Store.open_for_writing({str(tmp_path)!r})
"""
    killed = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert killed.returncode == 137, killed.stderr
    with pytest.raises(SmartError) as empty:
        Store.open(tmp_path)
    assert empty.value.kind is ErrorKind.STORE_EMPTY
    with Store.open_for_writing(tmp_path):  # the next writer makes the tables
        pass
    with Store.open(tmp_path) as opened:
        assert opened.model is None
