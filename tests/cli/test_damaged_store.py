"""A damaged store gives one clear line naming the way out, never a traceback, for every command."""

import json
import shutil

import numpy as np
import pytest

from smartcli.store.catalog import Store, reads, writes
from smartcli.store.catalog.layout import SEGMENT_DIR
from smartcli.store.catalog.retirement import retired_segments
from smartcli.store.catalog.schema import SCHEMA_VERSION
from tests.conftest import SAMPLE_CORPUS, run_smart
from tests.store_helpers import add_random_files, empty_random_store


def truncate_segment(store):
    path = next((store / SEGMENT_DIR).glob("seg-*.h5"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def remove_segment(store):
    next((store / SEGMENT_DIR).glob("seg-*.h5")).unlink()


def replace_catalog(store):
    for path in store.glob("catalog.sqlite*"):
        path.unlink()
    (store / "catalog.sqlite").write_bytes(b"this is not an SQLite database\n" * 200)


DAMAGE = {"truncated segment": truncate_segment, "missing segment": remove_segment, "catalog is not SQLite": replace_catalog}
COMMANDS = {
    "index": lambda store, corpus: ("index", corpus, "--store", store),
    "search": lambda store, corpus: ("search", "anything at all", "--store", store),
    "status": lambda store, corpus: ("status", "--store", store),
    "compact": lambda store, corpus: ("compact", "--store", store),
}


@pytest.fixture
def small_store(tmp_path):
    store = tmp_path / "store"
    with empty_random_store(store, dims=8) as opened:
        add_random_files(opened, np.random.default_rng(0), {"/d/a.pdf": [3, 2], "/d/b.pdf": [4]}, dims=8)
        writes.record_roots(opened, [str(tmp_path / "docs")])
    (tmp_path / "docs").mkdir()
    return store


@pytest.mark.parametrize("damage", DAMAGE)
def test_every_command_names_the_way_out(small_store, damage):
    DAMAGE[damage](small_store)
    for command, args in COMMANDS.items():
        result = run_smart(*args(small_store, small_store.parent / "docs"))
        assert result.returncode == 1, (command, result.stderr)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        errors = [line for line in result.stderr.splitlines() if "damaged" in line]
        assert len(errors) == 1 and "smart index --rebuild" in errors[0], (command, result.stderr)
        if damage != "catalog is not SQLite":
            assert str(small_store.parent / "docs") in errors[0]  # the hint names the indexed paths


def test_status_still_describes_a_store_with_a_missing_segment(small_store):
    remove_segment(small_store)
    result = run_smart("status", "--store", small_store, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["encoded_items"] == 3 and len(report["store_problems"]) == 1 and "missing" in report["store_problems"][0]


def test_rebuild_is_the_way_out(small_store):
    corpus = small_store.parent / "docs"
    shutil.copytree(SAMPLE_CORPUS / "hobbies", corpus / "hobbies")
    replace_catalog(small_store)
    rebuilt = run_smart("index", corpus, "--store", small_store, "--rebuild", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["added"] == 2
    status = json.loads(run_smart("status", "--store", small_store, "--json", check=True).stdout)
    assert status["store_problems"] == [] and status["encoded_items"] == 5
    assert status["model"] == "sentence-transformers/all-MiniLM-L6-v2"  # the old store's model is forgotten


def test_rebuilding_a_readable_store_retires_its_segments_instead_of_deleting_them(small_store):
    with Store.open(small_store) as before:
        old = {item.segment for item in reads.live_items(before)}
    truncate_segment(small_store)  # damaged, but the catalog is readable
    with Store.open_for_writing(small_store, rebuild=True) as store:
        assert reads.live_items(store) == [] and reads.files(store) == [] and store.model is None
        with Store.open(small_store, verify=False) as old_store:  # built beside: the old one is whole until the swap
            assert {item.segment for item in reads.live_items(old_store)} == old
        store.finish_rebuild()
        assert reads.live_items(store) == [] and reads.files(store) == []
        retired = set(retired_segments(store))
        assert retired == old
        assert all(store.segment_path(name).exists() for name in old)  # a running search may still read them
        assert store.meta["schema_version"] == SCHEMA_VERSION


def test_a_catalog_that_a_first_writer_has_only_just_created_reads_as_empty(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    (root / "catalog.sqlite").write_bytes(b"")  # what a reader can see before the tables exist
    result = run_smart("search", "anything", "--store", root)
    assert result.returncode == 4 and "empty" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(Exception, match="empty"):
        Store.open(root)
