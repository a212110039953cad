"""Damage made on real stores for the integrity tests (issue 13, item 9): flipped bits in a
segment's datasets, swapped segment files, a flipped byte in a page's text in the catalog."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def three_segments(tmp_path_factory):
    """A store of three one-page PDFs, each added by its own `smart index` run (one segment
    each); the first two are of equal size on disk."""
    from tests.attacks import text_page
    from tests.conftest import run_smart

    root = tmp_path_factory.mktemp("three")
    docs, store = root / "docs", root / "store"
    docs.mkdir()
    for name, word in (("a", "one"), ("b", "two"), ("c", "six")):
        text_page(docs / f"{name}.pdf", f"ferry timetable for the harbor, route {word}")
        run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    return store


def segment_files(store: Path) -> list[Path]:
    """The segment files the catalog names, oldest first."""
    conn = sqlite3.connect(store / "catalog.sqlite")
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM segments ORDER BY created, name")]
    finally:
        conn.close()
    return [store / "segments" / f"{name}.h5" for name in names]


def dataset_byte(path: Path, dataset: str, index: int = 0) -> int:
    """The file offset of byte ``index`` of ``dataset``'s stored data (its first chunk when chunked)."""
    import h5py

    with h5py.File(path, "r") as h5:
        ds = h5[dataset]
        if ds.chunks is None:
            start = ds.id.get_offset()
        else:
            start = ds.id.get_chunk_info(0).byte_offset
    assert start is not None, f"{dataset} has no stored data"
    return int(start) + index


def flip_bit(path: Path, offset: int, bit: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))


def flip_in_dataset(path: Path, dataset: str, element: int, byte: int, bit: int) -> None:
    """Flip ``bit`` of byte ``byte`` of element ``element`` of ``dataset`` (in its first chunk)."""
    import h5py

    with h5py.File(path, "r") as h5:
        ds = h5[dataset]
        per = ds.dtype.itemsize * int(np.prod(ds.shape[1:]))
    flip_bit(path, dataset_byte(path, dataset, element * per + byte), bit)


def swap_files(a: Path, b: Path) -> None:
    tmp = a.with_name(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


def flip_text_byte(store: Path, text: str, replacement: int) -> None:
    """Replace the first byte of ``text`` (which must occur once in the catalog file, the WAL
    checkpointed) with ``replacement``, in place: a flipped byte on disk."""
    catalog = store / "catalog.sqlite"
    assert not Path(f"{catalog}-wal").exists() or Path(f"{catalog}-wal").stat().st_size == 0
    data = catalog.read_bytes()
    needle = text.encode("utf-8")
    assert data.count(needle) == 1, f"{text!r} occurs {data.count(needle)} times in the catalog"
    at = data.index(needle)
    with open(catalog, "r+b") as f:
        f.seek(at)
        f.write(bytes([replacement]))


def unique_text(store: Path, length: int = 24) -> tuple[str, str, int]:
    """(a piece of some page's text that occurs once in the catalog file, that page's path, page)."""
    conn = sqlite3.connect(store / "catalog.sqlite")
    try:
        rows = conn.execute(
            "SELECT files.path, items.page, items.text FROM items JOIN files ON files.id = items.file_id "
            "WHERE items.segment IS NOT NULL AND length(items.text) > 200 ORDER BY items.id"
        ).fetchall()
    finally:
        conn.close()
    data = (store / "catalog.sqlite").read_bytes()
    for path, page, text in rows:
        for start in range(0, len(text) - length, 7):
            piece = text[start : start + length]
            if piece.isascii() and piece[0].isalpha() and data.count(piece.encode()) == 1:
                return piece, path.decode() if isinstance(path, bytes) else path, page
    raise AssertionError("no page text piece occurs once in the catalog")
