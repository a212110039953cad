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
    for p in range(starts.shape[0]):
        page_best, page_arg = best[p], arg[p]
        for q in range(nq):
            page_best[q] = -np.float32(3.0e38)
            page_arg[q] = 0
        for t in range(starts[p], stops[p]):
            row = packed[t]
            acc = tables[0, row[0]].copy()
            for j in range(1, nbytes):
                entry = tables[j, row[j]]
                for q in range(nq):
                    acc[q] += entry[q]
            for q in range(nq):
                if acc[q] > page_best[q]:
                    page_best[q] = acc[q]
                    page_arg[q] = t - starts[p]
    return 0
