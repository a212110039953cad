"""The compiled MaxSim kernels (numba; see kernel.py). Importing this module imports numba.

Each kernel scores many pages in one call: page ``p`` is the token rows
``starts[p]:stops[p]`` of ``parts[part_of[p]]`` (one stored array per segment, read in place
from the memory-mapped file), and it writes ``best[p, q]``, the page's best dot product with
query token ``q``, and ``arg[p, q]``, the page token reaching it (relative to the page's first).
No Python runs between pages. The query side is padded to a multiple of 8 columns by the
caller, so that the innermost loop (over query tokens, contiguous) vectorizes whole.
"""

from __future__ import annotations

import numba
import numpy as np

_FLAGS = dict(cache=True, nogil=True, boundscheck=False, fastmath=True)


@numba.njit(inline="always", **_FLAGS)  # inlined: a call per token row cost 10% of the kernel
def row_dots(tables, row, acc):  # pragma: no cover - compiled
    """acc[q] = the dot product of query token ``q`` with one 1-bit token row (packed signs), by
    byte lookup in ``tables`` [J, 256, Q]. Eight lookups are summed before they meet the
    accumulator: one long chain of dependent adds would leave the adders waiting."""
    nbytes, nq = tables.shape[0], tables.shape[2]
    for q in range(nq):
        acc[q] = 0.0
    j = 0
    while j + 8 <= nbytes:
        e0, e1, e2, e3 = tables[j, row[j]], tables[j + 1, row[j + 1]], tables[j + 2, row[j + 2]], tables[j + 3, row[j + 3]]
        e4, e5, e6, e7 = tables[j + 4, row[j + 4]], tables[j + 5, row[j + 5]], tables[j + 6, row[j + 6]], tables[j + 7, row[j + 7]]
        for q in range(nq):
            acc[q] += ((e0[q] + e1[q]) + (e2[q] + e3[q])) + ((e4[q] + e5[q]) + (e6[q] + e7[q]))
        j += 8
    while j < nbytes:
        entry = tables[j, row[j]]
        for q in range(nq):
            acc[q] += entry[q]
        j += 1
    return 0


@numba.njit(**_FLAGS)
def maxsim_binary(tables, parts, part_of, starts, stops, best, arg):  # pragma: no cover - compiled
    """1-bit states by byte lookup: tables [J, 256, Q] float32 hold, per byte position and byte
    value, the partial dot product of each query token; parts[i] is [T, J] uint8 (packed signs)."""
    nq = tables.shape[2]
    acc = np.empty(nq, np.float32)
    for p in range(starts.shape[0]):
        packed = parts[part_of[p]]
        for q in range(nq):
            best[p, q] = -np.float32(3.0e38)
            arg[p, q] = 0
        for t in range(starts[p], stops[p]):
            row_dots(tables, packed[t], acc)
            for q in range(nq):
                if acc[q] > best[p, q]:
                    best[p, q] = acc[q]
                    arg[p, q] = t - starts[p]
    return 0


@numba.njit(**_FLAGS)
def maxsim_int8(q_t, parts, scales, part_of, starts, stops, best, arg):  # pragma: no cover - compiled
    """int8 states with a per-token scale: q_t [D, Q] float32 (the query tokens, transposed);
    parts[i] [T, D] int8, scales[i] [T] float32."""
    dims, nq = q_t.shape[0], q_t.shape[1]
    acc = np.empty(nq, np.float32)
    for p in range(starts.shape[0]):
        data, scale = parts[part_of[p]], scales[part_of[p]]
        for q in range(nq):
            best[p, q] = -np.float32(3.0e38)
            arg[p, q] = 0
        for t in range(starts[p], stops[p]):
            for q in range(nq):
                acc[q] = 0.0
            for d in range(dims):
                x = np.float32(data[t, d])
                row = q_t[d]
                for q in range(nq):
                    acc[q] += x * row[q]
            s = scale[t]
            for q in range(nq):
                value = acc[q] * s
                if value > best[p, q]:
                    best[p, q] = value
                    arg[p, q] = t - starts[p]
    return 0


@numba.njit(**_FLAGS)
def maxsim_float16(q_t, parts, half_to_float, part_of, starts, stops, best, arg):  # pragma: no cover - compiled
    """float16 states, read as their uint16 bit patterns and widened by a 65,536-entry table
    (exact): q_t [D, Q] float32, parts[i] [T, D] uint16."""
    dims, nq = q_t.shape[0], q_t.shape[1]
    acc = np.empty(nq, np.float32)
    for p in range(starts.shape[0]):
        data = parts[part_of[p]]
        for q in range(nq):
            best[p, q] = -np.float32(3.0e38)
            arg[p, q] = 0
        for t in range(starts[p], stops[p]):
            for q in range(nq):
                acc[q] = 0.0
            for d in range(dims):
                x = half_to_float[data[t, d]]
                row = q_t[d]
                for q in range(nq):
                    acc[q] += x * row[q]
            for q in range(nq):
                if acc[q] > best[p, q]:
                    best[p, q] = acc[q]
                    arg[p, q] = t - starts[p]
    return 0


@numba.njit(**_FLAGS)
def _popcount(x):  # pragma: no cover - compiled
    """Set bits of a uint64 (the SWAR count, which LLVM turns into one popcnt instruction)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(**_FLAGS)
def hamming_minima(signs, parts, part_of, starts, stops, least):  # pragma: no cover - compiled
    """Per page and query token, the least Hamming distance between the query token's signs and
    the page's tokens' stored bits: signs [W, Q] uint64 (word w of every query token, packed like
    the stored rows: W = ceil(packed bytes / 8), the last word zero-padded), least [n, Q] int64.
    The innermost loop runs over the query tokens, so that it vectorizes."""
    width, nq = signs.shape[0], signs.shape[1]
    distance = np.zeros(nq, np.int64)
    for p in range(starts.shape[0]):
        packed = parts[part_of[p]]
        nbytes = packed.shape[1]
        for q in range(nq):
            least[p, q] = 1 << 62
        for t in range(starts[p], stops[p]):
            row = packed[t]
            for q in range(nq):
                distance[q] = 0
            for w in range(width):
                word = np.uint64(0)
                for i in range(min(8, nbytes - 8 * w)):
                    word |= np.uint64(row[8 * w + i]) << np.uint64(8 * i)
                query = signs[w]
                for q in range(nq):
                    distance[q] += np.int64(_popcount(word ^ query[q]))
            for q in range(nq):
                if distance[q] < least[p, q]:
                    least[p, q] = distance[q]
    return 0


@numba.njit(**_FLAGS)
def hamming_minima_words(signs, parts, part_of, starts, stops, least):  # pragma: no cover - compiled
    """:func:`hamming_minima` for rows of whole 64-bit words: parts[i] is [T, W] uint64 (the
    packed bytes read as little-endian words, in place)."""
    width, nq = signs.shape[0], signs.shape[1]
    distance = np.zeros(nq, np.int64)
    for p in range(starts.shape[0]):
        packed = parts[part_of[p]]
        for q in range(nq):
            least[p, q] = 1 << 62
        for t in range(starts[p], stops[p]):
            for q in range(nq):
                distance[q] = 0
            for w in range(width):
                word = packed[t, w]
                query = signs[w]
                for q in range(nq):
                    distance[q] += np.int64(_popcount(word ^ query[q]))
            for q in range(nq):
                if distance[q] < least[p, q]:
                    least[p, q] = distance[q]
    return 0


@numba.njit(**_FLAGS)
def anchor_int8(q, data, scale, out):  # pragma: no cover - compiled
    """out[i] = scale[i] * (q . data[i]): anchor cosines from int8 pooled vectors [N, D]."""
    dims = q.shape[0]
    for i in range(data.shape[0]):
        acc = np.float32(0.0)
        row = data[i]
        for d in range(dims):
            acc += q[d] * np.float32(row[d])
        out[i] = acc * scale[i]
    return 0


@numba.njit(**_FLAGS)
def lexical_scores(ids, weights, vocab_ids, vocab_starts, vocab_rows, item_of_row, out):  # pragma: no cover - compiled
    """out[item] += weights[k] for every page (item) whose segment postings hold ids[k]: per
    segment s, ``vocab_rows[s][vocab_starts[s][u]:vocab_starts[s][u + 1]]`` are the rows holding
    ``vocab_ids[s][u]``, and ``item_of_row[s]`` their items (-1: a dead row). A row out of range
    (a damaged posting) is ignored."""
    for s in range(len(vocab_ids)):
        known, starts, rows, items = vocab_ids[s], vocab_starts[s], vocab_rows[s], item_of_row[s]
        for k in range(ids.shape[0]):
            u = np.searchsorted(known, ids[k])
            if u >= known.shape[0] or known[u] != ids[k]:
                continue
            weight = weights[k]
            for j in range(starts[u], starts[u + 1]):
                row = rows[j]
                if 0 <= row < items.shape[0]:
                    item = items[row]
                    if item >= 0:
                        out[item] += weight
    return 0


@numba.njit(**_FLAGS)
def pooled_dot(q, parts, part_of, starts, items, out):  # pragma: no cover - compiled
    """out[i] = q . the pooled vector of item ``items[i]``, read in place: the float32 words
    ``parts[part_of[item]][starts[item]:starts[item] + D]`` (a segment file mapped)."""
    dims = q.shape[0]
    for i in range(items.shape[0]):
        item = items[i]
        words = parts[part_of[item]]
        at = starts[item]
        acc = np.float32(0.0)
        for d in range(dims):
            acc += q[d] * words[at + d]
        out[i] = acc
    return 0


@numba.njit(**_FLAGS)
def pooled_rows(parts, part_of, starts, items, out):  # pragma: no cover - compiled
    """out[i] = the pooled vector of item ``items[i]`` (as :func:`pooled_dot` reads it)."""
    dims = out.shape[1]
    for i in range(items.shape[0]):
        item = items[i]
        words = parts[part_of[item]]
        at = starts[item]
        for d in range(dims):
            out[i, d] = words[at + d]
    return 0


@numba.njit(**_FLAGS)
def similarities_binary(tables, parts, part_of, rows, out):  # pragma: no cover - compiled
    """Each query token's similarity with the 1-bit token row ``rows[i]`` of ``parts[part_of[i]]``:
    out [len(rows), Q], by the byte lookups of :func:`row_dots` (the shown hits' snippets
    need every similarity, not the max)."""
    for i in range(rows.shape[0]):
        row_dots(tables, parts[part_of[i]][rows[i]], out[i])
    return 0


@numba.njit(cache=True, nogil=True, boundscheck=False)  # no fastmath: -inf marks a word not found
def window_maxima(per_word, starts, ends, first, last, begins, stops, maxima, at, held):  # pragma: no cover - compiled
    """For each candidate passage ``[begins[c], stops[c])`` of the page whose tokens are
    ``first[c]:last[c]``: per query word ``w``, its best similarity at a token lying inside
    (``maxima[c, w]``, left as given, -inf, where none does), the start of the first token
    reaching it (``at[c, w]``), and whether any token lies inside (``held[c]``). per_word
    [W, T] float32; starts, ends [T]: the tokens' character spans in their page."""
    nw = per_word.shape[0]
    for c in range(begins.shape[0]):
        for t in range(first[c], last[c]):
            if starts[t] >= begins[c] and ends[t] <= stops[c]:
                held[c] = True
                for w in range(nw):
                    if per_word[w, t] > maxima[c, w]:
                        maxima[c, w] = per_word[w, t]
                        at[c, w] = starts[t]
    return 0
