"""A store's life cycle as the front door sees it: open, create, read, write, and remove a store
that a failed first run left empty. sqlite and storage errors become the engine's kinds here."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from pathlib import Path

from smartcli.errors import ErrorKind, SmartError, StoreMissing
from smartcli.store.catalog import Store, reads
from smartcli.store.catalog.connection import LOW_SPACE_BYTES, damaged_catalog, free_bytes, storage_error
from smartcli.store.catalog.layout import CATALOG, SEGMENT_DIR, STORE_NAMES, default_store_path

_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


def locate(path: str | os.PathLike | None, create: bool) -> tuple[Path, bool]:
    """The store's directory (default: ``$SMART_STORE``, else the XDG data folder), created empty
    when missing and ``create``; and whether this call created the directory."""
    root = Path(os.path.expanduser(os.fspath(path))) if path is not None else default_store_path()
    try:
        found = (root / CATALOG).exists()
    except PermissionError:  # another user's store this user may not even look into
        raise SmartError(
            ErrorKind.PERMISSION_DENIED, f"no permission to read the store at {root} (permission denied)", path=str(root)
        ) from None
    if found:
        return root, False
    if not create:
        raise StoreMissing(f"no index at {root}", path=str(root), holds_documents=holds_documents(root))
    fresh = not root.exists()
    _create(root)
    return root, fresh


def holds_documents(root: Path, look_at: int = 1000) -> bool:
    """Whether ``root`` is a folder of documents (a file of an indexable type among the first
    ``look_at`` entries of it and its subfolders): a folder passed as a store by mistake."""
    from smartcli.ingest.discovery import kind_of

    seen = 0
    for folder, subfolders, names in os.walk(root):
        for name in names:
            if kind_of(os.path.join(folder, name)) is not None:
                return True
        seen += len(names) + len(subfolders)
        if seen >= look_at:
            return False
    return False


def _create(root: Path) -> None:
    """An empty store at ``root``; when another writer holds it, that writer is creating it."""
    try:
        with Store.open_for_writing(root):
            pass
    except SmartError as exc:
        if exc.kind is not ErrorKind.STORE_BUSY:
            raise


def remove_if_empty(root: Path) -> None:
    """Delete a store directory holding no file (only what creating it wrote)."""
    try:
        with Store.open(root, verify=False) as store:
            if reads.files(store):
                return
    except (SmartError, sqlite3.DatabaseError, OSError):
        pass
    if root.is_dir() and set(os.listdir(root)) <= STORE_NAMES and not any((root / SEGMENT_DIR).glob("*")):
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _opened(root: Path, open_store):
    """The store ``open_store()`` gives, closed afterwards; a damaged catalog (an sqlite error at
    any point) is reported as :class:`StoreDamaged`, a full or read-only disk as a storage error."""
    try:
        store = open_store()
    except sqlite3.DatabaseError as exc:
        raise damaged_catalog(root, exc) from None
    try:
        yield store
    except sqlite3.DatabaseError as exc:
        raise damaged_catalog(root, exc) from None
    except OSError as exc:  # writing a segment (h5py) or the catalog's files
        if exc.errno in _STORAGE_ERRNOS or free_bytes(root) < LOW_SPACE_BYTES:
            raise storage_error(root, exc) from None
        raise
    finally:
        store.close()


def reading(root: Path, verify: bool = True):
    """The store opened for reading."""
    return _opened(root, lambda: Store.open(root, verify=verify))


@contextlib.contextmanager
def reading_snapshot(root: Path, verify: bool = False):
    """The store opened for reading, at one committed snapshot."""
    with reading(root, verify=verify) as store, store.read_snapshot():
        yield store


def writing(root: Path, wait: bool = False, rebuild: bool = False, on_wait=None):
    """The store opened for writing, under its lock."""
    return _opened(root, lambda: Store.open_for_writing(root, wait=wait, rebuild=rebuild, on_wait=on_wait))


def open_for_search(root: Path) -> Store:
    """The store opened for a query session; an empty store is STORE_EMPTY."""
    try:
        store = Store.open(root)
    except sqlite3.DatabaseError as exc:
        raise damaged_catalog(root, exc) from None
    if store.model is None:
        store.close()
        raise StoreMissing(f"the index at {root} is empty", kind=ErrorKind.STORE_EMPTY)
    return store
