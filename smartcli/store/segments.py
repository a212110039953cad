"""Segment files: immutable HDF5 files holding the vectors of committed pages.

This is the one module that reads and writes a segment's datasets::

    pooled      [rows, D] float32     the anchor vector of each row (page)
    offsets     [rows + 1] int64      row r's token states are tokens[offsets[r]:offsets[r+1]]
    tokens      [T, ...]              token states as stored (see formats.py)
    token_scale [T] float32           int8 stores only: each token's scale
    token_ids   [T] int32             vocabulary id of each token (-1: an image patch)
    spans       [T, 2] int32          character span of each token in its page's text
    item_path   [rows] bytes          the path and page a row was written for (for people
    item_page   [rows] int32          inspecting a file; the catalog is the authority)

A segment is written under a temporary name, fsynced and renamed into place; the catalog
transaction that names it commits afterwards (see catalog.py).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from smartcli.errors import StoreDamaged, first_line
from smartcli.store.formats import BINARY_SHRINK, TOKEN_FORMATS, decode_binary, encode_binary, encode_int8

# The layout above; recorded in every file (the catalog's schema has its own version).
SEGMENT_FORMAT = 1
_PER_TOKEN = ("tokens", "token_scale", "token_ids", "spans")
_PER_ROW = ("pooled", "item_path", "item_page")


class SegmentFile(NamedTuple):
    """A complete segment file, as the catalog records it."""

    name: str
    rows: int
    tokens: int
    bytes: int


class StoredTokens(NamedTuple):
    """Token states as a segment keeps them (packed bits, int8 + scale, or float16)."""

    data: np.ndarray
    scale: np.ndarray | None
    dims: int

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + (0 if self.scale is None else self.scale.nbytes)


class Segment:
    """An open segment file, read-only."""

    def __init__(self, path: Path):
        import h5py

        self.path = path
        try:
            self._h5 = h5py.File(path, "r", locking=False)
        except (OSError, ValueError) as exc:
            raise StoreDamaged(f"segment {path} cannot be read ({first_line(exc)})") from None
        self._offsets: np.ndarray | None = None

    def close(self) -> None:
        self._h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def dims(self) -> int:
        return int(self._h5.attrs["dims"])

    @property
    def has_spans(self) -> bool:
        return "spans" in self._h5

    def offsets(self) -> np.ndarray:
        if self._offsets is None:
            self._offsets = self._h5["offsets"][:]
        return self._offsets

    def token_range(self, row: int) -> tuple[int, int]:
        offsets = self.offsets()
        return int(offsets[row]), int(offsets[row + 1])

    def pooled(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Pooled vectors of ``rows`` (all rows by default), float32."""
        pooled = self._h5["pooled"][:]
        return (pooled if rows is None else pooled[np.asarray(rows)]).astype(np.float32, copy=False)

    def stored_tokens(self, start: int, stop: int) -> StoredTokens:
        data = self._h5["tokens"][start:stop]
        scale = self._h5["token_scale"][start:stop] if data.dtype == np.int8 else None
        return StoredTokens(data, scale, self.dims)

    def token_bytes(self) -> int:
        """Bytes one stored token state takes (its scale included)."""
        tokens = self._h5["tokens"]
        per = tokens.dtype.itemsize * int(np.prod(tokens.shape[1:]))
        return per + (4 if tokens.dtype == np.int8 else 0)

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Token states ``[start, stop)`` as float32 (decoded from the stored format)."""
        return decode_stored([self.stored_tokens(start, stop)])

    def token_ids(self, start: int, stop: int) -> np.ndarray:
        return self._h5["token_ids"][start:stop]

    def spans(self, start: int, stop: int) -> np.ndarray:
        """Character spans of tokens ``[start, stop)``; zeros where the segment has none."""
        if not self.has_spans:
            return np.zeros((stop - start, 2), np.int32)
        return self._h5["spans"][start:stop]


def decode_stored(parts: Sequence[StoredTokens]) -> np.ndarray:
    """Decode stored token states (all in one format) to one float32 [T, D] array.

    Concatenating the small stored form first and decoding once is much cheaper than
    decoding many small runs and concatenating the large float arrays.
    """
    data = parts[0].data if len(parts) == 1 else np.concatenate([p.data for p in parts])
    if data.dtype == np.uint8:  # 1-bit signs, packed
        return decode_binary(data, parts[0].dims, BINARY_SHRINK)
    if data.dtype == np.int8:
        scale = np.concatenate([p.scale for p in parts])
        return data.astype(np.float32) * scale[:, None]
    return data.astype(np.float32)


# -- writing ---------------------------------------------------------------------------------


@contextlib.contextmanager
def new_segment_file(directory: Path, attrs: dict) -> Iterator[tuple[str, object]]:
    """Yield ``(name, h5 file)`` for a new segment in ``directory``; on success it is fsynced
    and renamed into place. Until a catalog transaction names it, it is a leftover."""
    import h5py

    name = f"seg-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    final = directory / f"{name}.h5"
    tmp = final.with_name(f".tmp-{name}.h5")
    try:
        with h5py.File(tmp, "w", locking=False) as h5:
            h5.attrs.update(segment_format=SEGMENT_FORMAT, created=time.time(), **attrs)
            yield name, h5
            h5.flush()
            os.fsync(h5.id.get_vfd_handle())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def write_pages(h5, pages: Sequence[tuple[str, int, object]], token_dtype: str) -> int:
    """Write ``(path, page, Encoded)`` rows into a new segment; returns the token count."""
    import h5py

    counts = np.array([encoded.tokens.shape[0] for _, _, encoded in pages], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    h5["pooled"] = np.stack([encoded.pooled for _, _, encoded in pages]).astype(np.float32)
    h5["offsets"] = offsets
    _write_tokens(h5, np.concatenate([encoded.tokens for _, _, encoded in pages]), token_dtype)
    h5["token_ids"] = np.concatenate([encoded.token_ids for _, _, encoded in pages]).astype(np.int32)
    h5["spans"] = np.concatenate([encoded.spans for _, _, encoded in pages]).astype(np.int32)
    h5["item_path"] = np.array([os.fsencode(path) for path, _, _ in pages], dtype=h5py.special_dtype(vlen=bytes))
    h5["item_page"] = np.array([page for _, page, _ in pages], dtype=np.int32)
    return int(offsets[-1])


def _write_tokens(h5, tokens: np.ndarray, dtype: str) -> None:
    if dtype == "float16":
        h5["tokens"] = tokens.astype(np.float16)
    elif dtype == "int8":
        h5["tokens"], h5["token_scale"] = encode_int8(tokens)
    elif dtype == "binary":
        h5["tokens"] = encode_binary(tokens)
    else:
        raise ValueError(f"unknown token dtype {dtype!r}; choose one of {TOKEN_FORMATS}")


def copy_rows(out, sources: Sequence[tuple[Segment, list[tuple[int, int]]]], counts: np.ndarray) -> None:
    """Fill a new segment ``out`` with rows copied bit for bit from open segments.

    ``sources`` holds, per source segment, ``(new row, old row)`` pairs whose new rows are
    consecutive; ``counts`` is the token count of every new row.
    """
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n_rows, n_tokens = len(counts), int(offsets[-1])
    for index, (source, pairs) in enumerate(sources):
        src = source._h5
        if index == 0:
            for key in (*_PER_TOKEN, *_PER_ROW):
                if key in src:
                    length = n_tokens if key in _PER_TOKEN else n_rows
                    out.create_dataset(key, shape=(length, *src[key].shape[1:]), dtype=src[key].dtype)
        new_rows = np.array([new for new, _ in pairs])
        old_rows = np.array([old for _, old in pairs])
        if not (np.diff(new_rows) == 1).all():
            raise ValueError("rows of one source segment must be consecutive")
        src_offsets = source.offsets()
        token_index = np.concatenate([np.arange(src_offsets[r], src_offsets[r + 1]) for r in old_rows])
        first, last = int(new_rows[0]), int(new_rows[-1]) + 1
        for key in _PER_TOKEN:
            if key in src:
                out[key][offsets[first] : offsets[last]] = src[key][:][token_index]
        for key in _PER_ROW:
            if key in src:
                out[key][first:last] = src[key][:][old_rows]
    out["offsets"] = offsets


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
