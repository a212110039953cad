"""The pooled (anchor) vectors of a snapshot's pages, held in the process or read in place.

A small store's are copied into the process (float32, 1.5 KB a page at 384 dimensions): every
query scans them all. A large store's stay in the segment files, memory-mapped
(``Segment.mapped_pooled``): the page cache holds them, not the process, and a query reads only
the rows it rescans; what every query scans is an int8 copy (a quarter of the bytes, one scale
per page), made as the snapshot is read. At a million pages that is 0.4 GB in the process
instead of 1.9 GB (float32 and int8). Each segment's vectors are read once through HDF5 as the
snapshot loads (Fletcher-32 and the unit-vector check), as token rows are checked once per
process: segments are immutable.
"""

from __future__ import annotations

import numpy as np

from smartcli.search.kernel import readonly


class PooledVectors:
    """``[n, D]`` float32 anchors of the snapshot's items: ``pooled[items]`` (rows, float32),
    ``dot(q, items)``, ``matmul(Q, items)`` and ``int8()`` (the quantized copy the first stage
    scans). Made by :meth:`held` (a float32 array in the process) or :meth:`mapped`."""

    def __init__(self, dims: int, held: np.ndarray | None = None, mapped: tuple | None = None, int8=None):
        self.dims = dims
        self._held = held
        self._mapped = mapped  # (typed list of float32 words per segment, part_of [n], starts [n])
        self._int8 = int8  # (data [n, D] int8, scale [n] float32), made when first asked in held mode
        self._n = len(held) if held is not None else len(mapped[1])

    @classmethod
    def held(cls, pooled: np.ndarray) -> PooledVectors:
        pooled = np.asarray(pooled, dtype=np.float32)
        return cls(pooled.shape[1] if pooled.ndim == 2 else 0, held=pooled)

    @classmethod
    def mapped(cls, words: list[np.ndarray], part_of: np.ndarray, starts: np.ndarray, data: np.ndarray, scale: np.ndarray, dims: int):
        """``words[s]``: segment ``s``'s file as float32 words; item ``i``'s vector is
        ``words[part_of[i]][starts[i]:starts[i] + dims]``; ``data``/``scale``: the int8 copy."""
        from numba.typed import List

        typed = List()
        for array in words:
            typed.append(readonly(array))
        part_of = np.ascontiguousarray(part_of, dtype=np.int64)
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        return cls(dims, mapped=(typed, part_of, starts), int8=(data, scale))

    @property
    def in_place(self) -> bool:
        """Read from the mapped segment files (not copied into the process)."""
        return self._mapped is not None

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes the process holds for them (the int8 copy included once made)."""
        held = 0 if self._held is None else self._held.nbytes
        int8 = 0 if self._int8 is None else self._int8[0].nbytes + self._int8[1].nbytes
        mapped = 0 if self._mapped is None else self._mapped[1].nbytes + self._mapped[2].nbytes
        return held + int8 + mapped

    def __getitem__(self, index) -> np.ndarray:
        """The float32 rows of ``index`` (an item index, or an array of them)."""
        if self._held is not None:
            return self._held[index]
        items = np.asarray(index, dtype=np.int64)
        one = items.ndim == 0
        items = np.atleast_1d(items)
        items = np.where(items < 0, items + self._n, items)
        if len(items) and (items.min() < 0 or items.max() >= self._n):
            raise IndexError("item index out of range")
        out = np.empty((len(items), self.dims), np.float32)
        words, part_of, starts = self._mapped
        _kernels().pooled_rows(words, part_of, starts, items, out)
        return out[0] if one else out

    def dot(self, q: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """[len(items)] float32: ``q`` against the items' vectors (every item when None)."""
        q = np.ascontiguousarray(q, dtype=np.float32)
        if self._held is not None:
            return self._held @ q if items is None else self._held[items] @ q
        items = np.arange(self._n) if items is None else np.ascontiguousarray(items, dtype=np.int64)
        out = np.empty(len(items), np.float32)
        words, part_of, starts = self._mapped
        _kernels().pooled_dot(q, words, part_of, starts, items, out)
        return out

    def matmul(self, queries: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """[m, len(items)]: each row of ``queries`` against the items' vectors."""
        queries = np.asarray(queries, dtype=np.float32)
        if self._held is not None:
            pooled = self._held if items is None else self._held[items]
            return queries @ pooled.T
        if items is not None and len(items) * 4 <= self._n:  # few rows: gather them once
            return queries @ self[items].T
        if not len(queries):
            return np.zeros((0, self._n if items is None else len(items)), np.float32)
        return np.stack([self.dot(q, items) for q in queries])

    def int8(self) -> tuple[np.ndarray, np.ndarray]:
        """(data [n, D] int8, scale [n] float32): each vector over its largest coordinate, in 127 steps."""
        if self._int8 is None:
            self._int8 = quantize(self._held)
        return self._int8

    def subset(self, keep: np.ndarray) -> PooledVectors:
        """The items where ``keep`` (a boolean mask) holds, in order."""
        int8 = None if self._int8 is None else (self._int8[0][keep], self._int8[1][keep])
        if self._held is not None:
            return PooledVectors(self.dims, held=self._held[keep], int8=int8)
        words, part_of, starts = self._mapped
        return PooledVectors(self.dims, mapped=(words, part_of[keep], starts[keep]), int8=int8)


def quantize(pooled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 [n, D], scale [n] float32) of float32 rows: ``data * scale`` approximates them."""
    pooled = np.asarray(pooled, dtype=np.float32)
    scale = np.abs(pooled).max(axis=1) / np.float32(127.0) if len(pooled) else np.zeros(0, np.float32)
    scale[scale == 0] = 1.0
    data = np.round(pooled / scale[:, None]).astype(np.int8)
    return data, scale.astype(np.float32)


def _kernels():
    from smartcli.search.kernel import compiled_kernels

    return compiled_kernels()
