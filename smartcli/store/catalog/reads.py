"""Reading the catalog: live items, files, pages without vectors, segment usage, counts.

Each function takes an open :class:`~smartcli.store.catalog.store.Store`; inside
``store.read_snapshot()`` several of them see one committed state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from smartcli.errors import StoreDamaged
from smartcli.models.base import TEXT_NORMALIZATION, normalize_text
from smartcli.store.catalog.layout import CATALOG
from smartcli.store.catalog.records import LiveItem, checked_text, fs_path
from smartcli.store.catalog.schema import column_or_null, v3
from smartcli.store.notes import Note
from smartcli.store.pageroles import BODY, text_role
from smartcli.store.skips import skip_words, stored_skip


def live_items(store) -> list[LiveItem]:
    """Encoded items of the last committed state, ordered by segment and row.

    A page whose stored text is not what was committed (its CRC-32 differs, or it is not
    UTF-8 any more) keeps its vectors; its text is decoded with replacement characters and
    its ``text_problem`` says what is wrong. A page whose role is not recorded (a store
    written before roles were kept, opened for reading) is judged from its text here."""
    role = column_or_null(store.conn, "items", "page_role")
    rows = store.conn.execute(
        f"""SELECT items.id, files.path, items.page, files.kind, items.segment, items.row,
                  items.n_tokens, CAST(COALESCE(items.text, '') AS BLOB), {v3(store, "items.text_crc")}, {role}
           FROM items JOIN files ON files.id = items.file_id
           WHERE items.segment IS NOT NULL ORDER BY items.segment, items.row"""
    ).fetchall()
    items = []
    for r in rows:
        if type(r[5]) is not int:  # the cheap integrity check sees rows out of range, not a real number within it
            raise StoreDamaged(
                f"the store at {store.root} is damaged: row of page {r[2]} of {fs_path(r[1])}: is {r[5]!r}, not a row of segment {r[4]}.h5",
                roots=store.roots,
            )
        text, problem = checked_text(r[7], r[8])
        items.append(LiveItem(r[0], fs_path(r[1]), r[2], r[3], r[4], r[5], r[6], text, r[9] or text_role(text), problem))
    return items


@dataclass
class LiveColumns:
    """The encoded items of the last committed state as columns (what :func:`live_items` returns,
    without the texts), ordered by segment and row: a search over a million pages holds these
    arrays, not a million objects, and reads a page's text only when it shows the page."""

    item_ids: np.ndarray  # int64
    files: np.ndarray  # int32: index into ``paths`` and ``kinds``
    pages: np.ndarray  # int32
    segments: np.ndarray  # int32: index into ``segment_names``
    rows: np.ndarray  # int64
    n_tokens: np.ndarray  # int64
    roles: np.ndarray  # int8: index into ``role_names``
    paths: list[str]
    kinds: list[str]
    segment_names: list[str]
    role_names: list[str]


def live_columns(store) -> LiveColumns:
    """:func:`live_items` as columns, texts left in the catalog (:func:`item_texts` reads them).
    A page whose role is not recorded (a store written before roles were kept, opened for
    reading) is judged from its text here, as live_items judges it."""
    role = column_or_null(store.conn, "items", "page_role")
    rows = store.conn.execute(
        f"""SELECT items.id, items.file_id, items.page, items.segment, items.row, items.n_tokens, {role}
           FROM items WHERE items.segment IS NOT NULL ORDER BY items.segment, items.row"""
    ).fetchall()
    file_rows = store.conn.execute("SELECT id, path, kind FROM files").fetchall()
    file_index = {r[0]: i for i, r in enumerate(file_rows)}
    segment_names = sorted({r[3] for r in rows})
    segment_index = {name: i for i, name in enumerate(segment_names)}
    role_names = [BODY]
    role_index = {BODY: 0}
    unjudged = [r[0] for r in rows if r[6] is None]
    judged = {item_id: text_role(text) for item_id, (text, _) in item_texts(store, unjudged).items()} if unjudged else {}
    roles = []
    for r in rows:
        if type(r[4]) is not int:  # as live_items: the cheap integrity check sees rows out of range, not a real number within it
            path = next((fs_path(f[1]) for f in file_rows if f[0] == r[1]), "?")
            raise StoreDamaged(
                f"the store at {store.root} is damaged: row of page {r[2]} of {path}: is {r[4]!r}, not a row of segment {r[3]}.h5",
                roots=store.roots,
            )
        name = r[6] or judged.get(r[0], BODY)
        if name not in role_index:
            role_index[name] = len(role_names)
            role_names.append(name)
        roles.append(role_index[name])
    return LiveColumns(
        item_ids=np.fromiter((r[0] for r in rows), np.int64, len(rows)),
        files=np.fromiter((file_index[r[1]] for r in rows), np.int32, len(rows)),
        pages=np.fromiter((r[2] for r in rows), np.int32, len(rows)),
        segments=np.fromiter((segment_index[r[3]] for r in rows), np.int32, len(rows)),
        rows=np.fromiter((r[4] for r in rows), np.int64, len(rows)),
        n_tokens=np.fromiter((r[5] for r in rows), np.int64, len(rows)),
        roles=np.array(roles, dtype=np.int8),
        paths=[fs_path(r[1]) for r in file_rows],
        kinds=[r[2] for r in file_rows],
        segment_names=segment_names,
        role_names=role_names,
    )


def item_texts(store, item_ids) -> dict[int, tuple[str, str | None]]:
    """item id -> (its text, what is wrong with it or None), for the ids still in the catalog
    (``records.checked_text``: a text that is not what was committed is decoded all the same)."""
    ids = [int(i) for i in item_ids]
    found: dict[int, tuple[str, str | None]] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        rows = store.conn.execute(
            f"""SELECT id, CAST(COALESCE(text, '') AS BLOB), {v3(store, "text_crc")} FROM items
                WHERE id IN ({",".join("?" * len(chunk))})""",
            chunk,
        )
        for item_id, raw, crc in rows:
            found[item_id] = checked_text(raw, crc)
    return found


_IDS_PER_QUERY = 500  # under SQLite's limit on a statement's parameters


def unencoded_items(store) -> list[dict]:
    """Pages and images recorded without vectors: path, page, kind, note code and detail, by path and page."""
    rows = store.conn.execute(
        """SELECT files.path, items.page, files.kind, COALESCE(items.note, ''), items.note_detail
           FROM items JOIN files ON files.id = items.file_id
           WHERE items.segment IS NULL ORDER BY files.path, items.page"""
    ).fetchall()
    keys = ("path", "page", "kind", "note", "detail")
    return [dict(zip(keys, (fs_path(r[0]),) + tuple(r[1:]))) for r in rows]


def item_origin(store, item_id: int) -> dict | None:
    """The file record behind item ``item_id`` as indexed (size, mtime) and its OCR language."""
    row = store.conn.execute(
        """SELECT files.size, files.mtime_ns, items.ocr FROM items JOIN files ON files.id = items.file_id
           WHERE items.id = ?""",
        (item_id,),
    ).fetchone()
    return None if row is None else {"size": row[0], "mtime_ns": row[1], "ocr": row[2]}


def files(store) -> list[dict]:
    """Every file row; ``code``/``detail`` are its stored skip code (store/skips.py) and
    detail, ``reason`` their words (a reader's store of older sentences maps them as read)."""
    detail = column_or_null(store.conn, "files", "reason_detail")
    rows = store.conn.execute(
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


def file_hashes(store) -> dict[str, str | None]:
    """path -> SHA-256 of every file row."""
    return {fs_path(path): sha for path, sha in store.conn.execute("SELECT path, sha256 FROM files")}


def stats(store) -> dict:
    q = store.conn.execute
    files_by_kind = dict(q("SELECT kind, COUNT(*) FROM files WHERE status='indexed' GROUP BY kind").fetchall())
    items_total = q("SELECT COUNT(*) FROM items").fetchone()[0]
    encoded, tokens = q("SELECT COUNT(*), COALESCE(SUM(n_tokens), 0) FROM items WHERE segment IS NOT NULL").fetchone()
    live_rows = q("SELECT COUNT(*) FROM (SELECT DISTINCT segment, row FROM items WHERE segment IS NOT NULL)").fetchone()[0]
    segment_rows, segment_bytes = q("SELECT COALESCE(SUM(rows), 0), COALESCE(SUM(bytes), 0) FROM segments").fetchone()
    not_encoded = dict(q("SELECT COALESCE(note, ''), COUNT(*) FROM items WHERE segment IS NULL GROUP BY note").fetchall())
    skipped = q("SELECT COUNT(*) FROM files WHERE status='skipped'").fetchone()[0]
    catalog_bytes = sum(p.stat().st_size for p in store.root.glob(CATALOG + "*") if p.is_file())
    retired = [store.segment_path(r[0]) for r in q("SELECT name FROM retired_segments")]
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


def segment_usage(store) -> list[dict]:
    """Each committed segment with its live (referenced) row count, oldest first."""
    rows = store.conn.execute(
        """SELECT s.name, s.rows, s.tokens, s.bytes,
                  (SELECT COUNT(DISTINCT row) FROM items WHERE items.segment = s.name), s.uid IS NOT NULL
           FROM segments s ORDER BY s.created, s.name"""
    ).fetchall()
    return [dict(zip(("name", "rows", "tokens", "bytes", "live_rows", "checked"), (*r[:5], bool(r[5])))) for r in rows]


def live_rows(store, segment: str) -> list[int]:
    return [r[0] for r in store.conn.execute("SELECT DISTINCT row FROM items WHERE segment = ? ORDER BY row", (segment,))]


def segment_digests(store, name: str) -> dict | None:
    """The SHA-256 of each dataset of segment ``name`` as committed (None: not recorded)."""
    row = store.conn.execute(f"SELECT {v3(store, 'digests')} FROM segments WHERE name = ?", (name,)).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def ocr_counts(store) -> dict:
    """Pages whose text came from OCR, by language."""
    return dict(store.conn.execute("SELECT ocr, COUNT(*) FROM items WHERE ocr IS NOT NULL GROUP BY ocr").fetchall())


def paths_awaiting_ocr(store, notes: Iterable[Note]) -> set[str]:
    """Files with a text-less page noted with one of ``notes`` that OCR has not read."""
    codes = [Note(n).value for n in notes]
    rows = store.conn.execute(
        f"""SELECT DISTINCT files.path FROM items JOIN files ON files.id = items.file_id
            WHERE items.segment IS NULL AND items.ocr IS NULL AND items.note IN ({",".join("?" * len(codes))})""",
        codes,
    )
    return {fs_path(r[0]) for r in rows}


def paths_with_old_text(store, settle: bool = True) -> set[str]:
    """Indexed files whose text an older text normalization produced and the current one
    would change. With ``settle`` (writers only), files whose stored text it leaves as it is
    (plain ASCII text, images) are marked current on the way, without being read again."""
    rows = store.conn.execute(
        "SELECT id, path FROM files WHERE status = 'indexed' AND (text_version IS NULL OR text_version < ?)", (TEXT_NORMALIZATION,)
    ).fetchall()
    stale, settled = set(), []
    for file_id, path in rows:
        texts = store.conn.execute("SELECT text FROM items WHERE file_id = ?", (file_id,))
        if all(text is None or normalize_text(text) == text for (text,) in texts):
            settled.append((TEXT_NORMALIZATION, file_id))
        else:
            stale.add(fs_path(path))
    if settled and settle:
        with store.conn:
            store.conn.executemany("UPDATE files SET text_version = ? WHERE id = ?", settled)
    return stale
