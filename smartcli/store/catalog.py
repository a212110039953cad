"""The on-disk index: a SQLite catalog plus immutable HDF5 vector segments.

Layout of a store directory::

    catalog.sqlite        files, items (pages), segments, metadata; the only mutable file
    segments/<name>.h5    pooled vectors and token states of one committed batch
    lock                  held (flock) by the one process allowed to write

A segment is written under a temporary name, fsynced and renamed into place before
the catalog transaction that references it commits, so a crash at any moment leaves
the catalog pointing only at complete segments. Segment files the catalog does not
name are leftovers of an interrupted run and are deleted by the next writer.
Readers see the last committed catalog state (SQLite WAL snapshot isolation).

Several items may point at the same segment row (copies of one file share vectors).
A segment no item points at any more is *retired*: it leaves the ``segments`` table
but its file stays on disk for ``SEGMENT_GRACE_SECONDS`` so that a search that read
the catalog before the change can still open it; a later writer deletes it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import sqlite3
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from smartcli import defaults
from smartcli.errors import ErrorKind, ModelMismatch, StoreBusy, StoreDamaged, StoreError, StoreMissing, first_line
from smartcli.models.base import TEXT_NORMALIZATION, Encoded, ModelInfo, normalize_text
from smartcli.store.formats import TOKEN_FORMATS
from smartcli.store.notes import Note, schema1_note
from smartcli.store.skips import skip_code, skip_words, stored_skip
from smartcli.store.pageroles import BODY, page_role, text_role
from smartcli.store.segments import Damage, Expected, Segment, SegmentFile, damaged, new_segment_file, write_pages

# 2: items.note holds codes (store/notes.py) and items.note_detail a library's message.
# 3: segments.uid (the identity written into the file) and segments.digests (SHA-256 per
#    dataset, JSON); items.text_crc (CRC-32 of the page's text as UTF-8). Rows written
#    before 3 keep NULL there: their segments are checked for shapes only (see segments.py).
SCHEMA_VERSION = 3
CATALOG = "catalog.sqlite"
REBUILD_CATALOG = "rebuild.sqlite"  # a rebuild's new catalog, until it replaces CATALOG
SEGMENT_DIR = "segments"
TOKEN_DTYPES = TOKEN_FORMATS
DEFAULT_TOKEN_DTYPE = defaults.TOKEN_DTYPE
# Deleted segment files are kept this long so that searches that started before a
# compaction can still read them.
SEGMENT_GRACE_SECONDS = 600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path BLOB UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT,
    status TEXT NOT NULL,          -- indexed | skipped
    reason TEXT,                   -- a code of store/skips.py (status 'skipped', or a damaged PDF partly indexed)
    indexed_at REAL NOT NULL,
    text_version INTEGER           -- models.base.TEXT_NORMALIZATION its text was read with
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    page INTEGER NOT NULL,
    segment TEXT,                  -- NULL: discovered but not encoded (see note)
    row INTEGER,
    n_tokens INTEGER NOT NULL DEFAULT 0,
    text TEXT,
    note TEXT,                     -- a code of store/notes.py
    note_detail TEXT,
    ocr TEXT,                      -- OCR language when text came from OCR
    text_crc INTEGER,              -- CRC-32 of text (UTF-8) when committed; NULL before schema 3
    page_role TEXT                 -- a code of store/pageroles.py (NULL: not judged yet)
);
CREATE INDEX IF NOT EXISTS items_by_file ON items(file_id);
CREATE INDEX IF NOT EXISTS items_by_segment ON items(segment, row);
CREATE TABLE IF NOT EXISTS segments (
    name TEXT PRIMARY KEY,
    rows INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL,
    uid TEXT,                      -- the identity in the file's attributes (NULL: written before schema 3)
    digests TEXT                   -- JSON {dataset: SHA-256 of its contents}
);
CREATE TABLE IF NOT EXISTS retired_segments (name TEXT PRIMARY KEY, retired REAL NOT NULL);
"""


def default_store_path() -> Path:
    """``$SMART_STORE``, else ``$XDG_DATA_HOME/smart/store`` (``~/.local/share/smart/store``)."""
    if os.environ.get("SMART_STORE"):
        return Path(os.environ["SMART_STORE"]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "smart" / "store"


def fs_path(path: bytes | str) -> str:
    return os.fsdecode(path)


def db_path(path: str) -> bytes:
    # Paths are stored as bytes so that names that are not valid UTF-8 survive.
    return os.fsencode(path)


@dataclass
class PageRecord:
    """One page (or image) of a file, ready to be committed."""

    page: int
    text: str | None
    encoded: Encoded | None
    note: Note | None = None  # why the page has no vectors
    detail: str | None = None  # a library's message about the note, if any
    ocr: str | None = None  # OCR language when ``text`` came from OCR
    role: str | None = None  # store/pageroles.py: what the outline says; else judged from ``text`` on commit
    # (segment name, row, token count) once the page's vectors were written to a segment ahead of
    # its file's commit (a long file is encoded and written in bounded batches; see indexer.py).
    stored: tuple[str, int, int] | None = None
    pictured: bool | None = None  # a short-text page shows something OCR could read (None: not looked)


@dataclass
class FileRecord:
    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str | None
    pages: list[PageRecord]
    status: str = "indexed"
    reason: str | None = None


@dataclass
class LiveItem:
    item_id: int
    path: str
    page: int
    kind: str
    segment: str
    row: int
    n_tokens: int
    text: str
    role: str = BODY  # store/pageroles.py


class Store:
    """A store directory. Open for reading with :meth:`open`, for writing with :meth:`open_for_writing`."""

    def __init__(self, root: Path, conn: sqlite3.Connection, lock_file=None):
        self.root = root
        self.conn = conn
        self._lock_file = lock_file
        self.readable_schema2 = False  # a schema-2 catalog this process cannot upgrade: read without the integrity columns
        self.rebuilding = False  # writing a new catalog beside the old one (finish_rebuild swaps)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | Path, verify: bool = True) -> "Store":
        """Open for reading. ``verify`` refuses a store whose segment files are missing or cut short."""
        root = Path(root)
        catalog = root / CATALOG
        if not catalog.exists():
            raise StoreMissing(f"no index at {root}")
        conn = _connect(catalog, reading=True)
        store = cls(root, conn)
        try:
            store._check_schema(upgrade=True)
            if verify:
                store.raise_if_damaged()
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
            lock_file = open(root / "lock", "a+")
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
    def open_for_writing(cls, root: str | Path, wait: bool = False, rebuild: bool = False, on_wait=None) -> "Store":
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
            _write_marker(root)
            if rebuild:
                _remove_catalog(root / REBUILD_CATALOG)  # an interrupted rebuild's
            conn = _connect(root / (REBUILD_CATALOG if rebuild else CATALOG))
            store = cls(root, conn, lock_file)
            store.rebuilding = rebuild
            try:
                fresh = "meta" not in _tables(conn)
                if not fresh:
                    store._check_schema(upgrade=True)
                conn.executescript(_SCHEMA)
                if "text_version" not in _columns(conn, "files"):
                    # Added in place (no schema change): NULL marks text read before versions were kept.
                    with conn:
                        conn.execute("ALTER TABLE files ADD COLUMN text_version INTEGER")
                if "page_role" not in _columns(conn, "items"):
                    # Added in place (no schema change); NULL until judged (settle_page_roles).
                    with conn:
                        conn.execute("ALTER TABLE items ADD COLUMN page_role TEXT")
                if "reason_detail" not in _columns(conn, "files"):
                    # Added in place (no schema change): files.reason holds a code of store/skips.py.
                    with conn:
                        conn.execute("ALTER TABLE files ADD COLUMN reason_detail TEXT")
                store.settle_skip_codes()
                if store.meta.get("schema_version") is None:
                    with conn:
                        store._set_meta("schema_version", SCHEMA_VERSION)
                        store._set_meta("created", time.time())
                store._check_schema()
                if not rebuild:
                    store.raise_if_damaged()
                    store._remove_leftovers()
                    store.settle_page_roles()
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
        if not getattr(self, "rebuilding", False):
            return
        now = time.time()
        new_segments = {r[0] for r in self.conn.execute("SELECT name FROM segments")}
        old_segments = {p.stem for p in (self.root / SEGMENT_DIR).glob("*.h5") if not p.name.startswith(".tmp-")}
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO retired_segments VALUES (?, ?)", [(n, now) for n in sorted(old_segments - new_segments)]
            )
        target = self._old_catalog()
        try:
            self.conn.backup(target)
        finally:
            target.close()
        self.conn.close()
        _remove_catalog(self.root / REBUILD_CATALOG)
        self.conn = _connect(self.root / CATALOG)
        self.rebuilding = False

    def _old_catalog(self) -> sqlite3.Connection:
        """A connection to the catalog being replaced; a damaged one is removed first (only now,
        with its replacement complete)."""
        path = self.root / CATALOG
        if path.exists():
            try:
                conn = _connect(path)
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                if conn.execute("PRAGMA page_size").fetchone()[0] == self.conn.execute("PRAGMA page_size").fetchone()[0]:
                    return conn
                conn.close()
            except (StoreError, sqlite3.DatabaseError):
                pass
            _remove_catalog(path)
        return _connect(path)

    def close(self) -> None:
        self.conn.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_schema(self, upgrade: bool = False) -> None:
        """Refuse a catalog of another schema; with ``upgrade``, migrate an older one in place first."""
        try:
            if "meta" not in _tables(self.conn):
                # A brand-new catalog whose first writer has not created its tables yet.
                raise StoreMissing(f"the index at {self.root} is empty", kind=ErrorKind.STORE_EMPTY)
            version = self.meta.get("schema_version")
            if upgrade and version is not None and int(version) < SCHEMA_VERSION:
                self._migrate()
                version = self.meta.get("schema_version")
        except sqlite3.DatabaseError as exc:
            raise damaged_catalog(self.root, exc) from None
        if version is not None and int(version) != SCHEMA_VERSION and not (self.readable_schema2 and int(version) == 2):
            raise StoreError(
                f"{self.root} has store schema {version}, this smart reads {SCHEMA_VERSION}",
                kind=ErrorKind.STORE_SCHEMA,
                roots=self.roots,
            )

    def _migrate(self) -> None:
        """Bring an older catalog up to SCHEMA_VERSION in one transaction (readers and writers alike
        may run it: it re-reads the version under SQLite's write lock, so it runs once)."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(json.loads(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]))
            if version == 1:
                _migrate_1_to_2(conn)
                version = 2
            if version == 2:
                _migrate_2_to_3(conn)
                version = 3
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (json.dumps(version),))
            conn.commit()
        except sqlite3.OperationalError as exc:
            conn.rollback()
            readonly = "readonly" in str(exc) or "read-only" in str(exc)
            if readonly and int(self.meta.get("schema_version")) == 2:
                # 3 only adds columns: read without them (nothing is checked against digests).
                self.readable_schema2 = True
                return
            if readonly:
                raise StoreError(
                    f"{self.root} was written by an older smart and must be upgraded, which needs write access",
                    kind=ErrorKind.STORE_UNWRITABLE,
                ) from None
            raise
        except BaseException:
            conn.rollback()
            raise

    # -- integrity -------------------------------------------------------------------------

    def problems(self) -> list[str]:
        """What is wrong with the segment files the catalog relies on (cheap: no data is read)."""
        found = []
        for name, size in self.conn.execute("SELECT name, bytes FROM segments ORDER BY name"):
            path = self.segment_path(name)
            try:
                actual = path.stat().st_size
            except FileNotFoundError:
                found.append(f"segment {path.name} is missing")
                continue
            except OSError as exc:
                found.append(f"segment {path.name} cannot be read ({exc.strerror or exc})")
                continue
            if actual != size:
                found.append(f"segment {path.name} is damaged ({actual} bytes on disk, {size} committed)")
        orphans = [r[0] for r in self.conn.execute(
            "SELECT DISTINCT segment FROM items WHERE segment IS NOT NULL AND segment NOT IN (SELECT name FROM segments)"
        )]
        found += [f"pages point at segment {name}.h5, which the catalog does not list" for name in orphans]
        return found

    def raise_if_damaged(self) -> None:
        found = self.problems()
        if found:
            more = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
            raise StoreDamaged(f"the store at {self.root} is damaged: {found[0]}{more}", roots=self.roots)

    @property
    def roots(self) -> list[str]:
        """The paths this store was asked to index."""
        try:
            return list(self.meta.get("roots") or [])
        except sqlite3.DatabaseError:
            return []

    # -- metadata --------------------------------------------------------------------------

    @property
    def meta(self) -> dict:
        return {key: json.loads(value) for key, value in self.conn.execute("SELECT key, value FROM meta")}

    def _set_meta(self, key: str, value) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def model(self) -> ModelInfo | None:
        raw = self.meta.get("model")
        return ModelInfo(**raw) if raw else None

    @property
    def token_dtype(self) -> str:
        return self.meta.get("token_dtype", DEFAULT_TOKEN_DTYPE)

    def bind_model(self, info: ModelInfo, token_dtype: str = DEFAULT_TOKEN_DTYPE) -> None:
        """Record the store's model on first use; refuse a different one afterwards."""
        current = self.model
        if current is None:
            with self.conn:
                self._set_meta("model", info.__dict__)
                self._set_meta("token_dtype", token_dtype)
            return
        check_same_model(current, info, self.root)

    # -- reading ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def read_snapshot(self):
        """Make every query inside see one committed state, even while a writer commits."""
        self.conn.execute("BEGIN")
        try:
            yield self
        finally:
            self.conn.rollback()

    def live_items(self) -> list[LiveItem]:
        """Encoded items of the last committed state, ordered by segment and row.

        A page whose stored text is not what was committed (its CRC-32 differs, or it is not
        UTF-8 any more) keeps its vectors; its text is decoded with replacement characters and
        the page is listed in :attr:`damaged_texts` (a :class:`Damage` each). A page whose role
        is not recorded (a store written before roles were kept, opened for reading) is judged
        from its text here."""
        role = "items.page_role" if "page_role" in _columns(self.conn, "items") else "NULL"
        rows = self.conn.execute(
            f"""SELECT items.id, files.path, items.page, files.kind, items.segment, items.row,
                      items.n_tokens, CAST(COALESCE(items.text, '') AS BLOB), {self._v3("items.text_crc")}, {role}
               FROM items JOIN files ON files.id = items.file_id
               WHERE items.segment IS NOT NULL ORDER BY items.segment, items.row"""
        ).fetchall()
        self.damaged_texts = []
        items = []
        for r in rows:
            text, problem = _checked_text(r[7], r[8])
            if problem:
                self.damaged_texts.append(Damage(None, f"page {r[2]} of {fs_path(r[1])}", problem))
            items.append(LiveItem(r[0], fs_path(r[1]), r[2], r[3], r[4], r[5], r[6], text, r[9] or text_role(text)))
        return items

    def text_damage(self) -> list[Damage]:
        """Every page (encoded or not) whose stored text differs from what was committed."""
        rows = self.conn.execute(
            f"""SELECT items.page, files.path, CAST(items.text AS BLOB), {self._v3("items.text_crc")}
               FROM items JOIN files ON files.id = items.file_id WHERE items.text IS NOT NULL ORDER BY files.path, items.page"""
        )
        return [Damage(None, f"page {r[0]} of {fs_path(r[1])}", problem) for r in rows if (problem := _checked_text(r[2], r[3])[1])]

    def settle_page_roles(self) -> int:
        """Judge, from their stored text, the pages whose role is not recorded (pages indexed
        before roles were kept), without reading or encoding anything again (writers only).
        Returns how many were judged."""
        rows = self.conn.execute("SELECT id, text FROM items WHERE page_role IS NULL").fetchall()
        if rows:
            with self.conn:
                self.conn.executemany("UPDATE items SET page_role = ? WHERE id = ?", [(text_role(t), i) for i, t in rows])
        return len(rows)

    def unencoded_items(self) -> list[dict]:
        """Pages and images recorded without vectors: path, page, kind, note code and detail, by path and page."""
        rows = self.conn.execute(
            """SELECT files.path, items.page, files.kind, COALESCE(items.note, ''), items.note_detail
               FROM items JOIN files ON files.id = items.file_id
               WHERE items.segment IS NULL ORDER BY files.path, items.page"""
        ).fetchall()
        keys = ("path", "page", "kind", "note", "detail")
        return [dict(zip(keys, (fs_path(r[0]),) + tuple(r[1:]))) for r in rows]

    def item_origin(self, item_id: int) -> dict | None:
        """The file record behind item ``item_id`` as indexed (size, mtime) and its OCR language."""
        row = self.conn.execute(
            """SELECT files.size, files.mtime_ns, items.ocr FROM items JOIN files ON files.id = items.file_id
               WHERE items.id = ?""",
            (item_id,),
        ).fetchone()
        return None if row is None else {"size": row[0], "mtime_ns": row[1], "ocr": row[2]}

    def segment_path(self, name: str) -> Path:
        return self.root / SEGMENT_DIR / f"{name}.h5"

    def open_segment(self, name: str, check: bool = True) -> Segment:
        """The segment ``name``, checked against the catalog's record of it (identity, rows,
        token count, dims, offsets); a damaged one raises :class:`StoreDamaged` whose
        ``details["segment"]`` names it."""
        checked = getattr(self, "_checked", None)
        if checked is None:
            checked = self._checked = {}  # name -> (offsets, row CRCs): segments never change, checked once per process
        try:
            if check and name in checked:
                segment = Segment(self.segment_path(name))
                segment._offsets, segment._crcs = checked[name]
                return segment
            expect = self.expected(name) if check else None
            segment = Segment(self.segment_path(name), expect)
        except StoreDamaged as exc:
            raise StoreDamaged(str(exc), **{**exc.details, "roots": self.roots}) from None
        if expect is not None:
            checked[name] = (segment._offsets, segment._crcs)
        return segment

    def expected(self, name: str) -> Expected | None:
        """What the catalog says segment ``name`` holds (None: it does not list it)."""
        row = self.conn.execute(f"SELECT rows, tokens, {self._v3('uid')} FROM segments WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        if getattr(self, "_dims", None) is None:
            model = self.model
            self._dims = model.dims if model else None
        return Expected(row[0], row[1], row[2], self._dims)

    def _v3(self, column: str) -> str:
        """``column`` of schema 3, or NULL in a schema-2 catalog read as it is."""
        return "NULL" if self.readable_schema2 else column

    def segment_digests(self, name: str) -> dict | None:
        row = self.conn.execute(f"SELECT {self._v3('digests')} FROM segments WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def verify(self, on_segment=None) -> tuple[list[Damage], dict]:
        """Read every segment the catalog names and every page's text; returns what is damaged
        and counts of what was checked (``segments``, ``checksummed``, ``datasets``, ``bytes``,
        ``texts``). ``on_segment(name)`` is called before each segment is read."""
        orphans = self.conn.execute(
            "SELECT DISTINCT segment FROM items WHERE segment IS NOT NULL AND segment NOT IN (SELECT name FROM segments)"
        ).fetchall()
        found = [Damage(None, None, f"pages point at segment {r[0]}.h5, which the catalog does not list") for r in orphans]
        counts = {"segments": 0, "checksummed": 0, "datasets": 0, "bytes": 0, "texts": 0}
        for name, size in self.conn.execute("SELECT name, bytes FROM segments ORDER BY name").fetchall():
            if on_segment is not None:
                on_segment(name)
            counts["segments"] += 1
            path = self.segment_path(name)
            try:
                actual = path.stat().st_size
            except FileNotFoundError:
                found.append(Damage(name, None, "is missing"))
                continue
            except OSError as exc:
                found.append(Damage(name, None, f"cannot be read ({exc.strerror or exc})"))
                continue
            if actual != size:
                found.append(Damage(name, None, f"is {actual} bytes on disk, {size} committed"))
            try:
                segment = Segment(path)
            except StoreDamaged as exc:
                found.append(Damage(name, None, exc.details.get("problem") or str(exc)))
                continue
            with segment:
                digests = self.segment_digests(name)
                found += segment.verify(self.expected(name), digests)
                counts["checksummed"] += bool(digests) or segment.checksummed
                counts["datasets"] += len(segment._h5)
                counts["bytes"] += actual
        counts["texts"] = self.conn.execute("SELECT COUNT(*) FROM items WHERE text IS NOT NULL").fetchone()[0]
        found += self.text_damage()
        return found, counts

    def files(self) -> list[dict]:
        """Every file row; ``code``/``detail`` are its stored skip code (store/skips.py) and
        detail, ``reason`` their words (a reader's store of older sentences maps them as read)."""
        detail = "reason_detail" if "reason_detail" in _columns(self.conn, "files") else "NULL"
        rows = self.conn.execute(
            f"SELECT id, path, kind, size, mtime_ns, sha256, status, reason, {detail} FROM files ORDER BY path"
        ).fetchall()
        keys = ("id", "path", "kind", "size", "mtime_ns", "sha256", "status")
        found = []
        for r in rows:
            row = dict(zip(keys, (r[0], fs_path(r[1])) + tuple(r[2:7])))
            row["code"], row["detail"] = stored_skip(r[7], r[8])
            row["reason"] = skip_words(row["code"], row["detail"])
            found.append(row)
        return found

    def settle_skip_codes(self) -> int:
        """Map the sentences an older version stored in ``files.reason`` to codes, in place
        (prefix match; an unknown sentence becomes ``unreadable`` with itself as the detail)."""
        rows = self.conn.execute("SELECT id, reason, reason_detail FROM files WHERE reason IS NOT NULL").fetchall()
        fixed = [stored_skip(reason, detail) + (i,) for i, reason, detail in rows if stored_skip(reason, detail)[0] != reason]
        if fixed:
            with self.conn:
                self.conn.executemany("UPDATE files SET reason = ?, reason_detail = ? WHERE id = ?", fixed)
        return len(fixed)

    def stats(self) -> dict:
        q = self.conn.execute
        files_by_kind = dict(q("SELECT kind, COUNT(*) FROM files WHERE status='indexed' GROUP BY kind").fetchall())
        items_total = q("SELECT COUNT(*) FROM items").fetchone()[0]
        encoded, tokens = q("SELECT COUNT(*), COALESCE(SUM(n_tokens), 0) FROM items WHERE segment IS NOT NULL").fetchone()
        live_rows = q("SELECT COUNT(*) FROM (SELECT DISTINCT segment, row FROM items WHERE segment IS NOT NULL)").fetchone()[0]
        segment_rows, segment_bytes = q("SELECT COALESCE(SUM(rows), 0), COALESCE(SUM(bytes), 0) FROM segments").fetchone()
        not_encoded = dict(q("SELECT COALESCE(note, ''), COUNT(*) FROM items WHERE segment IS NULL GROUP BY note").fetchall())
        skipped = q("SELECT COUNT(*) FROM files WHERE status='skipped'").fetchone()[0]
        catalog_bytes = sum(p.stat().st_size for p in self.root.glob(CATALOG + "*") if p.is_file())
        retired = [self.segment_path(r[0]) for r in q("SELECT name FROM retired_segments")]
        retired_bytes = sum(p.stat().st_size for p in retired if p.exists())
        return {
            "files": files_by_kind,
            "items": items_total,
            "encoded_items": encoded,
            "shared_items": encoded - live_rows,  # items reusing another file's vectors (copies)
            "not_encoded": not_encoded,
            "skipped_files": skipped,
            "tokens": tokens,
            "segments": q("SELECT COUNT(*) FROM segments").fetchone()[0],
            "segment_rows": segment_rows,
            "garbage_rows": segment_rows - live_rows,
            "retired_segments": len(retired),
            "retired_bytes": retired_bytes,
            "bytes": segment_bytes + catalog_bytes + retired_bytes,  # all on disk now
            "live_bytes": segment_bytes + catalog_bytes,  # what stays after retired segments are deleted
        }

    def segment_usage(self) -> list[dict]:
        """Each committed segment with its live (referenced) row count, oldest first."""
        rows = self.conn.execute(
            """SELECT s.name, s.rows, s.tokens, s.bytes,
                      (SELECT COUNT(DISTINCT row) FROM items WHERE items.segment = s.name), s.uid IS NOT NULL
               FROM segments s ORDER BY s.created, s.name"""
        ).fetchall()
        return [dict(zip(("name", "rows", "tokens", "bytes", "live_rows", "checked"), (*r[:5], bool(r[5])))) for r in rows]

    def live_rows(self, segment: str) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT row FROM items WHERE segment = ? ORDER BY row", (segment,))]

    # -- writing ---------------------------------------------------------------------------

    def new_segment(self, expected_bytes: int = 0):
        """A new segment file of this store's model (see segments.new_segment_file), once
        :meth:`check_space` found room for ``expected_bytes``."""
        self.check_space(expected_bytes)
        info = self.model
        attrs = dict(
            model_name=info.name,
            model_fingerprint=info.fingerprint,
            pooling=info.pooling,
            dims=info.dims,
            token_dtype=self.token_dtype,
        )
        return new_segment_file(self.root / SEGMENT_DIR, attrs)

    def check_space(self, expected_bytes: int) -> None:
        """Refuse (DISK_FULL) when the disk has not room for ``expected_bytes`` and a margin:
        HDF5 running out of space mid-write may crash the process instead of raising."""
        free = free_bytes(self.root)
        if free < expected_bytes * 1.25 + LOW_SPACE_BYTES:
            raise StoreError(
                f"no space left on the disk of the store at {self.root} (about {max(expected_bytes, 1) / 1e6:.1f} MB "
                f"to write, {free / 1e6:.1f} MB free); nothing was committed half",
                kind=ErrorKind.DISK_FULL,
                path=str(self.root),
            )

    def write_segment(self, records: Sequence[FileRecord]) -> "SegmentFile | None":
        """Write the encoded pages of ``records`` to a new, complete segment file."""
        pages = [(f.path, p.page, p.encoded) for f in records for p in f.pages if p.encoded is not None]
        if not pages:
            return None
        with self.new_segment(_segment_bytes(pages, self.token_dtype)) as new:
            tokens = write_pages(new.h5, pages, self.token_dtype)
        return new.record(len(pages), tokens, self.segment_path(new.name).stat().st_size)

    def commit_files(
        self,
        records: Sequence[FileRecord],
        segment: "SegmentFile | None",
        replace_paths: Iterable[str] = (),
        written_ahead: Sequence["SegmentFile"] = (),
    ) -> None:
        """Atomically make ``records`` (and their new ``segment``) part of the index.

        Any existing catalog entry for the same paths (or for ``replace_paths``) is
        replaced in the same transaction. ``written_ahead``: segments written earlier for pages
        of these records (pages whose ``stored`` names them); until this commit no catalog row
        names them, so an interrupted run leaves them unreferenced (deleted on the next write).
        """
        now = time.time()
        with self.conn:
            for ahead in written_ahead:
                self._insert_segment(ahead, now)
            if segment is not None:
                self._insert_segment(segment, now)
            for path in list(replace_paths) + [r.path for r in records]:
                self.conn.execute("DELETE FROM files WHERE path = ?", (db_path(path),))
            row = 0
            for record in records:
                file_id = self._insert_file(record.path, record.kind, record.size, record.mtime_ns, record.sha256, record.status, record.reason, now)
                for page in record.pages:
                    if page.stored is not None:
                        values = (file_id, page.page, *page.stored, page.text, None, None)
                    elif page.encoded is not None:
                        values = (file_id, page.page, segment.name, row, int(page.encoded.tokens.shape[0]), page.text, None, None)
                        row += 1
                    else:
                        note = None if page.note is None else Note(page.note).value
                        values = (file_id, page.page, None, None, 0, page.text, note, page.detail)
                    self.conn.execute(
                        "INSERT INTO items(file_id, page, segment, row, n_tokens, text, note, note_detail, ocr, text_crc, page_role) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        values + (page.ocr, text_crc(page.text), page_role(page.text, page.role)),
                    )
            self._set_meta("updated", now)
            self._drop_dead_segments(now)

    def _insert_segment(self, segment: SegmentFile, now: float) -> None:
        self.conn.execute(
            "INSERT INTO segments(name, rows, tokens, bytes, created, uid, digests) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (segment.name, segment.rows, segment.tokens, segment.bytes, now, segment.uid,
             json.dumps(segment.digests, sort_keys=True) if segment.digests else None),
        )

    def _insert_file(self, path, kind, size, mtime_ns, sha256, status, reason, now, text_version=TEXT_NORMALIZATION) -> int:
        code, detail = skip_code(reason)  # stored as a code (store/skips.py) and its detail
        cur = self.conn.execute(
            "INSERT INTO files(path, kind, size, mtime_ns, sha256, status, reason, reason_detail, indexed_at, text_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (db_path(path), kind, size, mtime_ns, sha256, status, code and str(code), detail, now, text_version),
        )
        return cur.lastrowid

    def apply_changes(self, changes: "CatalogChanges") -> list[str]:
        """Apply moves, copies, content-unchanged touches and removals in one transaction.

        Returns the paths of copies whose content no indexed file holds any more (they
        must be encoded instead).
        """
        now = time.time()
        missing = []
        with self.conn:
            for old, new, size, mtime_ns in changes.moves:
                self.conn.execute("DELETE FROM files WHERE path = ?", (db_path(new),))
                self.conn.execute(
                    "UPDATE files SET path = ?, size = ?, mtime_ns = ?, indexed_at = ? WHERE path = ?",
                    (db_path(new), size, mtime_ns, now, db_path(old)),
                )
            for copy in changes.copies:
                if not self._copy_file(copy, now):
                    missing.append(copy.path)
            for path, size, mtime_ns in changes.touches:
                self.conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, db_path(path)))
            for path in changes.removals:
                self.conn.execute("DELETE FROM files WHERE path = ?", (db_path(path),))
            if changes:
                self._set_meta("updated", now)
            self._drop_dead_segments(now)
        return missing

    def _copy_file(self, copy: "FileCopy", now: float) -> bool:
        """Give ``copy.path`` the items of an indexed file with the same content (sharing its rows)."""
        source = self.conn.execute(
            "SELECT id, kind, text_version FROM files WHERE sha256 = ? AND status = 'indexed' AND path != ? ORDER BY id LIMIT 1",
            (copy.sha256, db_path(copy.path)),
        ).fetchone()
        if source is None:
            return False
        self.conn.execute("DELETE FROM files WHERE path = ?", (db_path(copy.path),))
        file_id = self._insert_file(copy.path, source[1], copy.size, copy.mtime_ns, copy.sha256, "indexed", None, now, source[2])
        self.conn.execute(
            """INSERT INTO items(file_id, page, segment, row, n_tokens, text, note, note_detail, ocr, text_crc, page_role)
               SELECT ?, page, segment, row, n_tokens, text, note, note_detail, ocr, text_crc, page_role FROM items WHERE file_id = ? ORDER BY id""",
            (file_id, source[0]),
        )
        return True

    def replace_segments(self, new: Sequence[SegmentFile], remap: Sequence[tuple[str, int, str, int]], old: Sequence[str]) -> None:
        """Point items at rewritten rows and retire the ``old`` segments, in one transaction.

        ``remap`` holds ``(old segment, old row, new segment, new row)``.
        """
        now = time.time()
        with self.conn:
            for segment in new:
                self._insert_segment(segment, now)
            self.conn.executemany(
                "UPDATE items SET segment = ?, row = ? WHERE segment = ? AND row = ?",
                [(new_seg, new_row, old_seg, old_row) for old_seg, old_row, new_seg, new_row in remap],
            )
            for name in old:
                self.conn.execute("DELETE FROM segments WHERE name = ?", (name,))
                self.conn.execute("INSERT OR REPLACE INTO retired_segments VALUES (?, ?)", (name, now))
            self._drop_dead_segments(now)

    def record_mounts(self, roots: Iterable[str], mounts: dict[str, int], unmounted: Iterable[str] = ()) -> None:
        """Remember the mount points found under ``roots`` (path -> device); those in ``unmounted``
        (recorded before, not mounted now) stay remembered until they are seen again."""
        roots = [r.rstrip(os.sep) + os.sep for r in roots]
        keep = set(unmounted)
        recorded = {
            p: d for p, d in (self.meta.get("mounts") or {}).items()
            if p in keep or not any((p + os.sep).startswith(r) for r in roots)
        }
        with self.conn:
            self._set_meta("mounts", {**recorded, **mounts})

    def record_roots(self, roots: Iterable[str]) -> None:
        known = set(self.meta.get("roots", []))
        with self.conn:
            self._set_meta("roots", sorted(known | set(roots)))

    def _drop_dead_segments(self, now: float) -> None:
        """Retire segments no item references any more (inside the caller's transaction)."""
        dead = [r[0] for r in self.conn.execute(
            "SELECT name FROM segments WHERE name NOT IN (SELECT DISTINCT segment FROM items WHERE segment IS NOT NULL)"
        )]
        for name in dead:
            self.conn.execute("DELETE FROM segments WHERE name = ?", (name,))
            self.conn.execute("INSERT OR REPLACE INTO retired_segments VALUES (?, ?)", (name, now))

    def _remove_leftovers(self) -> None:
        """Delete temporary and unreferenced segment files, and retired ones past their grace time."""
        _remove_catalog(self.root / REBUILD_CATALOG)  # an interrupted rebuild's (its segments go below)
        known = {r[0] for r in self.conn.execute("SELECT name FROM segments")}
        retired = dict(self.conn.execute("SELECT name, retired FROM retired_segments").fetchall())
        now = time.time()
        for path in (self.root / SEGMENT_DIR).glob("*.h5"):
            name = path.stem
            if not (name.startswith("seg-") or name.startswith(".tmp-seg-")):
                continue  # not a file this store made: never deleted
            if path.name.startswith(".tmp-"):
                path.unlink(missing_ok=True)
            elif name in retired:
                if now - retired[name] > SEGMENT_GRACE_SECONDS:
                    path.unlink(missing_ok=True)
            elif name not in known:
                path.unlink(missing_ok=True)
        expired = [name for name, when in retired.items() if now - when > SEGMENT_GRACE_SECONDS]
        if expired:
            with self.conn:
                self.conn.executemany("DELETE FROM retired_segments WHERE name = ?", [(n,) for n in expired])

    # -- OCR bookkeeping ----------------------------------------------------------------------

    def ocr_counts(self) -> dict:
        """Pages whose text came from OCR, by language."""
        return dict(self.conn.execute("SELECT ocr, COUNT(*) FROM items WHERE ocr IS NOT NULL GROUP BY ocr").fetchall())

    def paths_with_old_text(self, settle: bool = True) -> set[str]:
        """Indexed files whose text an older text normalization produced and the current one
        would change (writers only). Files whose stored text it leaves as it is (plain ASCII
        text, images) are marked current on the way, without being read again."""
        rows = self.conn.execute(
            "SELECT id, path FROM files WHERE status = 'indexed' AND (text_version IS NULL OR text_version < ?)", (TEXT_NORMALIZATION,)
        ).fetchall()
        stale, settled = set(), []
        for file_id, path in rows:
            texts = self.conn.execute("SELECT text FROM items WHERE file_id = ?", (file_id,))
            if all(text is None or normalize_text(text) == text for (text,) in texts):
                settled.append((TEXT_NORMALIZATION, file_id))
            else:
                stale.add(fs_path(path))
        if settled and settle:
            with self.conn:
                self.conn.executemany("UPDATE files SET text_version = ? WHERE id = ?", settled)
        return stale

    def paths_awaiting_ocr(self, notes: Iterable[Note]) -> set[str]:
        """Files with a text-less page noted with one of ``notes`` that OCR has not read."""
        codes = [Note(n).value for n in notes]
        rows = self.conn.execute(
            f"""SELECT DISTINCT files.path FROM items JOIN files ON files.id = items.file_id
                WHERE items.segment IS NULL AND items.ocr IS NULL AND items.note IN ({','.join('?' * len(codes))})""",
            codes,
        )
        return {fs_path(r[0]) for r in rows}


MARKER = "smart-store.json"  # says a directory is a smart store, and of which schema
# What a store directory holds; a directory with anything else is not (or not only) a store.
STORE_NAMES = {MARKER, "lock", CATALOG, CATALOG + "-wal", CATALOG + "-shm", CATALOG + "-journal", SEGMENT_DIR,
                REBUILD_CATALOG, REBUILD_CATALOG + "-wal", REBUILD_CATALOG + "-shm", REBUILD_CATALOG + "-journal"}


def check_is_store(root: Path) -> None:
    """Refuse (STORE_FOREIGN) a directory that holds things and is not a smart store: a store
    writes, and deletes its own leftovers, in the directory it is given."""
    root = Path(root)
    try:
        names = set(os.listdir(root))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise StoreError(f"{root} is a file, not a store directory", kind=ErrorKind.STORE_FOREIGN, path=str(root)) from None
    except OSError:
        return  # the lock or the catalog will say what is wrong
    if MARKER in names or not names:
        return
    if CATALOG in names and _is_smart_catalog(root / CATALOG):
        return  # a store made before the marker existed
    if names <= STORE_NAMES - {CATALOG} and not any(n.startswith(CATALOG) for n in names):
        return  # a store another writer is creating (its lock, its segment folder)
    raise StoreError(
        f"{root} is not empty and is not a smart store; nothing in it was changed", kind=ErrorKind.STORE_FOREIGN, path=str(root)
    )


def _is_smart_catalog(path: Path) -> bool:
    from urllib.parse import quote

    try:
        conn = sqlite3.connect(f"file:{quote(os.fspath(path))}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.Error as exc:
        # A catalog damaged beyond reading is still ours when the folder looks like a store.
        name = getattr(exc, "sqlite_errorname", "")
        return not name.startswith("SQLITE_ERROR") and (path.parent / SEGMENT_DIR).is_dir()


def _write_marker(root: Path) -> None:
    marker = root / MARKER
    if not marker.exists():
        with contextlib.suppress(OSError):
            marker.write_text(json.dumps({"format": "smart-store", "schema": SCHEMA_VERSION}) + "\n")


def _remove_catalog(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Schema 3 adds segment identities and digests and page-text checksums. Existing rows keep
    NULL: their identity was never recorded, and recording now what the file holds would bless
    a file that is already wrong; writing it into the file would change an immutable file.
    Compaction rewrites old segments as checked ones."""
    if "uid" not in _columns(conn, "segments"):
        conn.execute("ALTER TABLE segments ADD COLUMN uid TEXT")
    if "digests" not in _columns(conn, "segments"):
        conn.execute("ALTER TABLE segments ADD COLUMN digests TEXT")
    if "text_crc" not in _columns(conn, "items"):
        conn.execute("ALTER TABLE items ADD COLUMN text_crc INTEGER")


def _checked_text(raw: bytes | None, crc: int | None) -> tuple[str, str | None]:
    """A page's stored text (bytes) decoded, and what is wrong with it (None: nothing)."""
    raw = raw or b""
    if crc is not None and zlib.crc32(raw) != crc:
        problem = "its text differs from what was committed (CRC-32)"
    else:
        problem = None
    try:
        return raw.decode("utf-8"), problem
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), problem or "its text is not UTF-8 any more"


def text_crc(text: str | None) -> int | None:
    """CRC-32 of a page's text as stored (UTF-8); None for no text."""
    return None if text is None else zlib.crc32(text.encode("utf-8", "surrogatepass"))


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Schema 1 stored notes as English sentences (and may predate the OCR column)."""
    columns = _columns(conn, "items")
    if "ocr" not in columns:
        conn.execute("ALTER TABLE items ADD COLUMN ocr TEXT")
    if "note_detail" not in columns:
        conn.execute("ALTER TABLE items ADD COLUMN note_detail TEXT")
    sentences = [r[0] for r in conn.execute("SELECT DISTINCT note FROM items WHERE note IS NOT NULL")]
    for sentence in sentences:
        note, detail = schema1_note(sentence)
        conn.execute("UPDATE items SET note = ?, note_detail = ? WHERE note = ?", (note.value, detail, sentence))


@dataclass
class FileCopy:
    """A file whose content (``sha256``) an indexed file already has."""

    path: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass
class CatalogChanges:
    """Catalog-only changes of a re-index: nothing to read or encode."""

    moves: list[tuple[str, str, int, int]] = field(default_factory=list)  # (old path, new path, size, mtime_ns)
    copies: list[FileCopy] = field(default_factory=list)
    touches: list[tuple[str, int, int]] = field(default_factory=list)  # (path, size, mtime_ns): same content
    removals: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.moves or self.copies or self.touches or self.removals)


def check_same_model(stored: ModelInfo, loaded: ModelInfo, root) -> None:
    if stored.fingerprint != loaded.fingerprint:
        raise ModelMismatch(
            f"{root} was built with model {stored.name!r} ({stored.fingerprint}), "
            f"not {loaded.name!r} ({loaded.fingerprint})"
        )


def damaged_catalog(root: Path, exc: Exception) -> StoreError:
    """The error an SQLite (or file) failure on the store at ``root`` really is: a full disk, a
    read-only file system, missing permission, a busy or failing disk, and only when none of
    those applies a damaged catalog (the one case a rebuild helps)."""
    return storage_error(root, exc, what="the catalog of the store")


# Less free space than this on the store's disk makes a "disk I/O error" a full disk.
LOW_SPACE_BYTES = 4 << 20


def storage_error(root: Path, exc: Exception, what: str = "the store") -> StoreError:
    root = Path(root)
    name = getattr(exc, "sqlite_errorname", "") or ""
    code = getattr(exc, "errno", None)
    text = first_line(exc)
    if name.startswith("SQLITE_FULL") or code in (errno.ENOSPC, errno.EDQUOT) or (
        (name.startswith("SQLITE_IOERR") or isinstance(exc, OSError)) and free_bytes(root) < LOW_SPACE_BYTES
    ):
        return StoreError(f"no space left on the disk of the store at {root}; nothing was committed half", kind=ErrorKind.DISK_FULL, path=str(root))
    if code == errno.EROFS or (name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR")) or isinstance(exc, OSError)) and read_only_fs(root):
        return StoreError(f"the store at {root} is on a read-only file system: it can be searched, not changed", kind=ErrorKind.STORE_READ_ONLY, path=str(root))
    if code in (errno.EACCES, errno.EPERM) or (name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")) and not _may_write(root)):
        return StoreError(f"no permission to change the store at {root} ({text})", kind=ErrorKind.PERMISSION_DENIED, path=str(root))
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreBusy(f"{root} is busy ({text})", path=str(root))
    if name.startswith("SQLITE_IOERR") or code == errno.EIO or isinstance(exc, OSError):
        return StoreError(f"the disk failed a read or write of the store at {root} ({text})", kind=ErrorKind.STORE_IO, path=str(root))
    return StoreDamaged(f"{what} at {root} is damaged ({text})")


def _segment_bytes(pages, token_dtype: str) -> int:
    """About what a segment of ``pages`` takes on disk."""
    tokens = sum(int(p[2].tokens.shape[0]) for p in pages)
    dims = int(pages[0][2].tokens.shape[1]) if pages and pages[0][2].tokens.ndim == 2 else 0
    per_state = {"binary": dims / 8, "int8": dims + 4, "float16": 2 * dims}.get(token_dtype, 4 * dims)
    return int(tokens * (per_state + 12) + len(pages) * (4 * dims + 256) + (64 << 10))


def free_bytes(path: Path) -> int:
    """Free space for this user on the file system of ``path`` (of its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return 1 << 62
    return st.f_bavail * st.f_frsize


def read_only_fs(path: Path) -> bool:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _may_write(root: Path) -> bool:
    catalog = Path(root) / CATALOG
    return os.access(root, os.W_OK) and (not catalog.exists() or os.access(catalog, os.W_OK))


def _connect(path: Path, reading: bool = False) -> sqlite3.Connection:
    """A connection to the catalog. ``reading``: a store this process may not change (a
    read-only mount, another user's store) is opened read-only instead."""
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level="DEFERRED")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=FULL")
        return conn
    except sqlite3.Error as exc:
        with contextlib.suppress(NameError, sqlite3.Error):
            conn.close()
        if reading and (read_only_fs(path) or not _may_write(path.parent) or free_bytes(path) < LOW_SPACE_BYTES):
            return _connect_read_only(path, exc)
        raise damaged_catalog(path.parent, exc) from None


def _connect_read_only(path: Path, first: Exception) -> sqlite3.Connection:
    """Open a catalog nobody can change from here. A WAL catalog needs its shared-memory file;
    on a read-only file system it cannot be created, and nothing can change the catalog
    either, so SQLite may read it as immutable."""
    from urllib.parse import quote

    uri = "file:" + quote(os.fspath(path))
    # Read-only mount, or a disk too full for the shared-memory file: no writer can commit either.
    # Another user's store in a folder this user may not write: the shared-memory file cannot be
    # made here either, so the catalog is read as it is now (a commit of its owner's meanwhile
    # is seen by the next search).
    modes = ["mode=ro"] + (["immutable=1"] if read_only_fs(path) or free_bytes(path) < LOW_SPACE_BYTES or not _may_write(path.parent) else [])
    for mode in modes:
        try:
            conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=30, isolation_level="DEFERRED")
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error:
            with contextlib.suppress(NameError, sqlite3.Error):
                conn.close()
    raise damaged_catalog(path.parent, first) from None
