"""Re-indexing: add, modify, delete, rename, copy; files that change under the indexer; compaction."""

import json
import os
import shutil

import numpy as np
import pytest

from smartcli.ingest.indexer import REASON_RACE, Indexer
from smartcli.ingest.planning import plan_changes
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import CatalogChanges, FileCopy, Store, reads, writes
from smartcli.store.catalog.layout import SEGMENT_DIR
from smartcli.store.catalog.retirement import retired_segments
from smartcli.store.compaction import compact, needs_compaction
from tests.conftest import SAMPLE_CORPUS, run_smart
from tests.corpus import make_pdf
from tests.store_helpers import add_random_files, empty_random_store, random_encoded, remove_paths, snapshot


def status(store) -> dict:
    return json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)


def index_json(corpus, store, *extra) -> dict:
    result = run_smart("index", corpus, "--store", store, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_add_modify_delete_rename_copy_encode_only_new_content(tmp_path):
    corpus, store = tmp_path / "docs", tmp_path / "store"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    first = index_json(corpus, store, "--ocr", "never")  # text layers only: the images stay unencoded
    assert first["added"] == 7 and first["pages_encoded"] == 13

    make_pdf(corpus / "new.pdf", ["Pedestrians cross the road at the zebra crossing when the lights show the green man."])
    make_pdf(corpus / "hobbies" / "sourdough.pdf", ["Rye crackers bake in twenty minutes on a hot tray with caraway seeds."])
    os.remove(corpus / "manuals" / "home-network.pdf")
    (corpus / "archive").mkdir()
    os.rename(corpus / "houseplants.pdf", corpus / "archive" / "plants renamed.pdf")
    (corpus / "copies").mkdir()
    shutil.copy2(corpus / "manuals" / "terminal-guide.pdf", corpus / "copies" / "terminal-copy.pdf")
    os.utime(corpus / "hobbies" / "bicycle-maintenance.pdf", ns=(1, 1))  # touched: new mtime, same content

    before = status(store)
    assert before["changed_on_disk"] == {"modified": 1, "missing": 2, "new": 3, "touched": 1}
    plan = json.loads(run_smart("index", corpus, "--store", store, "--dry-run", "--json", "--ocr", "never", check=True).stdout)
    assert plan["add"] == [str(corpus / "new.pdf")]
    assert plan["update"] == [str(corpus / "hobbies" / "sourdough.pdf")]
    assert plan["move"] == [{"from": str(corpus / "houseplants.pdf"), "to": str(corpus / "archive" / "plants renamed.pdf")}]
    assert plan["copy"] == [str(corpus / "copies" / "terminal-copy.pdf")]
    assert plan["remove"] == [str(corpus / "manuals" / "home-network.pdf")]
    assert status(store) == before, "--dry-run changed the store"

    second = index_json(corpus, store, "--ocr", "never")
    assert {k: second[k] for k in ("added", "updated", "removed", "moved", "copied", "unchanged")} == {
        "added": 1,
        "updated": 1,
        "removed": 1,
        "moved": 1,
        "copied": 1,
        "unchanged": 4,
    }
    # Only the new file's page and the changed file's page went through the model; the
    # touched file was hashed, found identical, and not read again.
    assert second["pages_encoded"] == 2 and second["skipped"] == []
    # 5 of the 15 stored rows are dead now (the old sourdough and home-network pages): past
    # the 25% threshold, so the run compacted the store by itself.
    assert second["compaction"]["dead_rows_dropped"] == 5

    after = status(store)
    assert after["files"] == {"pdf": 6, "image": 2}
    assert after["encoded_items"] == 13 - 2 - 3 + 1 + 1 + 3  # sourdough now has one page; copy shares three
    assert after["shared_items"] == 3
    assert after["garbage_rows"] == 0 and after["segments"] == 1
    assert after["changed_on_disk"] == {"modified": 0, "missing": 0, "new": 0, "touched": 0}

    queries = "\n".join(
        json.dumps({"qid": qid, "query": q})
        for qid, q in [
            ("copy", "how do I change the default terminal"),
            ("new", "where do pedestrians cross the road"),
            ("changed", "rye crackers with caraway"),
            ("moved", "repot a plant with pale stems"),
            ("deleted", "wifi channel interference"),
        ]
    )
    result = run_smart("search", "--queries", "-", "--store", store, "-k", "20", input=queries, check=True)
    answers = {a["qid"]: a["results"] for a in map(json.loads, result.stdout.splitlines())}
    # A copy shares its original's vectors: one hit, the other path under "also".
    top = answers["copy"][0]
    assert {top["path"], *top["also"]} == {str(corpus / "manuals" / "terminal-guide.pdf"), str(corpus / "copies" / "terminal-copy.pdf")}
    assert answers["new"][0]["path"] == str(corpus / "new.pdf")
    assert answers["changed"][0]["path"] == str(corpus / "hobbies" / "sourdough.pdf")
    assert answers["moved"][0]["path"] == str(corpus / "archive" / "plants renamed.pdf")
    every_path = {h["path"] for hits in answers.values() for h in hits}
    assert str(corpus / "houseplants.pdf") not in every_path
    assert str(corpus / "manuals" / "home-network.pdf") not in every_path
    assert not any("500 grams of bread flour" in h["snippet"] for hits in answers.values() for h in hits)

    third = index_json(corpus, store, "--ocr", "never")
    assert third["unchanged"] == 8 and third["pages_encoded"] == 0 and third["bytes_written"] == 0


def test_files_that_change_or_vanish_between_discovery_and_encoding_are_reported_once(tmp_path, encoder):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name in ("stays", "edited", "deleted", "piped"):
        make_pdf(corpus / f"{name}.pdf", [f"The {name} document talks about lanterns and harbors."])
    store = Store.open_for_writing(tmp_path / "store")
    writes.bind_model(store, encoder.info)
    plan, hashes = plan_changes(store, [str(corpus)])
    assert len(plan.new) == 4
    # Between planning and encoding:
    make_pdf(corpus / "edited.pdf", ["Completely different text, written after discovery."])
    os.remove(corpus / "deleted.pdf")
    os.remove(corpus / "piped.pdf")
    os.mkfifo(corpus / "piped.pdf")  # would block a plain open() forever
    reports = []
    summary = Indexer(store, encoder, report=reports.append).run(plan, hashes)
    skipped = {os.path.basename(s.path): s.reason for s in summary.skipped}
    assert set(skipped) == {"edited.pdf", "deleted.pdf", "piped.pdf"}
    assert all(reason == REASON_RACE for reason in skipped.values())
    for name in skipped:
        assert sum(name in line for line in reports) == 1
    assert summary.added == 1
    assert [os.path.basename(f["path"]) for f in reads.files(store)] == ["stays.pdf"]
    # The next run picks the edited file up.
    os.remove(corpus / "piped.pdf")
    plan, hashes = plan_changes(store, [str(corpus)])
    assert [os.path.basename(s.path) for s in plan.new] == ["edited.pdf"]
    assert plan.removed == []


def test_identical_new_files_are_encoded_once(tmp_path, encoder):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    make_pdf(corpus / "a.pdf", ["Twin documents share every word."])
    shutil.copy(corpus / "a.pdf", corpus / "b.pdf")
    shutil.copy(corpus / "a.pdf", corpus / "c.pdf")
    store = Store.open_for_writing(tmp_path / "store")
    writes.bind_model(store, encoder.info)
    plan, hashes = plan_changes(store, [str(corpus)])
    summary = Indexer(store, encoder).run(plan, hashes)
    assert (summary.added, summary.copied, summary.pages_encoded) == (1, 2, 1)
    items = reads.live_items(store)
    assert len(items) == 3 and len({(i.segment, i.row) for i in items}) == 1


def test_a_copy_shares_rows_and_keeps_its_vectors_when_the_original_goes(tmp_path):
    rng = np.random.default_rng(7)
    store = empty_random_store(tmp_path / "store", dims=8)
    add_random_files(store, rng, {"/d/original.pdf": [3, 5], "/d/other.pdf": [2]}, dims=8)
    before = snapshot(tmp_path / "store")
    missing = writes.apply_changes(store, CatalogChanges(copies=[FileCopy("/d/copy.pdf", 1, 1, "sha:/d/original.pdf")]))
    assert missing == []
    items = reads.live_items(store)
    rows = {(i.path, i.page): (i.segment, i.row) for i in items}
    assert rows[("/d/copy.pdf", 1)] == rows[("/d/original.pdf", 1)] and rows[("/d/copy.pdf", 2)] == rows[("/d/original.pdf", 2)]
    assert reads.stats(store)["shared_items"] == 2 and reads.stats(store)["segments"] == 1

    remove_paths(store, ["/d/original.pdf"])
    after = snapshot(tmp_path / "store")
    assert sorted(after) == [("/d/copy.pdf", 1), ("/d/copy.pdf", 2), ("/d/other.pdf", 1)]
    for page in (1, 2):
        np.testing.assert_array_equal(after[("/d/copy.pdf", page)][2], before[("/d/original.pdf", page)][2])
    assert reads.stats(store)["garbage_rows"] == 0  # the copy still uses every row
    # A copy whose content nothing holds any more is handed back to be encoded.
    assert writes.apply_changes(store, CatalogChanges(copies=[FileCopy("/d/late.pdf", 1, 1, "sha:/d/original.pdf")])) == []
    assert writes.apply_changes(store, CatalogChanges(copies=[FileCopy("/d/orphan.pdf", 1, 1, "sha:nothing")])) == ["/d/orphan.pdf"]


def test_compaction_drops_dead_rows_and_keeps_every_live_value_bit_for_bit(tmp_path):
    rng = np.random.default_rng(8)
    store = empty_random_store(tmp_path / "store", dims=8)
    add_random_files(store, rng, {f"/d/a{i}.pdf": [i + 1, 2] for i in range(4)}, dims=8)
    add_random_files(store, rng, {f"/d/b{i}.pdf": [3] for i in range(4)}, dims=8)
    writes.apply_changes(store, CatalogChanges(copies=[FileCopy("/d/copy.pdf", 1, 1, "sha:/d/a1.pdf")]))
    remove_paths(store, ["/d/a0.pdf", "/d/a1.pdf", "/d/b0.pdf", "/d/b1.pdf", "/d/b2.pdf"])
    before = snapshot(tmp_path / "store")
    stats = reads.stats(store)
    assert stats["garbage_rows"] == 2 + 3 and stats["segments"] == 2
    assert needs_compaction(store)  # 5 dead of 12 rows
    old_segments = {i.segment for i in reads.live_items(store)}

    result = compact(store)
    assert (result.segments_rewritten, result.segments_written, result.dead_rows_dropped, result.rows_kept) == (2, 1, 5, 7)
    assert result.bytes_reclaimed > 0
    assert reads.stats(store)["garbage_rows"] == 0 and not needs_compaction(store)
    after = snapshot(tmp_path / "store")
    assert sorted(after) == sorted(before)
    for key, value in before.items():
        for got, want in zip(after[key][2:], value[2:]):
            np.testing.assert_array_equal(got, want)
    live = reads.live_items(store)
    assert len({(i.segment, i.row) for i in live if i.path in ("/d/copy.pdf",)}) == 2
    # Retired segment files stay until the grace period is over.
    assert all(store.segment_path(name).exists() for name in old_segments)
    assert compact(store).segments_rewritten == 0


def test_a_search_opened_before_compaction_still_reads_its_snapshot(tmp_path):
    rng = np.random.default_rng(9)
    store = empty_random_store(tmp_path / "store", dims=8)
    add_random_files(store, rng, {f"/d/{i}.pdf": [2, 3] for i in range(5)}, dims=8)
    remove_paths(store, ["/d/1.pdf", "/d/3.pdf"])
    searcher = Searcher(Store.open(tmp_path / "store"), encoder=None, device="cpu")
    query = random_encoded(rng, 2, 8)
    weights = Weights(1.0, 2.0)
    expected = [(h.item.path, h.item.page, h.score) for h in searcher.search_encoded([query], weights, k=10)[0]]
    assert compact(store).segments_rewritten == 1
    assert [(h.item.path, h.item.page, h.score) for h in searcher.search_encoded([query], weights, k=10)[0]] == expected
    fresh = Searcher(Store.open(tmp_path / "store"), encoder=None, device="cpu")
    hits = fresh.search_encoded([query], weights, k=10)[0]
    assert [(h.item.path, h.item.page) for h in hits] == [e[:2] for e in expected]
    np.testing.assert_allclose([h.score for h in hits], [e[2] for e in expected], rtol=1e-6)


def test_retired_segments_are_deleted_by_a_later_writer_after_the_grace_period(tmp_path, monkeypatch):
    rng = np.random.default_rng(10)
    store = empty_random_store(tmp_path / "store", dims=4)
    add_random_files(store, rng, {"/d/gone.pdf": [2]}, dims=4)
    add_random_files(store, rng, {"/d/kept.pdf": [2]}, dims=4)
    remove_paths(store, ["/d/gone.pdf"])
    (retired,) = retired_segments(store)
    store.close()
    Store.open_for_writing(tmp_path / "store").close()
    assert (tmp_path / "store" / SEGMENT_DIR / f"{retired}.h5").exists()
    monkeypatch.setattr("smartcli.store.catalog.retirement.SEGMENT_GRACE_SECONDS", -1)
    with Store.open_for_writing(tmp_path / "store") as writer:
        assert not writer.segment_path(retired).exists()
        assert reads.stats(writer)["retired_segments"] == 0
        assert len(reads.live_items(writer)) == 1


@pytest.mark.parametrize("removed, expected", [(1, False), (2, False), (3, True)])
def test_automatic_compaction_starts_past_a_quarter_of_dead_rows(tmp_path, removed, expected):
    store = empty_random_store(tmp_path / "store", dims=4)
    add_random_files(store, np.random.default_rng(11), {f"/d/{i}.pdf": [1] for i in range(8)}, dims=4)
    remove_paths(store, [f"/d/{i}.pdf" for i in range(removed)])
    assert needs_compaction(store) is expected
