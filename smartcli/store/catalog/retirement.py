"""Segments no item points at any more, and other leftovers of earlier runs.

Several items may point at the same segment row (copies of one file share vectors). A
segment no item points at any more is *retired*: it leaves the ``segments`` table but its
file stays on disk for ``SEGMENT_GRACE_SECONDS`` so that a search that read the catalog
before the change can still open it; a later writer deletes it. Segment files the catalog
does not name are leftovers of an interrupted run and are deleted by the next writer, of any
kind: a rebuild judges them by the store's catalog before it starts its own (a killed rebuild's
segments no catalog names would otherwise stay until some rebuild completes).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from smartcli.errors import SmartError
from smartcli.store.catalog.layout import CATALOG, REBUILD_CATALOG, SEGMENT_DIR, remove_catalog

# Deleted segment files are kept this long so that searches that started before a
# compaction can still read them.
SEGMENT_GRACE_SECONDS = 600


def retire(conn, names: Iterable[str], now: float) -> None:
    """Take segments out of the catalog, their files kept for the grace time (inside the
    caller's transaction)."""
    for name in names:
        conn.execute("DELETE FROM segments WHERE name = ?", (name,))
        conn.execute("INSERT OR REPLACE INTO retired_segments VALUES (?, ?)", (name, now))


def retire_unused(conn, now: float) -> None:
    """Retire the segments no item references any more (inside the caller's transaction)."""
    unused = [
        r[0]
        for r in conn.execute("SELECT name FROM segments WHERE name NOT IN (SELECT DISTINCT segment FROM items WHERE segment IS NOT NULL)")
    ]
    retire(conn, unused, now)


def retired_segments(store) -> dict[str, float]:
    """Retired segment -> when it was retired (``time.time()``)."""
    return dict(store.conn.execute("SELECT name, retired FROM retired_segments").fetchall())


def remove_leftovers(store) -> None:
    """Delete temporary and unreferenced segment files, and retired ones past their grace time
    (writers only)."""
    remove_catalog(store.root / REBUILD_CATALOG)  # an interrupted rebuild's (its segments go below)
    known = {r[0] for r in store.conn.execute("SELECT name FROM segments")}
    retired = retired_segments(store)
    now = time.time()
    for path in _segment_files(store.root):
        name = path.stem
        if path.name.startswith(".tmp-"):
            path.unlink(missing_ok=True)
        elif name in retired:
            if now - retired[name] > SEGMENT_GRACE_SECONDS:
                path.unlink(missing_ok=True)
        elif name not in known:
            path.unlink(missing_ok=True)
    expired = [name for name, when in retired.items() if now - when > SEGMENT_GRACE_SECONDS]
    if expired:
        with store.conn:
            store.conn.executemany("DELETE FROM retired_segments WHERE name = ?", [(n,) for n in expired])


def remove_leftovers_before_rebuild(root: Path) -> None:
    """Before a rebuild starts its catalog (writers only): delete temporary segment files and those
    neither the store's catalog nor its retired list names (an interrupted rebuild's). A catalog
    that cannot be read (a damaged store, which a rebuild is the way out of) deletes nothing."""
    from smartcli.store.catalog.connection import connect

    catalog = root / CATALOG
    if not catalog.exists():
        return
    try:
        conn = connect(catalog, reading=True)
        try:
            named = {r[0] for r in conn.execute("SELECT name FROM segments")}
            named |= {r[0] for r in conn.execute("SELECT name FROM retired_segments")}
        finally:
            conn.close()
    except (sqlite3.DatabaseError, SmartError):
        return
    for path in _segment_files(root):
        if path.name.startswith(".tmp-") or path.stem not in named:
            path.unlink(missing_ok=True)


def _segment_files(root: Path) -> list[Path]:
    """The segment files (finished or temporary) this store made; other files are never deleted."""
    return [p for p in (root / SEGMENT_DIR).glob("*.h5") if p.stem.startswith(("seg-", ".tmp-seg-"))]
