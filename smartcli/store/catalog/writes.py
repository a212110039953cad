"""Changing the catalog (writers only: the caller holds the store's write lock).

A segment is written under a temporary name, fsynced and renamed into place before the
catalog transaction that references it commits, so a crash at any moment leaves the catalog
pointing only at complete segments. Each function here is one transaction.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence

from smartcli import defaults
from smartcli.errors import ModelMismatch
from smartcli.models.base import FP32, TEXT_NORMALIZATION, ModelInfo
from smartcli.store.catalog.connection import check_space
from smartcli.store.catalog.layout import SEGMENT_DIR
from smartcli.store.catalog.records import CatalogChanges, FileCopy, FileRecord, db_path, text_crc
from smartcli.store.catalog.retirement import retire, retire_unused
from smartcli.store.catalog.schema import TUNING_KEY, set_meta
from smartcli.store.notes import Note
from smartcli.store.pageroles import page_role
from smartcli.store.pooling import pool_tokens
from smartcli.store.segments import SegmentFile, new_segment_file, write_pages
from smartcli.store.skips import skip_code

# -- metadata ----------------------------------------------------------------------------------


def check_same_model(stored: ModelInfo, loaded: ModelInfo, root) -> None:
    if stored.fingerprint != loaded.fingerprint:
        raise ModelMismatch(
            f"{root} was built with model {stored.name!r} ({stored.fingerprint}), not {loaded.name!r} ({loaded.fingerprint})"
        )


def bind_model(store, info: ModelInfo, token_dtype: str = defaults.TOKEN_DTYPE, token_pooling: float = 0.0) -> None:
    """Record the store's model (and how it keeps token states) on first use; refuse a different one afterwards."""
    current = store.model
    if current is None:
        with store.conn:
            set_meta(store.conn, "model", info.__dict__)
            set_meta(store.conn, "token_dtype", token_dtype)
            if token_pooling:
                set_meta(store.conn, "token_pooling", float(token_pooling))
        return
    check_same_model(current, info, store.root)
    before, now = current.extra.get("precision", FP32), info.extra.get("precision", FP32)
    if before != now:  # queries are float32 either way: only pages must be encoded alike
        raise ModelMismatch(f"{store.root}'s pages were encoded by {current.name!r} in {before}, not {now}")


def record_roots(store, roots: Iterable[str]) -> None:
    """Add ``roots`` to the paths the store covers; a path under another is covered by it (the
    watcher updates single files and folders under the roots: they must not become roots)."""
    merged = sorted(set(store.meta.get("roots", [])) | set(roots))
    covering = [r for r in merged if not any(r != other and r.startswith(other.rstrip(os.sep) + os.sep) for other in merged)]
    with store.conn:
        set_meta(store.conn, "roots", covering)


def record_mounts(store, roots: Iterable[str], mounts: dict[str, int], unmounted: Iterable[str] = ()) -> None:
    """Remember the mount points found under ``roots`` (path -> device); those in ``unmounted``
    (recorded before, not mounted now) stay remembered until they are seen again."""
    roots = [r.rstrip(os.sep) + os.sep for r in roots]
    keep = set(unmounted)
    recorded = {
        p: d for p, d in (store.meta.get("mounts") or {}).items() if p in keep or not any((p + os.sep).startswith(r) for r in roots)
    }
    with store.conn:
        set_meta(store.conn, "mounts", {**recorded, **mounts})


def write_tuning_record(store, record: dict) -> None:
    """Make ``record`` the store's tuning (store/tuning.py says what it holds)."""
    with store.conn:
        set_meta(store.conn, TUNING_KEY, record)


def clear_tuning_record(store) -> None:
    with store.conn:
        store.conn.execute("DELETE FROM meta WHERE key = ?", (TUNING_KEY,))


# -- segments and files ------------------------------------------------------------------------


def new_segment(store, expected_bytes: int = 0):
    """A new segment file of the store's model (see segments.new_segment_file), once the disk
    was found to have room for ``expected_bytes``."""
    check_space(store.root, expected_bytes)
    info = store.model
    attrs = dict(
        model_name=info.name,
        model_fingerprint=info.fingerprint,
        pooling=info.pooling,
        dims=info.dims,
        token_dtype=store.token_dtype,
    )
    return new_segment_file(store.root / SEGMENT_DIR, attrs)


def write_segment(store, records: Sequence[FileRecord]) -> SegmentFile | None:
    """Write the encoded pages of ``records`` to a new, complete segment file. With the store's
    token pooling (store/pooling.py) each page's token states are pooled first, in its record:
    the catalog then counts the tokens the segment holds."""
    if store.token_pooling:
        for page in (p for f in records for p in f.pages if p.encoded is not None):
            page.encoded = pool_tokens(page.encoded, store.token_pooling)
    pages = [(f.path, p.page, p.encoded) for f in records for p in f.pages if p.encoded is not None]
    if not pages:
        return None
    with new_segment(store, _segment_bytes(pages, store.token_dtype)) as new:
        tokens = write_pages(new.h5, pages, store.token_dtype)
    return new.record(len(pages), tokens, store.segment_path(new.name).stat().st_size)


def _segment_bytes(pages, token_dtype: str) -> int:
    """About what a segment of ``pages`` takes on disk."""
    tokens = sum(int(p[2].tokens.shape[0]) for p in pages)
    dims = int(pages[0][2].tokens.shape[1]) if pages and pages[0][2].tokens.ndim == 2 else 0
    per_state = {"binary": dims / 8, "int8": dims + 4, "float16": 2 * dims}.get(token_dtype, 4 * dims)
    return int(tokens * (per_state + 12) + len(pages) * (4 * dims + 256) + (64 << 10))


def commit_files(
    store,
    records: Sequence[FileRecord],
    segment: SegmentFile | None,
    replace_paths: Iterable[str] = (),
    written_ahead: Sequence[SegmentFile] = (),
) -> None:
    """Atomically make ``records`` (and their new ``segment``) part of the index.

    Any existing catalog entry for the same paths (or for ``replace_paths``) is
    replaced in the same transaction. ``written_ahead``: segments written earlier for pages
    of these records (pages whose ``stored`` names them); until this commit no catalog row
    names them, so an interrupted run leaves them unreferenced (deleted on the next write).
    """
    now = time.time()
    conn = store.conn
    with conn:
        for ahead in written_ahead:
            _insert_segment(conn, ahead, now)
        if segment is not None:
            _insert_segment(conn, segment, now)
        for path in list(replace_paths) + [r.path for r in records]:
            conn.execute("DELETE FROM files WHERE path = ?", (db_path(path),))
        row = 0
        for record in records:
            file_id = _insert_file(
                conn, record.path, record.kind, record.size, record.mtime_ns, record.sha256, record.status, record.reason, now
            )
            for page in record.pages:
                if page.stored is not None:
                    values = (file_id, page.page, *page.stored, page.text, None, None)
                elif page.encoded is not None:
                    values = (file_id, page.page, segment.name, row, int(page.encoded.tokens.shape[0]), page.text, None, None)
                    row += 1
                else:
                    note = None if page.note is None else Note(page.note).value
                    values = (file_id, page.page, None, None, 0, page.text, note, page.detail)
                conn.execute(
                    "INSERT INTO items(file_id, page, segment, row, n_tokens, text, note, note_detail, ocr, text_crc, page_role) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    values + (page.ocr, text_crc(page.text), page_role(page.text, page.role)),
                )
        set_meta(conn, "updated", now)
        retire_unused(conn, now)


def _insert_segment(conn, segment: SegmentFile, now: float) -> None:
    conn.execute(
        "INSERT INTO segments(name, rows, tokens, bytes, created, uid, digests) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            segment.name,
            segment.rows,
            segment.tokens,
            segment.bytes,
            now,
            segment.uid,
            json.dumps(segment.digests, sort_keys=True) if segment.digests else None,
        ),
    )


def _insert_file(conn, path, kind, size, mtime_ns, sha256, status, reason, now, text_version=TEXT_NORMALIZATION) -> int:
    code, detail = skip_code(reason)  # stored as a code (store/skips.py) and its detail
    cur = conn.execute(
        "INSERT INTO files(path, kind, size, mtime_ns, sha256, status, reason, reason_detail, indexed_at, text_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (db_path(path), kind, size, mtime_ns, sha256, status, code and str(code), detail, now, text_version),
    )
    return cur.lastrowid


def apply_changes(store, changes: CatalogChanges) -> list[str]:
    """Apply moves, copies, content-unchanged touches and removals in one transaction.

    Returns the paths of copies whose content no indexed file holds any more (they
    must be encoded instead).
    """
    now = time.time()
    missing = []
    conn = store.conn
    with conn:
        for old, new, size, mtime_ns in changes.moves:
            conn.execute("DELETE FROM files WHERE path = ?", (db_path(new),))
            conn.execute(
                "UPDATE files SET path = ?, size = ?, mtime_ns = ?, indexed_at = ? WHERE path = ?",
                (db_path(new), size, mtime_ns, now, db_path(old)),
            )
        for copy in changes.copies:
            if not _copy_file(conn, copy, now):
                missing.append(copy.path)
        for path, size, mtime_ns in changes.touches:
            conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, db_path(path)))
        for path in changes.removals:
            conn.execute("DELETE FROM files WHERE path = ?", (db_path(path),))
        if changes:
            set_meta(conn, "updated", now)
        retire_unused(conn, now)
    return missing


def _copy_file(conn, copy: FileCopy, now: float) -> bool:
    """Give ``copy.path`` the items of an indexed file with the same content (sharing its rows)."""
    source = conn.execute(
        "SELECT id, kind, text_version FROM files WHERE sha256 = ? AND status = 'indexed' AND path != ? ORDER BY id LIMIT 1",
        (copy.sha256, db_path(copy.path)),
    ).fetchone()
    if source is None:
        return False
    conn.execute("DELETE FROM files WHERE path = ?", (db_path(copy.path),))
    file_id = _insert_file(conn, copy.path, source[1], copy.size, copy.mtime_ns, copy.sha256, "indexed", None, now, source[2])
    conn.execute(
        """INSERT INTO items(file_id, page, segment, row, n_tokens, text, note, note_detail, ocr, text_crc, page_role)
           SELECT ?, page, segment, row, n_tokens, text, note, note_detail, ocr, text_crc, page_role FROM items WHERE file_id = ? ORDER BY id""",
        (file_id, source[0]),
    )
    return True


def replace_segments(store, new: Sequence[SegmentFile], remap: Sequence[tuple[str, int, str, int]], old: Sequence[str]) -> None:
    """Point items at rewritten rows and retire the ``old`` segments, in one transaction.

    ``remap`` holds ``(old segment, old row, new segment, new row)``.
    """
    now = time.time()
    conn = store.conn
    with conn:
        for segment in new:
            _insert_segment(conn, segment, now)
        conn.executemany(
            "UPDATE items SET segment = ?, row = ? WHERE segment = ? AND row = ?",
            [(new_seg, new_row, old_seg, old_row) for old_seg, old_row, new_seg, new_row in remap],
        )
        retire(conn, old, now)
        retire_unused(conn, now)
