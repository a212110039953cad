"""What a store directory holds, where it is by default, and whether a directory is one.

smart-store.json      the marker: this directory is a smart store (and of which schema)
catalog.sqlite        files, items (pages), segments, metadata; the only mutable file
rebuild.sqlite        a rebuild's new catalog, until it replaces catalog.sqlite
segments/<name>.h5    pooled vectors and token states of one committed batch
lock                  held (flock) by the one process allowed to write
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from smartcli import defaults
from smartcli.errors import ErrorKind, StoreError

MARKER = "smart-store.json"
CATALOG = "catalog.sqlite"
REBUILD_CATALOG = "rebuild.sqlite"
SEGMENT_DIR = "segments"
LOCK = "lock"
_SQLITE_FILES = ("", "-wal", "-shm", "-journal")
# What a store directory holds; a directory with anything else is not (or not only) a store.
STORE_NAMES = {MARKER, LOCK, SEGMENT_DIR} | {name + suffix for name in (CATALOG, REBUILD_CATALOG) for suffix in _SQLITE_FILES}


def default_store_path() -> Path:
    """``$SMART_STORE``, else ``$XDG_DATA_HOME/smart/store`` (``~/.local/share/smart/store``)."""
    if os.environ.get("SMART_STORE"):
        return Path(os.environ["SMART_STORE"]).expanduser()
    data_home = defaults.xdg_dir("XDG_DATA_HOME", ".local", "share")
    return Path(data_home) / "smart" / "store"


def remove_catalog(path: Path) -> None:
    """Delete a catalog file with its write-ahead log, shared memory and journal."""
    for suffix in _SQLITE_FILES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


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
    """Whether ``path`` is a catalog a smart store wrote (looked at read-only, nothing changed)."""
    try:
        probe = sqlite3.connect(f"file:{quote(os.fspath(path))}?mode=ro", uri=True, timeout=30)
        try:
            return probe.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() is not None
        finally:
            probe.close()
    except sqlite3.Error as exc:
        # A catalog damaged beyond reading is still ours when the folder looks like a store.
        name = getattr(exc, "sqlite_errorname", "")
        return not name.startswith("SQLITE_ERROR") and (path.parent / SEGMENT_DIR).is_dir()
