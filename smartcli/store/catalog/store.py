"""A store directory opened: its catalog connection, its write lock, its metadata, and its
segments opened as the catalog records them.

Readers see the last committed catalog state (SQLite WAL snapshot isolation); one writer at a
time holds the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import sqlite3
import time
from pathlib import Path

from smartcli import defaults
from smartcli.errors import ErrorKind, StoreBusy, StoreDamaged, StoreError, StoreMissing
from smartcli.models.base import ModelInfo
from smartcli.store.catalog import schema
from smartcli.store.catalog.connection import connect, connect_replacing, damaged_catalog, storage_error
from smartcli.store.catalog.integrity import raise_if_damaged
from smartcli.store.catalog.layout import CATALOG, LOCK, REBUILD_CATALOG, SEGMENT_DIR, check_is_store, remove_catalog
from smartcli.store.catalog.retirement import remove_leftovers, remove_leftovers_before_rebuild, retire
from smartcli.store.segments import Expected, Segment


class Store:
    """A store directory. Open for reading with :meth:`open`, for writing with :meth:`open_for_writing`."""

    def __init__(self, root: Path, conn: sqlite3.Connection, lock_file=None, rebuilding: bool = False):
        self.root = root
        self.conn = conn
        self._lock_file = lock_file
        self.readable_schema2 = False  # a schema-2 catalog this process cannot upgrade: read without the integrity columns
        self.rebuilding = rebuilding  # writing a new catalog beside the old one (finish_rebuild swaps)
        # Segments never change: each is checked against the catalog once per process.
        self._checked: dict[str, tuple] = {}  # name -> (offsets, row CRCs)
        self._dims: int | None = None  # the model's, once a segment was checked

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | Path, verify: bool = True) -> Store:
        """Open for reading. ``verify`` refuses a store whose segment files are missing or cut short."""
        root = Path(root)
        catalog = root / CATALOG
        if not catalog.exists():
            raise StoreMissing(f"no index at {root}")
        conn = connect(catalog, reading=True)
        store = cls(root, conn)
        try:
            schema.check(store, upgrade=True)
            if verify:
                raise_if_damaged(store)
        except BaseException:
            conn.close()
            raise
        return store

    @staticmethod
    def lock_only(root: str | Path, wait: bool = False, on_wait=None):
        """Take the store's write lock (creating the directory); the returned file holds it.

        Without ``wait`` a held lock raises :class:`StoreBusy`; with it, ``on_wait()`` is
        called once and the call blocks until the other writer ends.
        """
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            lock_file = open(root / LOCK, "a+")
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT) or (root / CATALOG).exists():
                raise storage_error(root, exc) from None
            raise StoreError(f"cannot create the store at {root}: {exc.strerror or exc}", kind=ErrorKind.STORE_UNWRITABLE) from None
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                lock_file.close()
                raise StoreBusy(f"another writer (an index run or a compaction) is writing to {root}", path=str(root)) from None
            if on_wait is not None:
                on_wait()
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        return lock_file

    @classmethod
    def open_for_writing(cls, root: str | Path, wait: bool = False, rebuild: bool = False, on_wait=None) -> Store:
        """Take the write lock and open (creating if needed).

        ``rebuild`` builds a new catalog beside the old one, which stays whole and searchable
        until :meth:`finish_rebuild` swaps it in (an interrupted rebuild leaves the old store
        as it was). Nothing is deleted before the new store is complete.
        """
        root = Path(root)
        check_is_store(root)
        lock_file = cls.lock_only(root, wait, on_wait)
        try:
            (root / SEGMENT_DIR).mkdir(exist_ok=True)
            schema.write_marker(root)
            if rebuild:
                remove_catalog(root / REBUILD_CATALOG)  # an interrupted rebuild's, and its segments:
                remove_leftovers_before_rebuild(root)
            store = cls(root, connect(root / (REBUILD_CATALOG if rebuild else CATALOG)), lock_file, rebuilding=rebuild)
            try:
                schema.prepare_for_writing(store)
                if not rebuild:
                    raise_if_damaged(store)
                    remove_leftovers(store)
                    schema.settle_page_roles(store.conn)
            except sqlite3.DatabaseError as exc:
                raise damaged_catalog(root, exc) from None
        except BaseException:
            lock_file.close()
            raise
        return store

    def finish_rebuild(self) -> None:
        """Make the catalog built beside the old one (``open_for_writing(rebuild=True)``) the
        store's, in one transaction; the old store stays whole and searchable until then.

        The new catalog is copied over the old one with SQLite's backup API (a single write
        transaction: readers see the old state or the new one). The old segments are retired
        (searches that started before can finish; a later writer deletes them).
        """
        if not self.rebuilding:
            return
        new_segments = {r[0] for r in self.conn.execute("SELECT name FROM segments")}
        old_segments = {p.stem for p in (self.root / SEGMENT_DIR).glob("*.h5") if not p.name.startswith(".tmp-")}
        with self.conn:
            retire(self.conn, sorted(old_segments - new_segments), time.time())
        target = connect_replacing(self.root / CATALOG, like=self.conn)
        try:
            self.conn.backup(target)
        finally:
            target.close()
        self.conn.close()
        remove_catalog(self.root / REBUILD_CATALOG)
        self.conn = connect(self.root / CATALOG)
        self.rebuilding = False

    def close(self) -> None:
        self.conn.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def read_snapshot(self):
        """Make every query inside see one committed state, even while a writer commits."""
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            self.conn.rollback()

    # -- metadata (schema.py lists the keys) -------------------------------------------------

    @property
    def meta(self) -> dict:
        return {key: json.loads(value) for key, value in self.conn.execute("SELECT key, value FROM meta")}

    @property
    def model(self) -> ModelInfo | None:
        raw = self.meta.get("model")
        return ModelInfo(**raw) if raw else None

    @property
    def token_dtype(self) -> str:
        return self.meta.get("token_dtype", defaults.TOKEN_DTYPE)

    @property
    def token_pooling(self) -> float:
        """The Ward distance a page's token states are pooled at before they are stored (0: none; store/pooling.py)."""
        return float(self.meta.get("token_pooling", 0.0))

    @property
    def roots(self) -> list[str]:
        """The paths this store was asked to index."""
        try:
            return list(self.meta.get("roots") or [])
        except sqlite3.DatabaseError:
            return []

    # -- segments ----------------------------------------------------------------------------

    def segment_path(self, name: str) -> Path:
        return self.root / SEGMENT_DIR / f"{name}.h5"

    def open_segment(self, name: str, check: bool = True) -> Segment:
        """The segment ``name``, checked against the catalog's record of it (identity, rows,
        token count, dims, offsets); a damaged one raises :class:`StoreDamaged` whose
        ``details["segment"]`` names it."""
        try:
            if check and name in self._checked:
                segment = Segment(self.segment_path(name))
                segment._offsets, segment._crcs = self._checked[name]
                return segment
            expect = self.expected(name) if check else None
            segment = Segment(self.segment_path(name), expect)
        except StoreDamaged as exc:
            raise StoreDamaged(str(exc), **{**exc.details, "roots": self.roots}) from None
        if expect is not None:
            self._checked[name] = (segment._offsets, segment._crcs)
        return segment

    def expected(self, name: str) -> Expected | None:
        """What the catalog says segment ``name`` holds (None: it does not list it)."""
        row = self.conn.execute(f"SELECT rows, tokens, {schema.v3(self, 'uid')} FROM segments WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        if self._dims is None:
            model = self.model
            self._dims = model.dims if model else None
        return Expected(row[0], row[1], row[2], self._dims)
