"""Connections to a catalog, and what an SQLite (or file) failure on a store really is.

A catalog is opened in WAL mode with full fsync; a store this process may not change (a
read-only mount, another user's store, a disk too full for the shared-memory file) is read
read-only instead. A failure becomes the error it is: a full disk, a read-only file system,
missing permission, a busy or failing disk, and only when none applies a damaged catalog.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from smartcli.errors import ErrorKind, StoreBusy, StoreDamaged, StoreError, first_line
from smartcli.store.catalog.layout import CATALOG, remove_catalog

# Less free space than this on the store's disk makes a "disk I/O error" a full disk.
LOW_SPACE_BYTES = 4 << 20


def connect(path: Path, reading: bool = False) -> sqlite3.Connection:
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
    uri = "file:" + quote(os.fspath(path))
    # Read-only mount, or a disk too full for the shared-memory file: no writer can commit either.
    # Another user's store in a folder this user may not write: the shared-memory file cannot be
    # made here either, so the catalog is read as it is now (a commit of its owner's meanwhile
    # is seen by the next search).
    modes = ["mode=ro"] + (
        ["immutable=1"] if read_only_fs(path) or free_bytes(path) < LOW_SPACE_BYTES or not _may_write(path.parent) else []
    )
    for mode in modes:
        try:
            conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=30, isolation_level="DEFERRED")
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error:
            with contextlib.suppress(NameError, sqlite3.Error):
                conn.close()
    raise damaged_catalog(path.parent, first) from None


def connect_replacing(path: Path, like: sqlite3.Connection) -> sqlite3.Connection:
    """A connection to the catalog at ``path`` that ``like``'s contents are about to replace
    (SQLite's backup API needs equal page sizes); a damaged one is removed first (only now,
    with its replacement complete)."""
    if path.exists():
        try:
            conn = connect(path)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            if conn.execute("PRAGMA page_size").fetchone()[0] == like.execute("PRAGMA page_size").fetchone()[0]:
                return conn
            conn.close()
        except (StoreError, sqlite3.DatabaseError):
            pass
        remove_catalog(path)
    return connect(path)


def damaged_catalog(root: Path, exc: Exception) -> StoreError:
    """The error an SQLite (or file) failure on the store at ``root`` really is: a full disk, a
    read-only file system, missing permission, a busy or failing disk, and only when none of
    those applies a damaged catalog (the one case a rebuild helps)."""
    return storage_error(root, exc, what="the catalog of the store")


def storage_error(root: Path, exc: Exception, what: str = "the store") -> StoreError:
    root = Path(root)
    name = getattr(exc, "sqlite_errorname", "") or ""
    code = getattr(exc, "errno", None)
    text = first_line(exc)
    if (
        name.startswith("SQLITE_FULL")
        or code in (errno.ENOSPC, errno.EDQUOT)
        or ((name.startswith("SQLITE_IOERR") or isinstance(exc, OSError)) and free_bytes(root) < LOW_SPACE_BYTES)
    ):
        return StoreError(
            f"no space left on the disk of the store at {root}; nothing was committed half", kind=ErrorKind.DISK_FULL, path=str(root)
        )
    if (
        code == errno.EROFS
        or (name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR")) or isinstance(exc, OSError))
        and read_only_fs(root)
    ):
        return StoreError(
            f"the store at {root} is on a read-only file system: it can be searched, not changed",
            kind=ErrorKind.STORE_READ_ONLY,
            path=str(root),
        )
    if code in (errno.EACCES, errno.EPERM) or (
        name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")) and not _may_write(root)
    ):
        return StoreError(f"no permission to change the store at {root} ({text})", kind=ErrorKind.PERMISSION_DENIED, path=str(root))
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreBusy(f"{root} is busy ({text})", path=str(root))
    if name.startswith("SQLITE_IOERR") or code == errno.EIO or isinstance(exc, OSError):
        return StoreError(f"the disk failed a read or write of the store at {root} ({text})", kind=ErrorKind.STORE_IO, path=str(root))
    return StoreDamaged(f"{what} at {root} is damaged ({text})")


def check_space(root: Path, expected_bytes: int) -> None:
    """Refuse (DISK_FULL) when the disk of the store at ``root`` has not room for
    ``expected_bytes`` and a margin: HDF5 running out of space mid-write may crash the process
    instead of raising."""
    free = free_bytes(root)
    if free < expected_bytes * 1.25 + LOW_SPACE_BYTES:
        raise StoreError(
            f"no space left on the disk of the store at {root} (about {max(expected_bytes, 1) / 1e6:.1f} MB "
            f"to write, {free / 1e6:.1f} MB free); nothing was committed half",
            kind=ErrorKind.DISK_FULL,
            path=str(root),
        )


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
