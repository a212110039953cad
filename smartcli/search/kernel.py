"""MaxSim on stored token states without torch, and on 1-bit states without decoding them.

``page_maxima(q_tokens, stored, starts, stops)`` returns, for every page (the token rows
``starts[p]:stops[p]`` of ``stored``, or of ``stored[part_of[p]]`` when ``stored`` is a list of
arrays, one per segment) and every query token, the best dot product and the page token that
gave it (the MaxSim max and arg-max); the caller averages the maxima over each query's tokens.

1-bit stores are scored by asymmetric byte lookup: the query stays in float, and for each query
token a ``[D/8, 256]`` table holds, for every byte position and every byte value, the partial
sum of ``±q / (sqrt(D) * BINARY_SHRINK)`` over that byte's 8 bits. A document token's score is
then D/8 lookups and adds straight from its packed bytes, with the per-page running max and
arg-max in the same loop: no [T, D] float matrix is ever made. int8 and float16 states are
widened in registers and multiplied. The tables are built once per query (:class:`QueryTables`)
and every shortlisted page of every segment is scored in one call of the compiled kernel
(numba's, ``cache=True``: compiled once per machine, then loaded from the cache), reading the
segments' memory-mapped token states in place. It is used where it pays for its import (about
0.4 s: long-lived processes, many queries, large scans); one short query in a fresh process
decodes and multiplies in numpy instead (``benchmarks/maxsim_kernel.py`` measures both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from smartcli.store.formats import BINARY_SHRINK

# 256 byte values -> their 8 bits as ±1, most significant bit first (like np.packbits).
_BYTE_SIGNS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32) * 2.0 - 1.0
# Tokens decoded and multiplied at once by the numpy path (bounds its float32 working set).
_NUMPY_BLOCK = 16384
# Query columns are padded to a multiple of this, so that the kernel's inner loop vectorizes whole.
_LANES = 8

_kernels = None
_HALF_TO_FLOAT = None


def binary_tables(q_tokens: np.ndarray, dims: int, shrink: float = BINARY_SHRINK) -> np.ndarray:
    """[ceil(D/8), 256, Q] float32: entry (j, v, q) is query token q's dot product with byte
    position j holding byte value v, in the scale of the decoded 1-bit states."""
    q = np.asarray(q_tokens, dtype=np.float32)
    nbytes = (dims + 7) // 8
    padded = np.zeros((nbytes * 8, q.shape[0]), np.float32)
    padded[:dims] = q[:, :dims].T  # packbits pads with zero bits; a zero weight ignores them
    # Made in the kernels' layout at once (48 products [256, 8] @ [8, Q]): transposing a
    # [Q, J, 256] product afterwards cost 0.4 ms a query, seven times the products themselves.
    tables = _BYTE_SIGNS @ padded.reshape(nbytes, 8, q.shape[0])  # [J, 256, Q]
    tables /= np.float32(math.sqrt(dims) * shrink)
    return tables


def compiled_kernels():
    """The numba kernels module (compiled or loaded from numba's cache on first call); None without numba."""
    global _kernels
    if _kernels is None:
        try:
            from smartcli.search import _binary_kernel
        except ImportError:
            _kernels = False
        else:
            _kernels = _binary_kernel
    return _kernels or None


def loaded_kernels():
    """The numba kernels module when this process has loaded it already (None otherwise): for work
    too small to pay for numba's import by itself, such as explaining the shown hits."""
    return _kernels or None


def compiled_kernel():
    """The compiled 1-bit kernel (None without numba)."""
    kernels = compiled_kernels()
    return None if kernels is None else kernels.maxsim_binary


class QueryTables:
    """What the compiled kernels need of a query's tokens, built once per query and token
    format: the byte tables of 1-bit stores, the transposed query of int8 and float16 ones,
    both padded to a multiple of 8 query columns."""

    def __init__(self, q_tokens: np.ndarray, kind: str, dims: int):
        q = np.ascontiguousarray(q_tokens, dtype=np.float32)
        self.columns = q.shape[0]
        padded = np.zeros((-(-max(q.shape[0], 1) // _LANES) * _LANES, q.shape[1]), np.float32)
        padded[: q.shape[0]] = q
        self.kind = kind
        if kind == "binary":
            self.values = binary_tables(padded, dims)
        else:
            self.values = np.ascontiguousarray(padded.T)


def token_kind(dtype: np.dtype) -> str:
    """``binary``, ``int8`` or ``float16``: the stored format an array of token states holds."""
    if dtype == np.uint8:
        return "binary"
    if dtype == np.int8:
        return "int8"
    return "float16"


class KernelParts:
    """Stored token states of several segments as the compiled kernels take them: numba typed
    lists of read-only arrays (float16 as its bit patterns) and, for int8, of the scales. A
    segment with no pages in the snapshot is an empty array."""

    def __init__(self, parts: Sequence):
        from numba.typed import List

        real = next(p for p in parts if p is not None)
        self.kind = token_kind(real.data.dtype)
        self.dims = real.dims
        self.arrays, self.scales = List(), List() if self.kind == "int8" else None
        # 1-bit rows of whole 64-bit words are also read as words, in place, by the Hamming pass.
        self.words = List() if self.kind == "binary" and real.data.shape[1] % 8 == 0 else None
        for part in parts:
            data = np.ascontiguousarray(real.data[:0] if part is None else part.data)
            self.arrays.append(readonly(data.view(np.uint16) if self.kind == "float16" else data))
            if self.scales is not None:
                scale = real.scale[:0] if part is None else part.scale
                self.scales.append(readonly(np.ascontiguousarray(scale, dtype=np.float32)))
            if self.words is not None:
                self.words.append(readonly(data.view("<u8")))


def typed_parts(parts: Sequence) -> KernelParts:
    """:class:`KernelParts` of ``parts`` (StoredTokens, or None for a segment left unused)."""
    return KernelParts(parts)


def page_maxima(
    q_tokens: np.ndarray,
    stored,
    starts: np.ndarray,
    stops: np.ndarray,
    compiled: bool = True,
    part_of: np.ndarray | None = None,
    typed: bool = False,
):
    """Per page and query token: (max [n, Q] float32, arg-max [n, Q] int64 relative to the page's first token).

    ``stored``: a StoredTokens (packed bits, int8 + scale, or float16) holding every page's rows,
    a sequence of them (None for one no page uses) with ``part_of`` naming each page's, or, with
    ``typed``, their :class:`KernelParts`; ``compiled``: use the compiled kernels when numba is
    there. The query's tables are built once and every page is scored in one kernel call."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    stops = np.ascontiguousarray(stops, dtype=np.int64)
    part_of = np.zeros(len(starts), np.int64) if part_of is None else np.ascontiguousarray(part_of, dtype=np.int64)
    q_tokens = np.ascontiguousarray(q_tokens, dtype=np.float32)
    kernels = compiled_kernels() if (compiled or typed) else None
    if not typed:
        parts = [stored] if hasattr(stored, "data") else list(stored)
        if kernels is None or not len(starts):
            return _numpy_maxima(q_tokens, parts, part_of, starts, stops)
        stored = KernelParts(parts)
    if not len(starts):
        return np.zeros((0, q_tokens.shape[0]), np.float32), np.zeros((0, q_tokens.shape[0]), np.int64)
    tables = QueryTables(q_tokens, stored.kind, stored.dims)
    width = tables.values.shape[-1]
    best = np.empty((len(starts), width), np.float32)
    arg = np.empty((len(starts), width), np.int64)
    if stored.kind == "binary":
        kernels.maxsim_binary(tables.values, stored.arrays, part_of, starts, stops, best, arg)
    elif stored.kind == "int8":
        kernels.maxsim_int8(tables.values, stored.arrays, stored.scales, part_of, starts, stops, best, arg)
    else:
        kernels.maxsim_float16(tables.values, stored.arrays, _half_table(), part_of, starts, stops, best, arg)
    return best[:, : tables.columns], arg[:, : tables.columns]


def token_similarities(q_tokens: np.ndarray, parts: KernelParts, part_of: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """[len(rows), Q] float32: each query token's similarity with the 1-bit token row ``rows[i]``
    of segment ``part_of[i]``, by the compiled byte lookups, the tables of the query built once."""
    q = np.ascontiguousarray(q_tokens, dtype=np.float32)
    tables = QueryTables(q, parts.kind, parts.dims)
    out = np.empty((len(rows), tables.values.shape[-1]), np.float32)
    compiled_kernels().similarities_binary(
        tables.values, parts.arrays, np.ascontiguousarray(part_of, dtype=np.int64), np.ascontiguousarray(rows, dtype=np.int64), out
    )
    return out[:, : tables.columns]


def packed_signs(q_tokens: np.ndarray, dims: int) -> np.ndarray:
    """The query tokens' signs packed like stored 1-bit states, as uint64 words [W, Q] (padded
    to a multiple of 8 query columns, the last word zero-padded), for :func:`hamming_late`."""
    q = np.asarray(q_tokens, dtype=np.float32)[:, :dims]
    nbytes = (dims + 7) // 8
    width = -(-nbytes // 8)
    columns = -(-max(q.shape[0], 1) // _LANES) * _LANES
    packed = np.zeros((columns, width * 8), np.uint8)
    packed[: q.shape[0], :nbytes] = np.packbits(q >= 0, axis=1)
    return np.ascontiguousarray(packed.view("<u8").T)


def hamming_late(q_tokens: np.ndarray, parts: KernelParts, part_of: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Each page's MaxSim with the query, estimated from the signs of its tokens (1-bit stores,
    compiled kernels): [n] float32, in the scale of :func:`page_maxima`'s means. A query token
    ``q`` is taken as ``mean|q| * sign(q)``, whose dot product with a stored token of Hamming
    distance ``h`` from it is ``mean|q| * (D - 2h)``; a page's best is at its least ``h``."""
    q = np.asarray(q_tokens, dtype=np.float32)
    least = np.empty((len(starts), -(-max(q.shape[0], 1) // _LANES) * _LANES), np.int64)
    kernels = compiled_kernels()
    kernel, arrays = (kernels.hamming_minima_words, parts.words) if parts.words is not None else (kernels.hamming_minima, parts.arrays)
    kernel(
        packed_signs(q, parts.dims),
        arrays,
        np.ascontiguousarray(part_of, dtype=np.int64),
        np.ascontiguousarray(starts, dtype=np.int64),
        np.ascontiguousarray(stops, dtype=np.int64),
        least,
    )
    scale = np.abs(q[:, : parts.dims]).mean(axis=1) / np.float32(math.sqrt(parts.dims) * BINARY_SHRINK)
    return ((parts.dims - 2 * least[:, : q.shape[0]]) * scale).mean(axis=1).astype(np.float32)


def readonly(array: np.ndarray) -> np.ndarray:
    """A read-only view: mapped files are read-only, and a typed list holds one array type."""
    if array.flags.writeable:
        array = array.view()
        array.flags.writeable = False
    return array


def _half_table() -> np.ndarray:
    """float16 bit pattern -> its float32 value, for all 65,536 patterns."""
    global _HALF_TO_FLOAT
    if _HALF_TO_FLOAT is None:
        _HALF_TO_FLOAT = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    return _HALF_TO_FLOAT


def _decode(stored, start: int, stop: int) -> np.ndarray:
    data = stored.data[start:stop]
    if data.dtype == np.uint8:
        # A byte -> 8 floats lookup is several times cheaper than unpackbits + arithmetic.
        signs = _BYTE_SIGNS / np.float32(math.sqrt(stored.dims) * BINARY_SHRINK)
        return np.take(signs, data, axis=0).reshape(len(data), -1)[:, : stored.dims]
    if data.dtype == np.int8:
        return data.astype(np.float32) * stored.scale[start:stop, None]
    return data.astype(np.float32)


def _numpy_maxima(q_tokens, parts, part_of, starts, stops):
    """Decode blocks of whole pages, multiply, and take each page's max (np.maximum.reduceat)."""
    n, nq = len(starts), q_tokens.shape[0]
    best = np.full((n, nq), -np.inf, np.float32)
    arg = np.zeros((n, nq), np.int64)
    page = 0
    while page < n:
        # Pages in one block: consecutive ones up to the block budget (always at least one).
        last = page + 1
        budget = stops[page] - starts[page]
        while last < n and budget + stops[last] - starts[last] <= _NUMPY_BLOCK:
            budget += stops[last] - starts[last]
            last += 1
        pieces = [(int(part_of[p]), int(starts[p]), int(stops[p])) for p in range(page, last)]
        contiguous = all(pieces[i][0] == pieces[i + 1][0] and pieces[i][2] == pieces[i + 1][1] for i in range(len(pieces) - 1))
        if contiguous:
            tokens = _decode(parts[pieces[0][0]], pieces[0][1], pieces[-1][2])
        else:
            tokens = np.concatenate([_decode(parts[s], a, b) for s, a, b in pieces])
        sim = tokens @ q_tokens.T  # [t, Q]
        lengths = np.array([b - a for _, a, b in pieces])
        bounds = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        nonempty = lengths > 0
        if nonempty.all():
            best[page:last] = np.maximum.reduceat(sim, bounds, axis=0)
            for i, (b, length) in enumerate(zip(bounds, lengths)):
                arg[page + i] = sim[b : b + length].argmax(axis=0)
        else:
            for i, (b, length) in enumerate(zip(bounds, lengths)):
                if length:
                    best[page + i] = sim[b : b + length].max(axis=0)
                    arg[page + i] = sim[b : b + length].argmax(axis=0)
        page = last
    return best, arg


def mean_per_query(best: np.ndarray, q_lengths) -> np.ndarray:
    """[n, Q] per-token maxima -> [m, n] MaxSim scores (each query's mean over its own tokens)."""
    out = np.empty((len(q_lengths), best.shape[0]), np.float32)
    start = 0
    for qi, length in enumerate(q_lengths):
        # A query of no tokens is refused before scoring (search/queries.py); never a NaN here.
        out[qi] = best[:, start : start + length].mean(axis=1) if length else 0.0
        start += length
    return out
