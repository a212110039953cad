"""kill -9 in the middle of `smart sync` (the Qdrant half of `smart index --qdrant`), twice, at
different points: each re-run sends only what was not acknowledged, and the collection ends
with exactly the store's pages, no duplicate and no stale point; the local store is intact."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

pytest.importorskip("qdrant_client")

from tests.conftest import ROOT, run_smart_process  # noqa: E402


def _acked(store) -> int:
    try:
        with sqlite3.connect(f"file:{store / 'catalog.sqlite'}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM qdrant_acked").fetchone()[0]
    except sqlite3.Error:
        return 0


def _sync_killed_after(store, db, points: int) -> bool:
    """Start a sync one point per batch and kill -9 it once ``points`` are acknowledged."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartcli", "sync", "--store", str(store), "--qdrant", str(db), "--collection", "c", "--batch-points", "1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if _acked(store) >= points:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    return proc.returncode == -signal.SIGKILL


def test_kill_9_during_sync_then_rerun_converges(sample_store, tmp_path):
    from smartcli import Index, QdrantIndex

    original, _ = sample_store
    store = tmp_path / "store"
    shutil.copytree(original, store)
    db = tmp_path / "db"
    local = Index.open(store)
    before = [(h.path, h.page, h.score) for h in local.search("tyre pressure", k=20)]
    pages = local.status().encoded_items

    killed = [_sync_killed_after(store, db, 2), _sync_killed_after(store, db, 7)]
    acked_before_rerun = _acked(store)
    rerun = json.loads(run_smart_process("sync", "--store", store, "--qdrant", db, "--collection", "c", "--json", check=True).stdout)
    assert rerun["points"] == pages == rerun["upserted"] + rerun["unchanged"]
    assert rerun["unchanged"] == acked_before_rerun  # only the difference was sent
    if any(killed):
        assert 2 <= acked_before_rerun < pages
    # The collection holds each page once, with the local store's results; the store is intact.
    remote = QdrantIndex.open(str(db), "c")
    try:
        assert len(remote) == pages == _acked(store)
        there = [(h.path, h.page, h.score) for h in remote.search("tyre pressure", k=20)]
        assert [x[:2] for x in there] == [x[:2] for x in before] and len(set(x[:2] for x in there)) == len(there)
        assert all(abs(a[2] - b[2]) < 1e-3 for a, b in zip(before, there))
        assert [(h.path, h.page, h.score) for h in Index.open(store).search("tyre pressure", k=20)] == before
        again = local.sync(str(db), "c")
        assert (again.upserted, again.deleted, again.unchanged) == (0, 0, pages)
    finally:
        remote.close()
