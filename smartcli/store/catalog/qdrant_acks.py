"""Which points (and which version of each) a Qdrant collection has acknowledged: what lets a
sync (store/qdrant.py) send only the difference and resume where a cut-short run stopped."""

from __future__ import annotations

from collections.abc import Iterable

from smartcli.store.catalog.schema import ensure_qdrant_acked


def acked_versions(store, target: str, collection: str) -> dict[str, str]:
    """point id -> version, of what ``collection`` at ``target`` acknowledged."""
    ensure_qdrant_acked(store.conn)
    rows = store.conn.execute("SELECT point_id, version FROM qdrant_acked WHERE target = ? AND collection = ?", (target, collection))
    return dict(rows.fetchall())


def record_acked(store, target: str, collection: str, versions: Iterable[tuple[str, str]]) -> None:
    """Record ``(point id, version)`` pairs the collection now holds, in one transaction."""
    with store.conn:
        store.conn.executemany(
            "INSERT OR REPLACE INTO qdrant_acked(target, collection, point_id, version) VALUES (?, ?, ?, ?)",
            [(target, collection, pid, version) for pid, version in versions],
        )


def forget_acked(store, target: str, collection: str, point_ids: Iterable[str] | None = None) -> None:
    """Forget what the collection acknowledged: the points ``point_ids``, or all of them."""
    with store.conn:
        if point_ids is None:
            store.conn.execute("DELETE FROM qdrant_acked WHERE target = ? AND collection = ?", (target, collection))
        else:
            store.conn.executemany(
                "DELETE FROM qdrant_acked WHERE target = ? AND collection = ? AND point_id = ?",
                [(target, collection, pid) for pid in point_ids],
            )
