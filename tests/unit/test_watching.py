"""The watcher's file-system side on real files: changes held until they settle, the paths an
update plans, which changes matter, which file system a folder is on, and the roots a store
records (a path under a root is covered by it)."""

import os
import shutil
import subprocess
import sys

import pytest

from smartcli.ingest.watching import MAX_UPDATE_PATHS, KnownPaths, Settling, file_system, relevant, update_paths
from smartcli.store.catalog import Store, writes
from tests.corpus import make_pdf


def grow(path, data=b"more bytes\n"):
    with open(path, "ab") as f:
        f.write(data)


def test_a_file_still_being_written_is_held_until_its_size_and_mtime_stay_the_same(tmp_path):
    path = tmp_path / "download.pdf"
    path.write_bytes(b"%PDF-1.7\n")
    settling = Settling(settle=1.0, hold=30.0)
    settling.note([str(path)], now=0.0)
    assert settling.ready(0.5) == []
    grow(path)  # still being written at 0.9 s: its clock starts again
    assert settling.ready(0.9) == []
    assert settling.ready(1.5) == []
    assert settling.ready(1.95) == [str(path)]
    assert len(settling) == 0 and settling.ready(10.0) == []


def test_settled_changes_wait_for_the_others_and_then_go_together(tmp_path):
    quiet, busy = tmp_path / "a.pdf", tmp_path / "b.pdf"
    quiet.write_bytes(b"a")
    busy.write_bytes(b"b")
    settling = Settling(settle=1.0, hold=30.0)
    settling.note([str(quiet), str(busy)], now=0.0)
    grow(busy)
    assert settling.ready(0.8) == []  # busy changed: its clock restarts
    assert settling.ready(1.2) == []  # quiet has settled, but waits for busy (a move's two ends, one update)
    assert settling.ready(1.9) == sorted([str(quiet), str(busy)])


def test_a_file_that_never_stops_changing_holds_the_others_no_longer_than_hold(tmp_path):
    quiet, log = tmp_path / "a.pdf", tmp_path / "growing.pdf"
    quiet.write_bytes(b"a")
    log.write_bytes(b"b")
    settling = Settling(settle=1.0, hold=5.0)
    settling.note([str(quiet), str(log)], now=0.0)
    released = []
    for step in range(1, 14):
        grow(log, b"x" * step)
        released += settling.ready(step * 0.5)
    assert released == [str(quiet)]  # let go at 5 s without the file still changing
    assert settling.paths() == [str(log)]


def test_a_path_noted_again_restarts_its_clock(tmp_path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"a")
    settling = Settling(settle=1.0)
    settling.note([str(path)], now=0.0)
    settling.note([str(path)], now=0.8)  # another event for it
    assert settling.ready(1.2) == []
    assert settling.ready(1.8) == [str(path)]


def test_a_gone_path_is_planned_through_its_nearest_existing_folder(tmp_path):
    root = tmp_path / "docs"
    (root / "a" / "b").mkdir(parents=True)
    gone_file = str(root / "a" / "b" / "old.pdf")
    gone_tree = str(root / "a" / "moved-away" / "deep" / "x.pdf")
    new = root / "a" / "b" / "new.pdf"
    new.write_bytes(b"x")
    assert update_paths([gone_file, str(new)], [str(root)]) == [str(root / "a" / "b")]
    assert update_paths([gone_tree], [str(root)]) == [str(root / "a")]
    assert update_paths([str(new)], [str(root)]) == [str(new)]
    # A root that is gone itself is planned as the root (its files are gone).
    assert update_paths([str(tmp_path / "gone" / "x.pdf")], [str(tmp_path / "gone")]) == [str(tmp_path / "gone")]
    # Paths outside every root are dropped.
    assert update_paths([str(tmp_path / "elsewhere.pdf")], [str(root)]) == []


def test_no_planned_path_lies_under_another_and_a_burst_becomes_its_folders(tmp_path):
    root = tmp_path / "docs"
    burst = root / "unzipped"
    burst.mkdir(parents=True)
    files = []
    for i in range(MAX_UPDATE_PATHS + 30):
        path = burst / f"f{i:03d}.pdf"
        path.write_bytes(b"x")
        files.append(str(path))
    assert update_paths([str(burst), files[0]], [str(root)]) == [str(burst)]
    assert update_paths(files, [str(root)]) == [str(burst)]
    assert update_paths(files[:3], [str(root)]) == files[:3]


def test_only_changes_that_can_matter_to_the_index_are_kept(tmp_path):
    root = tmp_path / "docs"
    store = root / "store"
    (root / ".git").mkdir(parents=True)
    store.mkdir()
    (root / "sub").mkdir()
    pdf = make_pdf(root / "a.pdf", ["alpha"])
    notes = root / "notes.txt"
    notes.write_text("not indexable")
    known = KnownPaths([str(root / "gone.pdf"), str(root / "old" / "b.pdf")])
    roots = [str(root)]

    def kept(path):
        return relevant(str(path), roots, str(store), known)

    assert kept(pdf) and kept(root / "sub")
    assert not kept(notes)  # a type that is never indexed
    assert not kept(root / ".git" / "index") and not kept(root / ".hidden.pdf")  # the walk skips dot names
    assert not kept(store / "catalog.sqlite")  # the store's own writes
    assert not kept(tmp_path / "outside.pdf")
    assert kept(root / "gone.pdf") and kept(root / "old")  # gone, and held indexed files
    assert not kept(root / "never-indexed.pdf")  # gone, and held nothing: a temporary file


def test_known_paths_tell_files_and_the_folders_holding_them():
    known = KnownPaths(["/d/a.pdf", "/d/sub/b.pdf", "/d/sub2.pdf"])
    assert known.holds("/d/a.pdf") and known.holds("/d/sub") and known.holds("/d")
    assert not known.holds("/d/su") and not known.holds("/d/sub/c.pdf") and not known.holds("/e")


@pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("findmnt"), reason="Linux mount table")
def test_the_file_system_of_a_folder_is_read_from_the_mount_table(tmp_path):
    expected = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(tmp_path)], capture_output=True, text=True).stdout
    assert file_system(str(tmp_path)) == expected.strip()
    assert file_system("/proc") == "proc"


def test_a_path_under_a_recorded_root_is_not_recorded_as_a_root(tmp_path):
    with Store.open_for_writing(tmp_path / "store") as store:
        writes.record_roots(store, ["/data/docs/sub"])
        writes.record_roots(store, ["/data/docs/sub/deeper/a.pdf", "/data/docs/sub2"])
        assert store.roots == ["/data/docs/sub", "/data/docs/sub2"]
        writes.record_roots(store, ["/data/docs"])  # a wider root covers both
        assert store.roots == ["/data/docs"]
        writes.record_roots(store, [os.sep])
        assert store.roots == [os.sep]
