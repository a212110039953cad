"""The catalog's schema, in one place: every table and index, the schema version and the
migrations to it, the columns added in place, the meta keys, and the marker file.

Nothing else in smartcli creates, alters or drops a table (tests/unit/test_catalog_layers.py).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path

from smartcli.errors import ErrorKind, StoreError, StoreMissing
from smartcli.store.catalog.connection import damaged_catalog
from smartcli.store.catalog.layout import MARKER
from smartcli.store.notes import schema1_note
from smartcli.store.pageroles import text_role
from smartcli.store.skips import stored_skip

# 2: items.note holds codes (store/notes.py) and items.note_detail a library's message.
# 3: segments.uid (the identity written into the file) and segments.digests (SHA-256 per
#    dataset, JSON); items.text_crc (CRC-32 of the page's text as UTF-8). Rows written
#    before 3 keep NULL there: their segments are checked for shapes only (see segments.py).
SCHEMA_VERSION = 3

_TABLES = """
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
CREATE INDEX IF NOT EXISTS files_by_content ON files(sha256, status);  -- a copy finds the indexed file of its content
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

# Which points (and which version of each) a Qdrant collection acknowledged (store/qdrant.py);
# made by the first sync, not with the other tables.
_QDRANT_ACKED = """
CREATE TABLE IF NOT EXISTS qdrant_acked (
    target TEXT NOT NULL,
    collection TEXT NOT NULL,
    point_id TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (target, collection, point_id)
);
"""

# Columns added in place, without a schema change: (table, column, type). NULL in older rows.
_ADDED_IN_PLACE = (
    ("files", "text_version", "INTEGER"),  # NULL: text read before versions were kept
    ("items", "page_role", "TEXT"),  # NULL until judged (settle_page_roles)
    ("files", "reason_detail", "TEXT"),  # files.reason holds a code of store/skips.py, this its detail
)

# The keys of the meta table (each value is JSON):
#   schema_version  SCHEMA_VERSION            created   when the store was made (time.time())
#   updated         when the last change was committed (readers compare it to see changes)
#   model           ModelInfo of the vectors  token_dtype  their format (store/formats.py)
#   roots           the paths the store was asked to index
#   mounts          mount point -> device, of those found under roots
#   tuning          what `tune` learned (store/tuning.py)
TUNING_KEY = "tuning"


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def column_or_null(conn: sqlite3.Connection, table: str, column: str) -> str:
    """``table.column`` for a query, or NULL where a catalog opened for reading lacks a column
    added in place."""
    return f"{table}.{column}" if column in columns(conn, table) else "NULL"


def v3(store, column: str) -> str:
    """``column`` of schema 3 for a query, or NULL in a schema-2 catalog read as it is."""
    return "NULL" if store.readable_schema2 else column


def set_meta(conn: sqlite3.Connection, key: str, value) -> None:
    """Set a meta key (inside the caller's transaction)."""
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))


def prepare_for_writing(store) -> None:
    """Create the tables of a new catalog, or bring an existing one up to date in place."""
    conn = store.conn
    if "meta" in tables(conn):
        check(store, upgrade=True)
    # One transaction: a writer killed half-way through must not leave a catalog with some
    # tables and not others (a reader would take it for a store and fail on the missing one).
    conn.executescript(f"BEGIN;\n{_TABLES}\nCOMMIT;")
    for table, column, kind in _ADDED_IN_PLACE:
        if column not in columns(conn, table):
            with conn:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    settle_skip_codes(conn)
    if store.meta.get("schema_version") is None:
        with conn:
            set_meta(conn, "schema_version", SCHEMA_VERSION)
            set_meta(conn, "created", time.time())
    check(store)


def ensure_qdrant_acked(conn: sqlite3.Connection) -> None:
    conn.executescript(_QDRANT_ACKED)


def check(store, upgrade: bool = False) -> None:
    """Refuse a catalog of another schema; with ``upgrade``, migrate an older one in place first
    (a schema-2 catalog this process cannot upgrade is read as it is: ``store.readable_schema2``)."""
    try:
        if "meta" not in tables(store.conn):
            # A brand-new catalog whose first writer has not created its tables yet.
            raise StoreMissing(f"the index at {store.root} is empty", kind=ErrorKind.STORE_EMPTY)
        version = store.meta.get("schema_version")
        if upgrade and version is not None and int(version) < SCHEMA_VERSION:
            store.readable_schema2 = _migrate(store)
            version = store.meta.get("schema_version")
    except sqlite3.DatabaseError as exc:
        raise damaged_catalog(store.root, exc) from None
    if version is not None and int(version) != SCHEMA_VERSION and not (store.readable_schema2 and int(version) == 2):
        raise StoreError(
            f"{store.root} has store schema {version}, this smart reads {SCHEMA_VERSION}",
            kind=ErrorKind.STORE_SCHEMA,
            roots=store.roots,
        )


def _migrate(store) -> bool:
    """Bring an older catalog up to SCHEMA_VERSION in one transaction (readers and writers alike
    may run it: it re-reads the version under SQLite's write lock, so it runs once). True when
    a schema-2 catalog cannot be upgraded from here and is to be read as it is."""
    conn = store.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(json.loads(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]))
        if version == 1:
            _migrate_1_to_2(conn)
            version = 2
        if version == 2:
            _migrate_2_to_3(conn)
            version = 3
        set_meta(conn, "schema_version", version)
        conn.commit()
        return False
    except sqlite3.OperationalError as exc:
        conn.rollback()
        readonly = "readonly" in str(exc) or "read-only" in str(exc)
        if readonly and int(store.meta.get("schema_version")) == 2:
            return True  # 3 only adds columns: read without them (nothing is checked against digests)
        if readonly:
            raise StoreError(
                f"{store.root} was written by an older smart and must be upgraded, which needs write access",
                kind=ErrorKind.STORE_UNWRITABLE,
            ) from None
        raise
    except BaseException:
        conn.rollback()
        raise


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """Schema 1 stored notes as English sentences (and may predate the OCR column)."""
    present = columns(conn, "items")
    if "ocr" not in present:
        conn.execute("ALTER TABLE items ADD COLUMN ocr TEXT")
    if "note_detail" not in present:
        conn.execute("ALTER TABLE items ADD COLUMN note_detail TEXT")
    sentences = [r[0] for r in conn.execute("SELECT DISTINCT note FROM items WHERE note IS NOT NULL")]
    for sentence in sentences:
        note, detail = schema1_note(sentence)
        conn.execute("UPDATE items SET note = ?, note_detail = ? WHERE note = ?", (note.value, detail, sentence))


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Schema 3 adds segment identities and digests and page-text checksums. Existing rows keep
    NULL: their identity was never recorded, and recording now what the file holds would bless
    a file that is already wrong; writing it into the file would change an immutable file.
    Compaction rewrites old segments as checked ones."""
    if "uid" not in columns(conn, "segments"):
        conn.execute("ALTER TABLE segments ADD COLUMN uid TEXT")
    if "digests" not in columns(conn, "segments"):
        conn.execute("ALTER TABLE segments ADD COLUMN digests TEXT")
    if "text_crc" not in columns(conn, "items"):
        conn.execute("ALTER TABLE items ADD COLUMN text_crc INTEGER")


def settle_skip_codes(conn: sqlite3.Connection) -> int:
    """Map the sentences an older version stored in ``files.reason`` to codes, in place
    (prefix match; an unknown sentence becomes ``unreadable`` with itself as the detail)."""
    rows = conn.execute("SELECT id, reason, reason_detail FROM files WHERE reason IS NOT NULL").fetchall()
    fixed = [stored_skip(reason, detail) + (i,) for i, reason, detail in rows if stored_skip(reason, detail)[0] != reason]
    if fixed:
        with conn:
            conn.executemany("UPDATE files SET reason = ?, reason_detail = ? WHERE id = ?", fixed)
    return len(fixed)


def settle_page_roles(conn: sqlite3.Connection) -> int:
    """Judge, from their stored text, the pages whose role is not recorded (pages indexed
    before roles were kept), without reading or encoding anything again (writers only).
    Returns how many were judged."""
    rows = conn.execute("SELECT id, text FROM items WHERE page_role IS NULL").fetchall()
    if rows:
        with conn:
            conn.executemany("UPDATE items SET page_role = ? WHERE id = ?", [(text_role(t), i) for i, t in rows])
    return len(rows)


def write_marker(root: Path) -> None:
    """Say that ``root`` is a smart store, and of which schema (once; a store that cannot be
    written keeps going without it)."""
    marker = root / MARKER
    if not marker.exists():
        with contextlib.suppress(OSError):
            marker.write_text(json.dumps({"format": "smart-store", "schema": SCHEMA_VERSION}) + "\n")
