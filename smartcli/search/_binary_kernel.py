"""The compiled 1-bit MaxSim kernel (numba; see kernel.py). Importing this module imports numba."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=True)
def maxsim_binary(tables, packed, starts, stops, best, arg):  # pragma: no cover - compiled
    """tables [J, 256, Q] float32, packed [T, J] uint8; page p is rows starts[p]:stops[p].
    Writes best[p, q] = max over the page's tokens t of sum_j tables[j, packed[t, j], q] and
    arg[p, q] = the token (relative to the page's first) reaching it. The innermost loop runs
    over the query tokens, contiguous in the table, so it vectorizes."""
    nbytes, nq = tables.shape[0], tables.shape[2]
    acc = np.empty(nq, np.float32)
    for p in range(starts.shape[0]):
        for q in range(nq):
            best[p, q] = -np.float32(3.0e38)
            arg[p, q] = 0
        for t in range(starts[p], stops[p]):
            for q in range(nq):
                acc[q] = 0
            for j in range(nbytes):
                entry = tables[j, packed[t, j]]
                for q in range(nq):
                    acc[q] += entry[q]
            for q in range(nq):
                if acc[q] > best[p, q]:
                    best[p, q] = acc[q]
                    arg[p, q] = t - starts[p]
    return 0
