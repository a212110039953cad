"""Readers during a write see the last committed state; a second writer is refused (or waits with --wait).

The writer is a real `smart index` process, frozen with SIGSTOP at seeded points of its
run (maybe in the middle of writing a segment or of a catalog transaction) so that the
searches below deterministically run against a half-finished index.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

from smartcli.search.scoring import Weights
from smartcli.search.searcher import Searcher
from smartcli.store.catalog import Store
from tests.conftest import ROOT, run_smart
from tests.corpus import make_many_pdfs
from tests.e2e.test_fault_injection import catalog_value

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def index_process(corpus, store, *extra, stderr=subprocess.PIPE):
    return subprocess.Popen(
        [sys.executable, "-m", "smartcli", "index", str(corpus), "--store", str(store), "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=ROOT,
        env=ENV,
    )


def search_snapshot(store, encoder, pages):
    """Search in-process; check that the store shows whole files only. Returns the item count."""
    with Store.open(store) as opened:
        searcher = Searcher(opened, encoder, device="cpu")
        hits = searcher.search(["glacier harbor lantern"], Weights(1.0, 2.0), k=5)[0]
        counts = Counter(item.path for item in searcher.items)
    assert all(n == len(pages[path]) for path, n in counts.items()), "a half-committed file is visible"
    assert len(hits) == min(5, len(searcher.items))
    return len(searcher.items)


def test_searches_during_an_index_run_see_committed_whole_files_and_a_second_writer_is_refused(tmp_path, encoder):
    corpus, store = tmp_path / "docs", tmp_path / "store"
    pages = make_many_pdfs(corpus, 40, seed=5, max_pages=3)
    total = sum(len(p) for p in pages.values())
    rng = random.Random(5)
    writer = index_process(corpus, store, "--batch-pages", "4")
    seen = []
    for threshold in sorted(rng.sample(range(4, total // 2), 3)):
        while (catalog_value(store, "SELECT COUNT(*) FROM items") or 0) < threshold:
            assert writer.poll() is None, writer.stderr.read()
            time.sleep(0.01)
        writer.send_signal(signal.SIGSTOP)
        try:
            seen.append(search_snapshot(store, encoder, pages))
            if len(seen) == 1:
                # The real command, while the writer holds the lock mid-run.
                found = run_smart("search", "glacier harbor lantern", "--store", store, "--json", env={"OMP_NUM_THREADS": "1"})
                assert found.returncode == 0, found.stderr
                assert json.loads(found.stdout)["results"]
                second = run_smart("index", corpus, "--store", store)
                assert second.returncode == 5
                assert "another `smart index`" in second.stderr and "--wait" in second.stderr
        finally:
            writer.send_signal(signal.SIGCONT)
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    assert seen == sorted(seen) and 0 < seen[0] and seen[-1] < total
    assert search_snapshot(store, encoder, pages) == total
    assert json.loads(out)["added"] == len(pages)


def test_index_with_wait_waits_for_the_lock_then_runs(tmp_path):
    corpus, store = tmp_path / "docs", tmp_path / "store"
    make_many_pdfs(corpus, 1, seed=5, max_pages=1)  # an empty folder is refused (exit 2) once the lock is had
    holder = Store.lock_only(store)
    waiting = index_process(corpus, store, "--wait")
    try:
        line = waiting.stderr.readline()  # printed once the lock is found busy, before blocking
        assert "waiting for another writer" in line
        assert waiting.poll() is None
    finally:
        holder.close()
    out, err = waiting.communicate()
    assert waiting.returncode == 0, err
    assert json.loads(out)["added"] == 1
    # Without --wait the same situation is an immediate, explained refusal.
    holder = Store.lock_only(store)
    try:
        refused = run_smart("index", corpus, "--store", store)
        compact = run_smart("compact", "--store", store)
    finally:
        holder.close()
    assert refused.returncode == 5 and compact.returncode == 5
    assert "Traceback" not in refused.stderr + compact.stderr
