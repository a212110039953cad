"""`smart watch` as a real process over a real folder: after every kind of change, `smart search`
in another process finds exactly what is on disk; Ctrl-C and SIGTERM stop it cleanly, kill -9
loses nothing, and the store ends equal to a clean index of the folder."""

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import ROOT, run_smart, run_smart_process
from tests.corpus import make_pdf
from tests.e2e.test_fault_injection import catalog_value
from tests.store_helpers import assert_same_index, snapshot

ENV = dict(os.environ, OMP_NUM_THREADS="1")
SETTLE = "1.5"  # seconds: the slow writer below pauses 0.3 s between its writes
WAIT = 240  # seconds for one change to be picked up, on a busy 2-core machine
QUERY = "lantern harbor meadow"


class Watcher:
    """A running `smart watch --json`: its JSON lines as they come, its stderr in a file."""

    def __init__(self, folder: Path, store: Path, *extra: str):
        self.log = store.parent / f"watch-{time.monotonic_ns()}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smartcli", "watch", str(folder), "--store", str(store), "--ocr", "never"]
            + ["--json", "--settle", SETTLE, *extra],
            stdout=subprocess.PIPE,
            stderr=self.log.open("w"),
            text=True,
            cwd=ROOT,
            env=ENV,
        )
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, wanted, timeout: float = WAIT) -> dict:
        """The next JSON line for which ``wanted(line)`` holds (earlier ones are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"nothing wanted came in {timeout} s; stderr:\n{self.stderr()[-3000:]}") from None
            if line is None:
                raise AssertionError(f"the watcher ended ({self.process.wait()}); stderr:\n{self.stderr()[-3000:]}")
            self.seen.append(line)
            if wanted(line):
                return line

    def change(self, key: str, path, timeout: float = WAIT) -> dict:
        """The next update listing ``path`` under ``key`` (added, updated, copied, removed, moved)."""
        path = str(path)

        def lists(line):
            if line["event"] != "change":
                return False
            if key == "moved":
                return any(m["to"] == path for m in line["moved"])
            return path in line[key]

        return self.next(lists, timeout)

    def changes_of(self, path) -> list[tuple[str, str]]:
        """Every (key, cause) under which an update so far listed ``path``."""
        path = str(path)
        found = []
        for line in self.seen:
            if line["event"] != "change":
                continue
            for key in ("added", "updated", "copied", "removed"):
                if path in line[key]:
                    found.append((key, line["cause"]))
            found += [("skipped", line["cause"]) for s in line["skipped"] if s["path"] == path]
        return found

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, signum=signal.SIGTERM, timeout: float = WAIT) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def searched(store: Path) -> set[str]:
    """Every path `smart search`, a process of its own, finds (copies folded into a hit included)."""
    result = run_smart_process("search", QUERY, "--store", store, "--json", "-k", "5000", "--exhaustive", env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["results"]
    return {hit["path"] for hit in hits} | {path for hit in hits for path in hit.get("also", [])}


def on_disk(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*.pdf")}


def assert_search_finds_what_is_on_disk(store: Path, folder: Path) -> None:
    assert searched(store) == on_disk(folder)


def pdf_bytes(tmp_path: Path, text: list[str]) -> bytes:
    scratch = tmp_path / f"scratch-{time.monotonic_ns()}.pdf"
    make_pdf(scratch, text)
    data = scratch.read_bytes()
    scratch.unlink()
    return data


def test_the_watcher_keeps_what_search_finds_equal_to_the_folder(tmp_path):
    folder, store = tmp_path / "docs", tmp_path / "store"
    folder.mkdir()
    make_pdf(folder / "first.pdf", ["a lantern by the harbor", "the meadow at night"])
    watcher = Watcher(folder, store)
    try:
        start = watcher.next(lambda line: line["event"] == "change" and line["cause"] == "start")
        assert start["added"] == [str(folder / "first.pdf")]
        watching = watcher.next(lambda line: line["event"] == "watching")
        assert watching == {"event": "watching", "watched": [str(folder)], "scanned": {}}
        assert_search_finds_what_is_on_disk(store, folder)

        created = folder / "created.pdf"
        make_pdf(created, ["a lantern in the orchard"])
        watcher.change("added", created)
        assert_search_finds_what_is_on_disk(store, folder)

        make_pdf(created, ["an umbrella in the quarry, nothing else"])  # modified
        watcher.change("updated", created)
        assert_search_finds_what_is_on_disk(store, folder)
        found = run_smart_process("search", "umbrella quarry", "--store", store, "--json", "-k", "1", check=True)
        assert json.loads(found.stdout)["results"][0]["path"] == str(created)

        renamed = folder / "renamed.pdf"
        os.rename(created, renamed)
        moved = watcher.change("moved", renamed)
        assert moved["moved"] == [{"from": str(created), "to": str(renamed)}] and moved["pages_encoded"] == 0
        assert_search_finds_what_is_on_disk(store, folder)

        copy = folder / "copy-of-renamed.pdf"
        shutil.copy(renamed, copy)
        assert watcher.change("copied", copy)["pages_encoded"] == 0
        assert_search_finds_what_is_on_disk(store, folder)

        copy.unlink()
        watcher.change("removed", copy)
        assert_search_finds_what_is_on_disk(store, folder)

        outside = tmp_path / "outside"
        (outside / "inner").mkdir(parents=True)
        for i, where in enumerate((outside, outside / "inner", outside / "inner")):
            make_pdf(where / f"doc{i}.pdf", [f"meadow number {i} and a harbor"])
        shutil.move(outside, folder / "moved-in")  # a folder moved in
        moved_in = sorted(str(p) for p in (folder / "moved-in").rglob("*.pdf"))
        added = watcher.change("added", moved_in[-1])["added"]
        assert sorted(added) == moved_in
        assert_search_finds_what_is_on_disk(store, folder)

        shutil.move(folder / "moved-in", tmp_path / "moved-out")  # and out again
        assert sorted(watcher.change("removed", moved_in[0])["removed"]) == moved_in
        assert_search_finds_what_is_on_disk(store, folder)

        kept = renamed.read_bytes()  # deleted, then restored
        renamed.unlink()
        watcher.change("removed", renamed)
        assert_search_finds_what_is_on_disk(store, folder)
        renamed.write_bytes(kept)
        watcher.change("added", renamed)
        assert_search_finds_what_is_on_disk(store, folder)

        renamed.unlink()  # deleted and restored at once: still there, once
        renamed.write_bytes(kept)
        barrier = folder / "barrier.pdf"
        make_pdf(barrier, ["the barrier page"])
        watcher.change("added", barrier)
        assert_search_finds_what_is_on_disk(store, folder)

        slow = folder / "slow.pdf"  # written over several seconds: read once, after it settles
        data = pdf_bytes(tmp_path, [f"slowly written page {i} about a lantern" for i in range(30)])
        with slow.open("wb") as f:
            for i in range(10):
                f.write(data[i * len(data) // 10 : (i + 1) * len(data) // 10])
                f.flush()
                time.sleep(0.3)
        watcher.change("added", slow)
        assert watcher.changes_of(slow) == [("added", "events")]
        assert_search_finds_what_is_on_disk(store, folder)

        burst = folder / "burst"  # 500 small files at once, while other processes search
        burst.mkdir()
        answers, searching = [], threading.Event()

        def search_meanwhile():
            while not searching.is_set():
                answers.append(run_smart_process("search", QUERY, "--store", store, "--json", "-k", "3").returncode)

        searcher = threading.Thread(target=search_meanwhile)
        searcher.start()
        try:
            burst_files = set()
            for i in range(500):
                path = burst / f"note-{i:03d}.pdf"
                make_pdf(path, [f"note {i}: a harbor, a lantern and a meadow"])
                burst_files.add(str(path))
            waiting_for = set(burst_files)
            while waiting_for:
                line = watcher.next(lambda line: line["event"] == "change")
                waiting_for -= set(line["added"])
        finally:
            searching.set()
            searcher.join()
        assert answers and set(answers) == {0}, answers
        assert_search_finds_what_is_on_disk(store, folder)
        assert all(len(watcher.changes_of(p)) == 1 for p in sorted(burst_files)[:20])

        assert watcher.stop(signal.SIGTERM) == 0
        assert watcher.next(lambda line: line["event"] == "stopped")["added"] >= 500
    finally:
        watcher.kill()
    assert set(snapshot(store)) == set(snapshot_of_clean_index(folder, tmp_path / "clean"))


def snapshot_of_clean_index(folder: Path, clean: Path):
    assert run_smart("index", folder, "--store", clean, "--ocr", "never").returncode == 0
    return snapshot(clean)


def items(store: Path) -> int:
    return catalog_value(store, "SELECT COUNT(*) FROM items") or 0


def wait_for_more_items(store: Path, than: int, watcher: Watcher) -> int:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        count = items(store)
        if count > than:
            return count
        assert watcher.process.poll() is None, watcher.stderr()[-3000:]
        time.sleep(0.02)
    raise AssertionError(f"no batch was committed in {WAIT} s; stderr:\n{watcher.stderr()[-3000:]}")


def test_ctrl_c_stops_between_batches_kill_9_loses_nothing_and_the_store_ends_equal_to_a_clean_index(tmp_path):
    folder, store = tmp_path / "docs", tmp_path / "store"
    folder.mkdir()
    make_pdf(folder / "first.pdf", ["a lantern by the harbor"])
    watcher = Watcher(folder, store, "--batch-pages", "8")
    try:
        watcher.next(lambda line: line["event"] == "watching")
        for i in range(120):  # a burst: 15 batches of 8 pages
            make_pdf(folder / f"burst-{i:03d}.pdf", [f"burst page {i}: meadow, lantern, harbor"])
        committed = wait_for_more_items(store, 1, watcher)
        assert watcher.stop(signal.SIGINT) == 0  # Ctrl-C: the batch being committed ends the run
        stopped = watcher.next(lambda line: line["event"] == "stopped")
        assert "stopping after the batch being committed" in watcher.stderr()
        after = items(store)
        assert committed <= after < 121, "the watch went on to the end instead of stopping"
        assert stopped["updates"] == 1  # the first index only: the burst's update was stopped part-way
        assert run_smart("status", "--store", store, "--verify").returncode == 0
    finally:
        watcher.kill()

    restarted = Watcher(folder, store, "--batch-pages", "8")  # resumes, and is killed mid-way
    try:
        wait_for_more_items(store, after, restarted)
        restarted.process.send_signal(signal.SIGKILL)
        restarted.process.wait()
    finally:
        restarted.kill()
    assert items(store) < 121

    last = Watcher(folder, store)
    try:
        start = last.next(lambda line: line["event"] == "change" and line["cause"] == "start")
        assert start["added"] and not start["skipped"]
        assert last.stop(signal.SIGTERM) == 0
    finally:
        last.kill()
    assert run_smart("status", "--store", store, "--verify").returncode == 0
    assert_search_finds_what_is_on_disk(store, folder)
    assert_same_index(snapshot(store), snapshot_of_clean_index(folder, tmp_path / "clean"))  # same items, no duplicates


def test_a_folder_without_change_events_is_scanned_and_said_once(tmp_path):
    folder, store = tmp_path / "docs", tmp_path / "store"
    folder.mkdir()
    make_pdf(folder / "first.pdf", ["a lantern by the harbor"])
    watcher = Watcher(folder, store, "--scan", "--scan-every", "1")
    try:
        watching = watcher.next(lambda line: line["event"] == "watching")
        assert watching["watched"] == [] and watching["scanned"] == {str(folder): "asked"}
        (folder / "sub").mkdir()
        added = make_pdf(folder / "sub" / "added.pdf", ["the meadow"])
        assert watcher.change("added", added)["cause"] == "scan"
        (folder / "first.pdf").unlink()
        assert watcher.change("removed", folder / "first.pdf")["cause"] == "scan"
        assert_search_finds_what_is_on_disk(store, folder)
        assert watcher.stop() == 0
        assert watcher.stderr().count("scanned every 1 s") == 1
    finally:
        watcher.kill()
