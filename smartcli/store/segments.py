"""Segment files: immutable HDF5 files holding the vectors of committed pages.

This is the one module that reads and writes a segment's datasets::

    pooled      [rows, D] float32     the anchor vector of each row (page)
    offsets     [rows + 1] int64      row r's token states are tokens[offsets[r]:offsets[r+1]]
    tokens      [T, ...]              token states as stored (see formats.py)
    token_scale [T] float32           int8 stores only: each token's scale
    token_ids   [T] int32             vocabulary id of each token (-1: an image patch)
    spans       [T, 2] int32          character span of each token in its page's text (formats 1-3;
                                      format 4 packs them per row: ``span_bytes``, below)
    item_path   [rows] bytes          the path and page a row was written for (for people
    item_page   [rows] int32          inspecting a file; the catalog is the authority)

A segment is written under a temporary name, fsynced and renamed into place; the catalog
transaction that names it commits afterwards (see catalog/writes.py).

Integrity (format 2): each file carries an identity (``segment_id``, a uuid4, and its own
``segment_name``) that the catalog records too, so a file in another's place is detected.
The datasets read whole (``pooled``, ``offsets``, ``item_page`` and the CRCs below) are
chunked with HDF5's Fletcher-32 filter, so a flipped bit fails the read instead of returning
a wrong value. The per-token datasets are read in many small runs (a two-stage query reads
about 200 pages wherever they lie): chunked, each run would read and checksum a whole chunk
(measured: 8 pages far apart 16 times slower in 1 MB chunks, ``benchmarks/integrity.py``), so they
stay contiguous and each row's bytes of each of them has a CRC-32 (``crc_<dataset>``
``[rows]`` uint32), checked on every read. The SHA-256 of every dataset (the variable-length
``item_path`` lives in HDF5's global heap, which filters do not cover) is recorded in the
catalog at commit and checked by :meth:`Segment.verify`. Opening a segment
checks its identity and shapes against the catalog (:meth:`Segment.check`): offsets start at 0,
never decrease and end at the token count, row counts and dims match. Format-1 files (no
identity, no filter) are still read and still checked for shapes and for anchors that cannot
be unit vectors.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from smartcli.errors import ErrorKind, SmartError, StoreDamaged, first_line
from smartcli.store.formats import BINARY_SHRINK, TOKEN_FORMATS, decode_binary, encode_binary, encode_int8

# The layout above; recorded in every file (the catalog's schema has its own version).
# 2: an identity in the attributes, Fletcher-32 on the datasets read whole, row CRCs of the rest.
# 3: no per-token vocabulary ids; each page's distinct ids kept as postings (``vocab_*``) for the
#    first stage; spans as uint16 where the page texts allow (MAX_PAGE_CHARS); datasets aligned
#    to 64 bytes in the file (memory-mapped, read as 64-bit words).
# 4: spans packed per row (they are read only for the hits shown): each row's (start minus the
#    previous token's end, length) pairs as int32, deflated (zlib), in ``span_bytes``; row r's
#    bytes are ``span_bytes[span_offsets[r]:span_offsets[r + 1]]`` with a CRC-32 in
#    ``crc_span_bytes``. 0.4 KB a page instead of 2.5 (uint16 spans). Formats 3, 2 and 1 are read.
SEGMENT_FORMAT = 4
_PER_TOKEN = ("tokens", "token_scale", "token_ids", "spans")
_PER_ROW = ("pooled", "item_path", "item_page")
_CRC = {key: f"crc_{key}" for key in _PER_TOKEN}  # per-token dataset -> its per-row CRC-32 dataset
_CHUNK_BYTES = 1 << 20  # Fletcher-32 chunks of the datasets read whole
# Format 3's postings of vocabulary ids: the segment's distinct ids (ascending), where each one's
# rows start in ``vocab_rows``, and the rows (ascending per id). Read in place, covered by the
# datasets' SHA-256 digests; a wrong posting could only change which pages a first stage
# proposes, never a score.
_VOCAB = ("vocab_ids", "vocab_starts", "vocab_rows")
_ALIGN = 64  # every dataset starts at a multiple of this in the file (a cache line: 64-bit words read in place)


class SegmentFile(NamedTuple):
    """A complete segment file, as the catalog records it."""

    name: str
    rows: int
    tokens: int
    bytes: int
    uid: str | None = None  # the identity written into the file (None: a format-1 file)
    digests: dict | None = None  # dataset -> SHA-256 of its contents, as written


class Expected(NamedTuple):
    """What the catalog says a segment holds (checked when it is opened)."""

    rows: int
    tokens: int
    uid: str | None = None
    dims: int | None = None  # the store's model's


class Damage(NamedTuple):
    """One thing wrong with a segment (or a page's text): where, and what."""

    segment: str | None  # the segment's name (None: the catalog)
    dataset: str | None  # the dataset (or "page P of F" for a page's text)
    problem: str

    def __str__(self) -> str:
        where = f"segment {self.segment}.h5" if self.segment else "the catalog"
        return f"{where}: {self.dataset + ': ' if self.dataset else ''}{self.problem}"


def unreadable(path: Path) -> SmartError:
    """This user may not read segment ``path`` (PERMISSION_DENIED, never damage)."""
    return SmartError(
        ErrorKind.PERMISSION_DENIED,
        f"no permission to read segment {path.name} of the store at {path.parent.parent} (permission denied)",
        segment=path.stem,
        path=str(path.parent.parent),
    )


def damaged(name: str, problem: str, dataset: str | None = None, roots=None) -> StoreDamaged:
    """The error of a damaged segment; ``details`` name it (``segment``, ``dataset``)."""
    where = f"{dataset} " if dataset else ""
    return StoreDamaged(
        f"segment {name}.h5 is damaged: {where}{problem}", segment=name, dataset=dataset, problem=problem, roots=roots or []
    )


class StoredTokens(NamedTuple):
    """Token states as a segment keeps them (packed bits, int8 + scale, or float16)."""

    data: np.ndarray
    scale: np.ndarray | None
    dims: int

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + (0 if self.scale is None else self.scale.nbytes)


class Segment:
    """An open segment file, read-only. With ``expect`` (what the catalog says it holds) it is
    checked on open (:meth:`check`) and raises :class:`StoreDamaged` (``details["segment"]``
    names it) when it is not that segment or its shapes do not fit."""

    def __init__(self, path: Path, expect: Expected | None = None):
        import h5py

        self.path = path
        self.name = path.stem
        try:
            self._h5 = h5py.File(path, "r", locking=False)
        except (OSError, ValueError) as exc:
            if not path.exists():  # deleted (a compaction's retired file past its grace time), not damaged
                raise StoreDamaged(f"segment {path} is missing", segment=self.name, missing=True) from None
            if getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM) or not os.access(path, os.R_OK):
                raise unreadable(path) from None  # a permission problem is never damage: nothing to rebuild
            raise damaged(self.name, f"cannot be read as HDF5 ({first_line(exc)})") from None
        self._offsets: np.ndarray | None = None
        self._crcs: dict = {}
        self._packed: PackedSpans | None = None
        if expect is not None:
            try:
                self.check(expect)
            except BaseException:
                self._h5.close()
                raise

    def check(self, expect: Expected) -> None:
        """Identity and shapes against the catalog's record; offsets read and validated (cheap:
        ``rows + 1`` integers). Raises :class:`StoreDamaged` naming what is wrong."""
        h5, name = self._h5, self.name
        try:
            attrs = dict(h5.attrs)
            own_id, own_name = attrs.get("segment_id"), attrs.get("segment_name")
            if isinstance(own_id, bytes):
                own_id = own_id.decode("ascii", "replace")
            if isinstance(own_name, bytes):
                own_name = own_name.decode("utf-8", "replace")
            if own_name is not None and own_name != name:
                raise damaged(name, f"is another segment's file ({own_name}.h5) in its place")
            if expect.uid is not None and own_id != expect.uid:
                raise damaged(name, f"is not the file the catalog names (identity {own_id or 'none'}, the catalog's {expect.uid})")
            for key in ("pooled", "offsets", "tokens"):
                if key not in h5:
                    raise damaged(name, "is missing", dataset=key)
            dims = int(attrs.get("dims", -1))
            if expect.dims is not None and dims != expect.dims:
                raise damaged(name, f"holds {dims}-dimensional vectors, the store's model makes {expect.dims}")
            shape = {key: h5[key].shape for key in (*_PER_TOKEN, *_PER_ROW, "offsets") if key in h5}
            if shape["pooled"] != (expect.rows, dims):
                raise damaged(name, f"has shape {shape['pooled']}, the catalog says {expect.rows} rows of {dims}", dataset="pooled")
            for key in _PER_ROW[1:]:
                if key in shape and shape[key][:1] != (expect.rows,):
                    raise damaged(name, f"has {shape[key][0]} rows, the catalog says {expect.rows}", dataset=key)
            if shape["offsets"] != (expect.rows + 1,):
                raise damaged(name, f"has {shape['offsets'][0]} entries, {expect.rows + 1} expected", dataset="offsets")
            tokens = h5["tokens"]
            width = (dims + 7) // 8 if tokens.dtype == np.uint8 else dims
            if tokens.ndim != 2 or tokens.shape[1] != width or tokens.shape[0] != expect.tokens:
                raise damaged(name, f"has shape {tokens.shape}, the catalog says {expect.tokens} token states of {width}", dataset="tokens")
            for key in _PER_TOKEN[1:]:
                if key in shape and shape[key][:1] != (expect.tokens,):
                    raise damaged(name, f"has {shape[key][0]} entries, {expect.tokens} token states expected", dataset=key)
            if "span_offsets" in h5 and h5["span_offsets"].shape != (expect.rows + 1,):
                raise damaged(name, f"has {h5['span_offsets'].shape[0]} entries, {expect.rows + 1} expected", dataset="span_offsets")
            for crc in (*_CRC.values(), "crc_span_bytes"):
                if crc in h5 and h5[crc].shape != (expect.rows,):
                    raise damaged(name, f"has {h5[crc].shape[0]} entries, the catalog says {expect.rows} rows", dataset=crc)
            offsets = self._read("offsets")
            if len(offsets) and (offsets[0] != 0 or offsets[-1] != expect.tokens or (np.diff(offsets) < 0).any()):
                raise damaged(name, f"are not increasing from 0 to the token count {expect.tokens}", dataset="offsets")
            self._offsets = offsets
        except StoreDamaged:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise damaged(name, f"cannot be read ({first_line(exc)})") from None

    def _rows_read(self, key: str, start: int, stop: int) -> np.ndarray:
        """Token states (or their ids, spans, scales) ``[start, stop)``; each whole row in the
        range is checked against its CRC-32 (segments of format 2)."""
        data = self._read(key, slice(start, stop))
        crc = _CRC.get(key)
        if crc not in self._h5 or stop <= start:
            return data
        offsets = self.offsets()
        first = int(np.searchsorted(offsets, start, side="left"))
        last = int(np.searchsorted(offsets, stop, side="right")) - 1  # rows [first, last) lie whole inside
        if last <= first:
            return data
        if self._crcs.get(key) is None:
            self._crcs[key] = self._read(crc)
        expected = self._crcs[key]
        for row in range(first, last):
            a, b = int(offsets[row]) - start, int(offsets[row + 1]) - start
            if zlib.crc32(data[a:b].tobytes()) != int(expected[row]):
                raise damaged(self.name, f"row {row} differs from what was written (CRC-32)", dataset=key)
        return data

    def _read(self, key: str, selection=slice(None)) -> np.ndarray:
        """``key[selection]``; a checksum failure or unreadable data raises :class:`StoreDamaged`."""
        try:
            return self._h5[key][selection]
        except (OSError, ValueError) as exc:
            text = first_line(exc)
            if "filter" in text.lower() or "checksum" in text.lower():
                raise damaged(self.name, "fails its checksum (Fletcher-32)", dataset=key) from None
            raise damaged(self.name, f"cannot be read ({text})", dataset=key) from None

    @property
    def checksummed(self) -> bool:
        """Written with the Fletcher-32 filter (format 2 and later)."""
        return "pooled" in self._h5 and bool(self._h5["pooled"].fletcher32)

    def verify(self, expect: Expected, digests: dict | None) -> list[Damage]:
        """Read everything: check identity and shapes, every dataset's checksum and its digest
        (when the catalog has one), and that anchors are finite unit vectors."""
        try:
            self.check(expect)
        except StoreDamaged as exc:
            return [Damage(self.name, exc.details.get("dataset"), exc.details.get("problem") or str(exc))]
        found = []
        try:
            keys = list(self._h5)
        except (OSError, ValueError) as exc:
            return [Damage(self.name, None, f"cannot be read ({first_line(exc)})")]
        for key in keys:
            try:
                data = self._read(key)
            except StoreDamaged as exc:
                found.append(Damage(self.name, key, exc.details["problem"]))
                continue
            if key in _CRC and _CRC[key] in self._h5:  # the row CRCs say where
                try:
                    self._rows_read(key, 0, int(self.offsets()[-1]))
                except StoreDamaged as exc:
                    found.append(Damage(self.name, key, exc.details["problem"]))
                    continue
            if key == "span_bytes":
                try:
                    self.packed_spans().check_all()
                except StoreDamaged as exc:
                    found.append(Damage(self.name, key, exc.details["problem"]))
                    continue
            if digests and key in digests and dataset_digest(data) != digests[key]:
                found.append(Damage(self.name, key, "differs from what was committed (SHA-256)"))
            elif key == "pooled" and not _unit_rows_ok(data):
                found.append(Damage(self.name, key, "holds values an anchor (a unit vector) cannot have"))
        if digests:
            found += [Damage(self.name, key, "is missing") for key in digests if key not in self._h5]
        return found

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
        return "spans" in self._h5 or "span_bytes" in self._h5

    def packed_spans(self) -> PackedSpans | None:
        """Format 4's spans, packed per row (None: an older segment, or no spans)."""
        if self._packed is None and "span_bytes" in self._h5:
            data = _mapped(self.path, self._h5["span_bytes"])
            self._packed = PackedSpans(
                self.name,
                self._read("span_bytes") if data is None else data,
                self._read("span_offsets"),
                self._read("crc_span_bytes"),
                self.offsets(),
            )
        return self._packed

    def offsets(self) -> np.ndarray:
        if self._offsets is None:
            self._offsets = self._read("offsets")
        return self._offsets

    def token_range(self, row: int) -> tuple[int, int]:
        offsets = self.offsets()
        return int(offsets[row]), int(offsets[row + 1])

    def pooled(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Pooled vectors of ``rows`` (all rows by default), float32."""
        pooled = self._read("pooled")
        if not _unit_rows_ok(pooled):  # what a file without checksums can still tell
            raise damaged(self.name, "holds values an anchor (a unit vector) cannot have", dataset="pooled")
        return (pooled if rows is None else pooled[np.asarray(rows)]).astype(np.float32, copy=False)

    def stored_tokens(self, start: int, stop: int) -> StoredTokens:
        data = self._rows_read("tokens", start, stop)
        scale = self._rows_read("token_scale", start, stop) if data.dtype == np.int8 else None
        return StoredTokens(data, scale, self.dims)

    def token_bytes(self) -> int:
        """Bytes one stored token state takes (its scale included)."""
        tokens = self._h5["tokens"]
        per = tokens.dtype.itemsize * int(np.prod(tokens.shape[1:]))
        return per + (4 if tokens.dtype == np.int8 else 0)

    def mapped_tokens(self) -> MappedTokens | None:
        """The segment's token states as stored, memory-mapped in place (:class:`MappedTokens`),
        each row checked against its CRC-32 the first time it is read; None where a per-token
        dataset is not contiguous (nothing ``smart`` writes)."""
        data = _mapped(self.path, self._h5["tokens"])
        if data is None:
            return None
        scale = None
        if data.dtype == np.int8:
            scale = _mapped(self.path, self._h5["token_scale"]) if "token_scale" in self._h5 else None
            if scale is None:
                return None
        spans = _mapped(self.path, self._h5["spans"]) if "spans" in self._h5 else None
        crcs = {key: self._crc_table(key) for key in ("tokens", "token_scale", "spans") if _CRC[key] in self._h5}
        return MappedTokens(self.name, StoredTokens(data, scale, self.dims), self.offsets(), crcs, spans, self.packed_spans())

    def mapped_pooled(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The pooled vectors as stored, in place: (the file mapped as float32 words, each row's
        first word in it). A chunked dataset's chunks hold the raw rows (Fletcher-32 appends its
        checksum after them); None where that is not so (another filter, another byte order,
        chunks off a 4-byte boundary, chunks of part of a row). The words are read unchecked:
        the caller reads the dataset through :meth:`pooled` once, which checks it."""
        import mmap

        dataset = self._h5["pooled"]
        rows, dims = dataset.shape
        row_bytes = dims * 4
        if dataset.dtype != np.dtype("<f4") or (dataset.chunks is not None and dataset.chunks[1] != dims):
            return None
        if dataset.chunks is None:
            offset = dataset.id.get_offset()
            pieces = [] if offset is None else [(0, rows, offset, rows * row_bytes)]
        else:
            plist = dataset.id.get_create_plist()
            if any(plist.get_filter(i)[0] != h5z_fletcher32() for i in range(plist.get_nfilters())):
                return None
            pieces = []
            for i in range(dataset.id.get_num_chunks()):
                info = dataset.id.get_chunk_info(i)
                first = info.chunk_offset[0]
                count = min(dataset.chunks[0], rows - first)
                pieces.append((first, count, info.byte_offset, info.size))
        starts = np.full(rows, -1, np.int64)
        with open(self.path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if not rows or not size:
                return (np.zeros(0, np.float32), starts) if not rows else None
            mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        for first, count, offset, stored in pieces:
            if offset is None or offset % 4 or stored < count * row_bytes or offset + count * row_bytes > size:
                return None
            starts[first : first + count] = offset // 4 + np.arange(count, dtype=np.int64) * dims
        if (starts < 0).any():
            return None
        return np.frombuffer(mapping, dtype=np.float32, count=size // 4), starts

    def _crc_table(self, key: str) -> np.ndarray:
        if self._crcs.get(key) is None:
            self._crcs[key] = self._read(_CRC[key])
        return self._crcs[key]

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Token states ``[start, stop)`` as float32 (decoded from the stored format)."""
        return decode_stored([self.stored_tokens(start, stop)])

    def token_ids(self, start: int, stop: int) -> np.ndarray:
        """Vocabulary ids of tokens ``[start, stop)``; -1 where the segment keeps none (format 3
        keeps each page's distinct ids as postings instead: :meth:`vocabulary`)."""
        if "token_ids" not in self._h5:
            return np.full(stop - start, -1, np.int32)
        return self._rows_read("token_ids", start, stop)

    def vocabulary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The postings of the segment's vocabulary ids: (distinct ids [U] ascending, starts [U + 1],
        rows [nnz]): the rows holding ``ids[u]`` are ``rows[starts[u]:starts[u + 1]]``. Read in place
        from a format-3 file; made from the per-token ids of an older one (image patches, id -1,
        are no vocabulary)."""
        if all(key in self._h5 for key in _VOCAB):
            ids, starts, rows = (_mapped(self.path, self._h5[key]) for key in _VOCAB)
            if ids is None or starts is None or rows is None:
                ids, starts, rows = (self._read(key) for key in _VOCAB)
            if len(starts) != len(ids) + 1 or (len(starts) and (starts[0] != 0 or starts[-1] != len(rows))) or (np.diff(starts) < 0).any():
                raise damaged(self.name, "do not fit their ids and rows", dataset="vocab_starts")
            return ids, starts, rows
        if "token_ids" not in self._h5:
            return np.zeros(0, np.int32), np.zeros(1, np.int64), np.zeros(0, np.int32)
        offsets = self.offsets()
        ids = self._rows_read("token_ids", 0, int(offsets[-1]))
        return postings([ids[offsets[r] : offsets[r + 1]] for r in range(len(offsets) - 1)])

    def spans(self, start: int, stop: int) -> np.ndarray:
        """Character spans of tokens ``[start, stop)``; zeros where the segment has none."""
        if not self.has_spans:
            return np.zeros((stop - start, 2), np.int32)
        packed = self.packed_spans()
        if packed is None:
            return self._rows_read("spans", start, stop)
        return packed.tokens(start, stop)


class PackedSpans:
    """Format 4's character spans: each row's deflated alone (:func:`pack_spans`), unpacked
    when a row is shown, checked against its CRC-32 each time (a row is a few hundred bytes)."""

    def __init__(self, name: str, data: np.ndarray, span_offsets: np.ndarray, crcs: np.ndarray, offsets: np.ndarray):
        self.name, self.data, self.span_offsets, self.crcs, self.offsets = name, data, span_offsets, crcs, offsets

    def row(self, row: int) -> np.ndarray:
        """Row ``row``'s spans [n, 2] int32; :class:`StoreDamaged` when its bytes are not what was written."""
        blob = self.data[int(self.span_offsets[row]) : int(self.span_offsets[row + 1])]
        if zlib.crc32(blob) != int(self.crcs[row]):
            raise damaged(self.name, f"row {row} differs from what was written (CRC-32)", dataset="span_bytes")
        count = int(self.offsets[row + 1] - self.offsets[row])
        try:
            return unpack_spans(bytes(blob), count)
        except ValueError as exc:
            raise damaged(self.name, f"row {row} cannot be unpacked ({exc})", dataset="span_bytes") from None

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Spans of tokens ``[start, stop)`` (of the whole segment)."""
        if stop <= start:
            return np.zeros((0, 2), np.int32)
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        last = int(np.searchsorted(self.offsets, stop, side="left"))
        rows = [self.row(r) for r in range(first, last)]
        base = int(self.offsets[first])
        return np.concatenate(rows)[start - base : stop - base]

    def check_all(self) -> None:
        for row in range(len(self.offsets) - 1):
            self.row(row)


class MappedTokens:
    """A segment's stored token states mapped into memory (the page cache holds them, not the
    process), read in place by the scoring kernel. A row's bytes are checked against its CRC-32
    the first time it is scored (:meth:`check_rows`) and never again in this process: segments
    are immutable, and a warm process need not pay the check on every query."""

    def __init__(
        self,
        name: str,
        stored: StoredTokens,
        offsets: np.ndarray,
        crcs: dict,
        spans: np.ndarray | None = None,
        packed: PackedSpans | None = None,
    ):
        self.name = name
        self.stored = stored
        self.offsets = offsets
        self.span_data = spans  # [T, 2] as stored (None: the segment keeps no spans, or packs them)
        self.packed_spans = packed  # format 4
        self._crcs = crcs  # dataset -> [rows] uint32, for the datasets that have them
        self._checked = np.zeros(max(len(offsets) - 1, 0), dtype=bool)
        self._checked_spans = np.zeros(max(len(offsets) - 1, 0), dtype=bool)

    def check_rows(self, rows: np.ndarray) -> None:
        """Check the rows' token states not checked before; a mismatch raises :class:`StoreDamaged` naming it."""
        rows = np.asarray(rows, dtype=np.int64)
        todo = rows[~self._checked[rows]]
        self._verify(todo, {"tokens": self.stored.data, "token_scale": self.stored.scale})
        self._checked[todo] = True

    def spans(self, row: int) -> np.ndarray | None:
        """Row ``row``'s character spans [n, 2] int32, checked the first time (None: no spans kept)."""
        if self.packed_spans is not None:
            return self.packed_spans.row(row)
        if self.span_data is None:
            return None
        if not self._checked_spans[row]:
            self._verify(np.array([row]), {"spans": self.span_data})
            self._checked_spans[row] = True
        return self.span_data[self.offsets[row] : self.offsets[row + 1]].astype(np.int32)

    def _verify(self, rows: np.ndarray, arrays: dict) -> None:
        offsets = self.offsets
        for key, data in arrays.items():
            expected = self._crcs.get(key)
            if expected is None or data is None:
                continue
            for row in np.unique(rows).tolist():
                if zlib.crc32(data[offsets[row] : offsets[row + 1]]) != int(expected[row]):
                    raise damaged(self.name, f"row {row} differs from what was written (CRC-32)", dataset=key)


def _mapped(path: Path, dataset) -> np.ndarray | None:
    """A contiguous, unfiltered HDF5 dataset as a read-only array over the file's own bytes
    (h5py gives its offset in the file); None for a chunked one. An empty or unallocated
    dataset is an empty array."""
    import mmap

    if dataset.chunks is not None:
        return None
    shape, dtype = dataset.shape, dataset.dtype
    size = int(np.prod(shape)) * dtype.itemsize
    offset = dataset.id.get_offset()
    if size == 0 or offset is None:
        return np.zeros(shape, dtype)
    with open(path, "rb") as file:
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    if offset + size > len(mapping):
        raise damaged(
            path.stem, f"is cut short: {offset + size} bytes needed, the file has {len(mapping)}", dataset=dataset.name.lstrip("/")
        )
    return np.frombuffer(mapping, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)


def _unit_rows_ok(pooled: np.ndarray) -> bool:
    """Anchors are unit vectors (scores are their dot products): finite, no coordinate past 1."""
    if pooled.size == 0:
        return True
    values = np.asarray(pooled, dtype=np.float32)
    return bool(np.isfinite(values).all() and np.abs(values).max() <= 1.0 + 1e-3)


def dataset_digest(data: np.ndarray) -> str:
    """SHA-256 of a dataset's contents as read (variable-length items length-prefixed)."""
    digest = hashlib.sha256()
    if data.dtype == object:
        for value in data:
            value = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
            digest.update(len(value).to_bytes(8, "little"))
            digest.update(value)
    else:
        digest.update(str(data.dtype).encode() + str(data.shape).encode())
        digest.update(np.ascontiguousarray(data).tobytes())
    return digest.hexdigest()


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


class NewSegment:
    """A segment being written: unpacks as ``(name, h5 file)``; once complete, ``uid`` and
    ``digests`` (dataset -> SHA-256, read back from the file) are what the catalog records."""

    def __init__(self, name: str, h5, uid: str):
        self.name, self.h5, self.uid = name, h5, uid
        self.digests: dict[str, str] = {}

    def __iter__(self):
        return iter((self.name, self.h5))

    def record(self, rows: int, tokens: int, nbytes: int) -> SegmentFile:
        return SegmentFile(self.name, rows, tokens, nbytes, self.uid, dict(self.digests))


@contextlib.contextmanager
def new_segment_file(directory: Path, attrs: dict) -> Iterator[NewSegment]:
    """Yield a :class:`NewSegment` (``name, h5 = ...``) for a new segment in ``directory``; on
    success its digests are taken, and it is fsynced and renamed into place. Until a catalog
    transaction names it, it is a leftover."""
    import h5py

    uid = uuid.uuid4().hex
    name = f"seg-{time.strftime('%Y%m%dT%H%M%S')}-{uid[:8]}"
    final = directory / f"{name}.h5"
    tmp = final.with_name(f".tmp-{name}.h5")
    try:
        with h5py.File(tmp, "w", locking=False, alignment_threshold=1, alignment_interval=_ALIGN) as h5:
            h5.attrs.update(segment_format=SEGMENT_FORMAT, created=time.time(), **attrs, segment_id=uid, segment_name=name)
            new = NewSegment(name, h5, uid)
            yield new
            h5.flush()
            new.digests = {key: dataset_digest(h5[key][()]) for key in h5}
            os.fsync(h5.id.get_vfd_handle())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def write_pages(h5, pages: Sequence[tuple[str, int, object]], token_dtype: str) -> int:
    """Write ``(path, page, Encoded)`` rows into a new segment; returns the token count. Each page's
    distinct token ids go into the segment's postings (format 3: no per-token ids)."""
    import h5py

    counts = np.array([encoded.tokens.shape[0] for _, _, encoded in pages], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    put(h5, "pooled", np.stack([encoded.pooled for _, _, encoded in pages]).astype(np.float32))
    put(h5, "offsets", offsets)
    _write_tokens(h5, np.concatenate([encoded.tokens for _, _, encoded in pages]), token_dtype, offsets)
    put_spans(h5, np.concatenate([encoded.spans for _, _, encoded in pages]), offsets)
    put_vocabulary(h5, postings([encoded.token_ids for _, _, encoded in pages]))
    # Variable-length: in the global heap, which no filter covers (its digest does).
    h5["item_path"] = np.array([os.fsencode(path) for path, _, _ in pages], dtype=h5py.special_dtype(vlen=bytes))
    put(h5, "item_page", np.array([page for _, page, _ in pages], dtype=np.int32))
    return int(offsets[-1])


def put_spans(h5, spans: np.ndarray, offsets: np.ndarray) -> None:
    """Format 4's packed spans (:func:`pack_spans`): the bytes contiguous, their offsets and row CRCs checksummed."""
    data, span_offsets = pack_spans(spans, offsets)
    h5["span_bytes"] = data
    put(h5, "span_offsets", span_offsets)
    put(h5, "crc_span_bytes", row_crcs(data, span_offsets))


def pack_spans(spans: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's spans as (start minus the previous token's end, length) int32 pairs, deflated
    alone: small numbers that compress about six times (a row's first start counts from 0)."""
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    blobs = []
    for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist()):
        row = spans[a:b]
        previous_end = np.concatenate([[0], row[:-1, 1]])
        codes = np.stack([row[:, 0] - previous_end, row[:, 1] - row[:, 0]], axis=1).astype("<i4")
        blobs.append(zlib.compress(codes.tobytes(), 9))
    span_offsets = np.concatenate([[0], np.cumsum([len(blob) for blob in blobs])]).astype(np.int64)
    return np.frombuffer(b"".join(blobs), dtype=np.uint8), span_offsets


def unpack_spans(blob: bytes, count: int) -> np.ndarray:
    """One row's spans [count, 2] int32 from :func:`pack_spans`' bytes; ValueError when they do not unpack to ``count``."""
    try:
        codes = np.frombuffer(zlib.decompress(blob), dtype="<i4")
    except zlib.error as exc:
        raise ValueError(str(exc)) from None
    if codes.size != 2 * count:
        raise ValueError(f"{codes.size // 2} spans, {count} expected")
    codes = codes.reshape(count, 2).astype(np.int64)
    ends = np.cumsum(codes[:, 0] + codes[:, 1])
    return np.stack([ends - codes[:, 1], ends], axis=1).astype(np.int32)


def postings(row_ids: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct ids, starts, rows) of the vocabulary ids of each row (negative ids, image
    patches, left out): see :meth:`Segment.vocabulary`."""
    pairs = [(np.unique(np.asarray(ids, dtype=np.int64)), row) for row, ids in enumerate(row_ids)]
    ids = np.concatenate([u[u >= 0] for u, _ in pairs]) if pairs else np.zeros(0, np.int64)
    rows = np.concatenate([np.full(int((u >= 0).sum()), row, np.int64) for u, row in pairs]) if pairs else np.zeros(0, np.int64)
    return _postings_of_pairs(rows, ids)


def put_vocabulary(h5, vocabulary: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """The postings, contiguous (read in place; the digests cover them)."""
    for key, data in zip(_VOCAB, vocabulary):
        h5[key] = data


def put(h5, key: str, data: np.ndarray) -> None:
    """A dataset read whole, chunked (whole rows, about 1 MB) with the Fletcher-32 filter."""
    h5.create_dataset(key, data=data, fletcher32=True, chunks=_chunks(data.shape, data.dtype.itemsize))


def _chunks(shape: tuple, itemsize: int) -> tuple:
    row_bytes = itemsize * int(np.prod(shape[1:]))
    rows = max(1, min(max(shape[0], 1), _CHUNK_BYTES // max(row_bytes, 1)))
    return (rows, *shape[1:])


def put_tokens(h5, key: str, data: np.ndarray, offsets: np.ndarray) -> None:
    """A per-token dataset, contiguous (read in small runs), and the CRC-32 of each row's bytes."""
    h5[key] = data
    put(h5, _CRC[key], row_crcs(data, offsets))


def row_crcs(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """CRC-32 of each row's part ``data[offsets[r]:offsets[r + 1]]``, as uint32."""
    data = np.ascontiguousarray(data)
    return np.array([zlib.crc32(data[int(a) : int(b)].tobytes()) for a, b in zip(offsets[:-1], offsets[1:])], dtype=np.uint32)


def _write_tokens(h5, tokens: np.ndarray, dtype: str, offsets: np.ndarray) -> None:
    if dtype == "float16":
        put_tokens(h5, "tokens", tokens.astype(np.float16), offsets)
    elif dtype == "int8":
        data, scale = encode_int8(tokens)
        put_tokens(h5, "tokens", data, offsets)
        put_tokens(h5, "token_scale", scale, offsets)
    elif dtype == "binary":
        # Already packed (uint8, D/8 bytes a row): states copied from a segment, written as they are.
        put_tokens(h5, "tokens", tokens if tokens.dtype == np.uint8 else encode_binary(tokens), offsets)
    else:
        raise ValueError(f"unknown token dtype {dtype!r}; choose one of {TOKEN_FORMATS}")


def copy_rows(out, sources: Sequence[tuple[Segment, list[tuple[int, int]]]], counts: np.ndarray) -> None:
    """Fill a new segment ``out`` with rows copied from open segments, in the current format.

    ``sources`` holds, per source segment, ``(new row, old row)`` pairs whose new rows are
    consecutive; ``counts`` is the token count of every new row. Token states, scales and
    pooled vectors are copied bit for bit; spans keep their values (packed, format 4);
    each page's vocabulary becomes the new segment's postings (from the source's postings, or
    from its per-token ids): an older segment is rewritten in the current format.
    """
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n_rows, n_tokens = len(counts), int(offsets[-1])
    spans = np.zeros((n_tokens, 2), np.int64)
    vocab_rows, vocab_ids = [], []
    for index, (source, pairs) in enumerate(sources):
        src = source._h5
        if index == 0:
            for key in ("tokens", "token_scale", *_PER_ROW):
                if key in src:
                    length = n_tokens if key in _PER_TOKEN else n_rows
                    dtype, shape = src[key].dtype, (length, *src[key].shape[1:])
                    # Per-token: contiguous, with row CRCs (below); vlen: the digest covers it.
                    checked = {} if key in _PER_TOKEN or dtype.kind == "O" else dict(fletcher32=True, chunks=_chunks(shape, dtype.itemsize))
                    out.create_dataset(key, shape=shape, dtype=dtype, **checked)
        new_rows = np.array([new for new, _ in pairs])
        old_rows = np.array([old for _, old in pairs])
        if not (np.diff(new_rows) == 1).all():
            raise ValueError("rows of one source segment must be consecutive")
        src_offsets = source.offsets()
        token_index = np.concatenate([np.arange(src_offsets[r], src_offsets[r + 1]) for r in old_rows])
        first, last = int(new_rows[0]), int(new_rows[-1]) + 1
        for key in ("tokens", "token_scale"):
            if key in src:
                out[key][offsets[first] : offsets[last]] = source._rows_read(key, 0, int(src_offsets[-1]))[token_index]
        if source.has_spans:
            spans[offsets[first] : offsets[last]] = source.spans(0, int(src_offsets[-1]))[token_index]
        for key in _PER_ROW:
            if key in src:
                out[key][first:last] = source._read(key)[old_rows]
        ids, starts, rows = source.vocabulary()
        new_of_old = np.full(len(src_offsets) - 1, -1, np.int64)
        new_of_old[old_rows] = new_rows
        entry_rows = new_of_old[np.asarray(rows, dtype=np.int64)]
        entry_ids = np.repeat(np.asarray(ids, dtype=np.int64), np.diff(np.asarray(starts, dtype=np.int64)))
        vocab_rows.append(entry_rows[entry_rows >= 0])
        vocab_ids.append(entry_ids[entry_rows >= 0])
    put(out, "offsets", offsets)
    put_spans(out, spans, offsets)
    rows = np.concatenate(vocab_rows) if vocab_rows else np.zeros(0, np.int64)
    ids = np.concatenate(vocab_ids) if vocab_ids else np.zeros(0, np.int64)
    put_vocabulary(out, _postings_of_pairs(rows, ids))  # each (row, id) once: a new row has one source
    for key in ("tokens", "token_scale"):
        if key in out:
            put(out, _CRC[key], row_crcs(out[key][()], offsets))


def _postings_of_pairs(rows: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`postings` from (row, id) pairs, each pair once."""
    order = np.lexsort((rows, ids))
    ids, rows = ids[order], rows[order]
    distinct, first = np.unique(ids, return_index=True)
    return distinct.astype(np.int32), np.append(first, len(ids)).astype(np.int64), rows.astype(np.int32)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def h5z_fletcher32() -> int:
    import h5py

    return h5py.h5z.FILTER_FLETCHER32
