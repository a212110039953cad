"""A long-lived Searcher (the prompt, --queries): token states mapped in place, and new index runs seen."""

import numpy as np
import pytest

from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import FileRecord, PageRecord, writes
from tests.store_helpers import build_random_store, random_encoded, remove_paths


def scores_by_page(hits):
    return {(h.item.path, h.item.page): (h.score, h.late) for h in hits}


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_a_warm_process_scores_like_a_one_query_process(tmp_path, chunk_size):
    """Warm (compiled kernels on the memory-mapped states) and cold (numpy) give the same scores,
    query after query."""
    rng = np.random.default_rng(11)
    store, docs = build_random_store(tmp_path, rng, [3, 8, 1, 5, 2, 7], dims=16, pages_per_segment=4)
    queries = [random_encoded(rng, 4, 16), random_encoded(rng, 2, 16)]
    cold = Searcher(store, None, device="cpu", chunk_size=chunk_size)
    warm = Searcher(store, None, device="cpu", chunk_size=chunk_size, cache_bytes=1 << 20)
    expected = [scores_by_page(h) for h in cold.search_encoded(queries, Weights(), k=6)]
    for _ in range(2):  # the first pass checks the rows' CRCs, the second reads them unchecked
        got = [scores_by_page(h) for h in warm.search_encoded(queries, Weights(), k=6)]
        assert [g.keys() for g in got] == [e.keys() for e in expected]
        for g, e in zip(got, expected):
            for key in e:
                np.testing.assert_allclose(g[key], e[key], atol=1e-5, rtol=0)
    assert warm._checked.all()
    assert set(warm._mapped) == {item.segment for item in warm.items}


def test_refresh_sees_a_later_index_run_and_drops_what_it_replaced(tmp_path):
    rng = np.random.default_rng(12)
    store, _ = build_random_store(tmp_path, rng, [2, 3], dims=8, pages_per_segment=2)
    searcher = Searcher(store, None, device="cpu", cache_bytes=1 << 20)
    query = random_encoded(rng, 3, 8)
    searcher.search_encoded([query], Weights(), k=5)
    assert searcher.refresh() is False  # nothing committed since
    old_segment = searcher.items[0].segment

    # What an index run does when the file changed: a new segment replaces the old pages.
    encoded = random_encoded(rng, 4, 8)
    record = FileRecord(path="/random/doc-0.pdf", kind="pdf", size=2, mtime_ns=2, sha256="new", pages=[PageRecord(1, "y " * 4, encoded)])
    writes.commit_files(store, [record], writes.write_segment(store, [record]))

    assert searcher.refresh() is True
    assert [(i.path, i.page) for i in searcher.items] == [("/random/doc-0.pdf", 1)]
    assert old_segment not in searcher._mapped
    (hit,) = searcher.search_encoded([query], Weights(), k=5)[0]
    expected_late = float((query.tokens @ encoded.tokens.T).max(axis=1).mean())
    assert hit.late == pytest.approx(expected_late, abs=2e-3)  # float16 storage


def test_a_warm_process_survives_a_compaction_that_deleted_its_segments(tmp_path, encoder, monkeypatch):
    """Compaction rewrites segments without an index run; once the old files are gone, a long-lived
    process takes a new snapshot instead of failing."""
    from smartcli import Index
    from smartcli.store.catalog import Store
    from smartcli.store.compaction import compact
    from tests.store_helpers import add_random_files

    root = tmp_path / "store"
    writer = Store.open_for_writing(root)
    writes.bind_model(writer, encoder.info)
    dims = encoder.info.dims
    rng = np.random.default_rng(13)
    add_random_files(writer, rng, {f"/d/{i}.pdf": [3, 2] for i in range(4)}, dims=dims)
    remove_paths(writer, ["/d/0.pdf", "/d/1.pdf", "/d/2.pdf"])
    index = Index.open(root, device="cpu", warm=True)
    before = [(h.path, h.page, h.score) for h in index.search("harbour lantern")]
    assert [b[:2] for b in before] == [("/d/3.pdf", 1), ("/d/3.pdf", 2)] or [b[:2] for b in before] == [("/d/3.pdf", 2), ("/d/3.pdf", 1)]

    assert compact(writer).segments_rewritten == 1
    writer.close()
    monkeypatch.setattr("smartcli.store.catalog.retirement.SEGMENT_GRACE_SECONDS", -1)
    Store.open_for_writing(root).close()  # a later writer deletes the retired segment file

    after = [(h.path, h.page, h.score) for h in index.search("harbour lantern")]
    assert [a[:2] for a in after] == [b[:2] for b in before]
    np.testing.assert_allclose([a[2] for a in after], [b[2] for b in before], rtol=1e-5)
