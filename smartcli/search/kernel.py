"""MaxSim on stored token states without torch, and on 1-bit states without decoding them.

``page_maxima(q_tokens, stored, starts, stops)`` returns, for every page (the token rows
``starts[p]:stops[p]`` of ``stored``) and every query token, the best dot product and the page
token that gave it (the MaxSim max and arg-max); the caller averages the maxima over each
query's tokens.

1-bit stores are scored by asymmetric byte lookup: the query stays in float, and for each query
token a ``[D/8, 256]`` table holds, for every byte position and every byte value, the partial
sum of ``±q / (sqrt(D) * BINARY_SHRINK)`` over that byte's 8 bits. A document token's score is
then D/8 lookups and adds straight from its packed bytes, with the per-page running max and
arg-max in the same loop: no [T, D] float matrix is ever made. The compiled kernel is numba's
(``cache=True``: compiled once per machine, then loaded from the cache); it is used where it
pays for its import (about 0.4 s: long-lived processes, many queries, large scans). One short
query in a fresh process, and int8 / float16 stores, decode and multiply in numpy instead
(``benchmarks/maxsim_kernel.py`` measures both against the machine's float32 GEMM).
"""

from __future__ import annotations

import math

import numpy as np

from smartcli.store.formats import BINARY_SHRINK

# 256 byte values -> their 8 bits as ±1, most significant bit first (like np.packbits).
_BYTE_SIGNS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32) * 2.0 - 1.0
# Tokens decoded and multiplied at once by the numpy path (bounds its float32 working set).
_NUMPY_BLOCK = 16384

_kernel = None


def binary_tables(q_tokens: np.ndarray, dims: int, shrink: float = BINARY_SHRINK) -> np.ndarray:
    """[ceil(D/8), 256, Q] float32: entry (j, v, q) is query token q's dot product with byte
    position j holding byte value v, in the scale of the decoded 1-bit states."""
    q = np.asarray(q_tokens, dtype=np.float32)
    nbytes = (dims + 7) // 8
    padded = np.zeros((q.shape[0], nbytes * 8), np.float32)
    padded[:, :dims] = q[:, :dims]  # packbits pads with zero bits; a zero weight ignores them
    tables = padded.reshape(q.shape[0], nbytes, 8) @ _BYTE_SIGNS.T  # [Q, J, 256]
    tables = tables.transpose(1, 2, 0) / np.float32(math.sqrt(dims) * shrink)
    return np.ascontiguousarray(tables, dtype=np.float32)


def compiled_kernel():
    """The numba kernel (compiled or loaded from numba's cache on first call); None without numba."""
    global _kernel
    if _kernel is None:
        try:
            from smartcli.search import _binary_kernel
        except ImportError:
            _kernel = False
        else:
            _kernel = _binary_kernel.maxsim_binary
    return _kernel or None


def page_maxima(q_tokens: np.ndarray, stored, starts: np.ndarray, stops: np.ndarray, compiled: bool = True):
    """Per page and query token: (max [n, Q] float32, arg-max [n, Q] int64 relative to the page's first token).

    ``stored``: a StoredTokens (packed bits, int8 + scale, or float16) holding every page's rows;
    ``compiled``: use the compiled 1-bit kernel when it is available."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    stops = np.ascontiguousarray(stops, dtype=np.int64)
    q_tokens = np.ascontiguousarray(q_tokens, dtype=np.float32)
    data = stored.data
    if data.dtype == np.uint8:
        kernel = compiled_kernel() if compiled else None
        if kernel is not None:
            best = np.empty((len(starts), q_tokens.shape[0]), np.float32)
            arg = np.empty((len(starts), q_tokens.shape[0]), np.int64)
            kernel(binary_tables(q_tokens, stored.dims), np.ascontiguousarray(data), starts, stops, best, arg)
            return best, arg
    return _numpy_maxima(q_tokens, stored, starts, stops)


def _decode(stored, start: int, stop: int) -> np.ndarray:
    data = stored.data[start:stop]
    if data.dtype == np.uint8:
        # A byte -> 8 floats lookup is several times cheaper than unpackbits + arithmetic.
        signs = _BYTE_SIGNS / np.float32(math.sqrt(stored.dims) * BINARY_SHRINK)
        return np.take(signs, data, axis=0).reshape(len(data), -1)[:, : stored.dims]
    if data.dtype == np.int8:
        return data.astype(np.float32) * stored.scale[start:stop, None]
    return data.astype(np.float32)


def _numpy_maxima(q_tokens, stored, starts, stops):
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
        pieces = [(int(starts[p]), int(stops[p])) for p in range(page, last)]
        contiguous = all(pieces[i][1] == pieces[i + 1][0] for i in range(len(pieces) - 1))
        if contiguous:
            tokens = _decode(stored, pieces[0][0], pieces[-1][1])
        else:
            tokens = np.concatenate([_decode(stored, a, b) for a, b in pieces])
        sim = tokens @ q_tokens.T  # [t, Q]
        lengths = np.array([b - a for a, b in pieces])
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
