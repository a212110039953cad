"""SIGKILL `smart index` at seeded random points: the store must stay openable with whole
files only, the next run must resume without re-encoding what was committed, and the
result must equal an uninterrupted run's (same items, same vectors).

The reference is the same indexing code run in this process without interruption.
Kill points: one during start-up, three after a seeded share of the pages has been
committed (plus a seeded delay, so the kill lands anywhere in the next batch: encoding,
writing the segment, committing), and one in an update run (moves, copies, removals,
changes) after its first commit. Finally `smart compact` is killed at a seeded moment and
must leave every stored value unchanged.
"""

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from smartcli.errors import StoreMissing
from smartcli.ingest.indexer import Indexer
from smartcli.ingest.planning import plan_changes
from smartcli.store.catalog import Store, reads, writes
from smartcli.store.catalog.layout import SEGMENT_DIR
from smartcli.store.catalog.retirement import retired_segments
from tests.conftest import ROOT
from tests.corpus import make_many_pdfs, make_pdf, random_text
from tests.store_helpers import assert_same_index, snapshot

SEED = 20261126
N_FILES = 105
BATCH_PAGES = 8
# One intra-op thread: faster on a loaded machine, and the same for every run compared.
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def index_command(corpus, store):
    return [sys.executable, "-m", "smartcli", "index", str(corpus), "--store", str(store), "--batch-pages", str(BATCH_PAGES), "--json"]


def run_index(corpus, store) -> dict:
    result = subprocess.run(index_command(corpus, store), capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def index_uninterrupted(corpus, root, encoder):
    """The reference: the same indexing code, in this process, never interrupted."""
    with Store.open_for_writing(root) as store:
        writes.bind_model(store, encoder.info)
        plan, hashes = plan_changes(store, [str(corpus)])
        summary = Indexer(store, encoder, batch_pages=BATCH_PAGES).run(plan, hashes)
        writes.record_roots(store, [str(corpus)])
    return summary


def start_index(corpus, store) -> subprocess.Popen:
    return subprocess.Popen(index_command(corpus, store), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)


def catalog_value(store: Path, sql: str):
    """Read the catalog as a concurrent reader would; None before its tables exist."""
    catalog = store / "catalog.sqlite"
    if not catalog.exists():
        return None
    conn = sqlite3.connect(catalog, timeout=10)
    try:
        return conn.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def kill_when(proc: subprocess.Popen, ready, delay: float) -> bool:
    """Poll until ``ready()``, wait ``delay`` seconds, SIGKILL. False if the run ended first."""
    while proc.poll() is None and not ready():
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def check_consistent(store: Path, versions: dict[str, list[list[str]]]) -> int:
    """The store opens and holds whole files only, each one version of the file; returns its page count."""
    try:
        snap = snapshot(store)  # opens with segment verification, reads every vector, fails on duplicates
    except StoreMissing:
        return 0  # killed before the catalog had its tables
    by_path: dict[str, dict[int, str]] = {}
    for (path, page), (_, text, pooled, *_rest) in snap.items():
        assert pooled is not None, (path, page)
        by_path.setdefault(path, {})[page] = text
    for path, pages in by_path.items():
        assert sorted(pages) == list(range(1, len(pages) + 1)), f"{path}: pages {sorted(pages)}"
        texts = [pages[p] for p in sorted(pages)]
        assert any(texts == [" ".join(t.split()) for t in version] for version in versions[path]), path
    return len(snap)


def assert_no_leftovers(store: Path) -> None:
    with Store.open(store) as opened:
        known = {s["name"] for s in reads.segment_usage(opened)} | set(retired_segments(opened))
    on_disk = {p.name for p in (store / SEGMENT_DIR).iterdir()}
    assert on_disk <= {f"{name}.h5" for name in known}, "segment files the catalog does not know"


def mutate(corpus: Path, pages: dict[str, list[str]], rng: random.Random) -> dict[str, list[str]]:
    """Rename, delete, change, add and copy files; return the new path -> page texts."""
    paths = sorted(pages)
    rng.shuffle(paths)
    renamed, deleted, changed, copied = paths[:8], paths[8:16], paths[16:24], paths[24:28]
    new_pages = dict(pages)
    (corpus / "moved").mkdir()
    for path in renamed:
        target = str(corpus / "moved" / f"renamed-{Path(path).name}")
        os.rename(path, target)
        new_pages[target] = new_pages.pop(path)
    for path in deleted:
        os.remove(path)
        del new_pages[path]
    for path in changed:
        texts = [f"changed {Path(path).stem}: {random_text(rng)}"]
        make_pdf(path, texts)
        new_pages[path] = texts
    for i in range(8):
        path = str(corpus / "moved" / f"new-{i}.pdf")
        texts = [f"new file {i}: {random_text(rng)}"]
        make_pdf(path, texts)
        new_pages[path] = texts
    for path in copied:
        target = str(corpus / "moved" / f"copy-of-{Path(path).name}")
        shutil.copy(path, target)
        new_pages[target] = new_pages[path]
    return new_pages


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path, encoder):
    rng = random.Random(SEED)
    corpus = tmp_path / "corpus"
    pages = make_many_pdfs(corpus, N_FILES, seed=SEED, max_pages=3)
    total_pages = sum(len(p) for p in pages.values())
    assert total_pages >= 200
    versions = {path: [texts] for path, texts in pages.items()}
    baseline, killed = tmp_path / "baseline", tmp_path / "killed"

    summary = index_uninterrupted(corpus, baseline, encoder)
    assert summary.added == N_FILES and summary.pages_encoded == total_pages

    # Phase 1: a first index, killed again and again.
    kill_points = [("start-up", None, rng.uniform(0.3, 2.0))]
    kill_points += [("committed", t, rng.uniform(0.0, 0.25)) for t in sorted(rng.sample(range(total_pages // 10, total_pages * 3 // 4), 3))]
    committed, hits = 0, []
    for kind, threshold, delay in kill_points:
        proc = start_index(corpus, killed)
        if kind == "start-up":
            hit = kill_when(proc, lambda: True, delay)
        else:
            hit = kill_when(
                proc, lambda threshold=threshold: (catalog_value(killed, "SELECT COUNT(*) FROM items") or 0) >= threshold, delay
            )
        hits.append(hit)
        now = check_consistent(killed, versions)
        assert now >= committed, "a kill lost committed pages"
        committed = now
    assert sum(hits) >= 3, f"too few kills landed mid-run: {hits}"
    assert committed < total_pages

    resumed = run_index(corpus, killed)
    assert resumed["added"] + resumed["unchanged"] == N_FILES
    assert resumed["pages_encoded"] == total_pages - committed, "committed pages were encoded again"
    assert_same_index(snapshot(killed), snapshot(baseline))
    assert_no_leftovers(killed)

    # Phase 2: an update run (rename, delete, change, add, copy), killed after its first commit.
    new_pages = mutate(corpus, pages, rng)
    for path, texts in new_pages.items():
        versions.setdefault(path, [])
        if texts not in versions[path]:
            versions[path].append(texts)
    expected = index_uninterrupted(corpus, baseline, encoder)
    assert (expected.moved, expected.removed, expected.updated, expected.added, expected.copied) == (8, 8, 8, 8, 4)
    before = catalog_value(killed, "SELECT value FROM meta WHERE key = 'updated'")
    proc = start_index(corpus, killed)
    hit = kill_when(proc, lambda: catalog_value(killed, "SELECT value FROM meta WHERE key = 'updated'") != before, rng.uniform(0.0, 0.5))
    check_consistent(killed, versions)
    final = run_index(corpus, killed)
    assert final["pages_encoded"] <= expected.pages_encoded
    assert_same_index(snapshot(killed), snapshot(baseline))
    assert_no_leftovers(killed)

    # Compaction rewrites segments but must not change a single stored value, killed or not.
    before_compaction = snapshot(killed)
    compact = [sys.executable, "-m", "smartcli", "compact", "--store", str(killed), "--json"]
    compact_hit = kill_when(subprocess.Popen(compact, cwd=ROOT, stdout=subprocess.DEVNULL), lambda: True, rng.uniform(0.3, 1.5))
    assert_same_index(snapshot(killed), before_compaction, pooled_atol=0, token_atol=0)
    result = subprocess.run(compact, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert_same_index(snapshot(killed), before_compaction, pooled_atol=0, token_atol=0)
    assert_no_leftovers(killed)
    with Store.open(killed) as store:
        assert reads.stats(store)["garbage_rows"] == 0
    print(
        f"index kill points: {len(kill_points) + 1}, landed mid-run: {sum(hits) + hit}; "
        f"pages committed before the resume: {committed}/{total_pages}; compact killed mid-run: {compact_hit}"
    )
