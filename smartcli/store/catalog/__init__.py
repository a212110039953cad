"""The on-disk index: a SQLite catalog plus immutable HDF5 vector segments.

One module per job; only this package touches the SQLite connection, and only schema.py
issues DDL (tests/unit/test_catalog_layers.py):

    layout.py       what a store directory holds, where it is by default, whether a directory is one
    connection.py   connecting (read-only fallback) and what an SQLite or file failure really is
    schema.py       tables, schema version, migrations, columns added in place, meta keys, marker
    store.py        Store: opening, the write lock, rebuild swap, metadata, segments as recorded
    records.py      what is committed and read back (PageRecord, FileRecord, LiveItem, ...)
    reads.py        reading the catalog (live items, files, stats, ...)
    writes.py       committing to it (files, catalog-only changes, rewritten segments, metadata)
    retirement.py   segments nothing points at any more, and leftovers of earlier runs
    integrity.py    the one integrity check, cheap or thorough
    qdrant_acks.py  what a Qdrant collection acknowledged

The store and its records are importable from here.
"""

from smartcli.store.catalog.records import CatalogChanges, FileCopy, FileRecord, LiveItem, PageRecord
from smartcli.store.catalog.store import Store

__all__ = ["CatalogChanges", "FileCopy", "FileRecord", "LiveItem", "PageRecord", "Store"]
