"""The pages a search sees: the catalog's committed state as columns, and its items made on demand.

A million-page store cannot be held as a million ``LiveItem`` objects with their texts (8 KiB a
page): the searcher holds :class:`~smartcli.store.catalog.reads.LiveColumns` (about 40 bytes a
page) and makes the ``LiveItem`` of a page when it is asked for, reading its text from the
catalog then (:class:`Items`). A ranked query asks for its k hits only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence

import numpy as np

from smartcli.store.catalog import LiveItem
from smartcli.store.catalog.reads import LiveColumns, item_texts

# Texts a warm process keeps (the hits it showed last), so that a repeated query reads none.
_TEXT_CACHE = 4096


class Items(Sequence):
    """The snapshot's items, in segment and row order, as ``LiveItem``s made when asked for
    (``items[i]``, iteration). Texts are read from the catalog then, in one query per batch;
    ``on_text_problem(item)`` is called for a page whose stored text is not what was committed."""

    def __init__(self, store, columns: LiveColumns, on_text_problem=None):
        self.store = store
        self.columns = columns
        self._texts: OrderedDict[int, tuple[str, str | None]] = OrderedDict()
        self._on_text_problem = on_text_problem

    def __len__(self) -> int:
        return len(self.columns.item_ids)

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, tuple, Items)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.many([index])[0]

    def __iter__(self) -> Iterator[LiveItem]:
        step = 512
        for start in range(0, len(self), step):
            yield from self.many(range(start, min(start + step, len(self))))

    def many(self, indexes) -> list[LiveItem]:
        """The items at ``indexes`` (with their texts, read in one go)."""
        indexes = [int(i) for i in indexes]
        if any(i < 0 or i >= len(self) for i in indexes):
            raise IndexError("item index out of range")
        ids = self.columns.item_ids
        texts = self._read_texts([int(ids[i]) for i in indexes])
        return [self._item(i, *texts.get(int(ids[i]), ("", None))) for i in indexes]

    def _read_texts(self, ids: list[int]) -> dict[int, tuple[str, str | None]]:
        missing = [i for i in ids if i not in self._texts]
        if missing:
            found = item_texts(self.store, missing)
            for item_id in missing:
                self._texts[item_id] = found.get(item_id, ("", None))  # gone since the snapshot: no text
            while len(self._texts) > max(_TEXT_CACHE, len(ids)):
                self._texts.popitem(last=False)
        return {i: self._texts[i] for i in ids}

    def _item(self, index: int, text: str, problem: str | None) -> LiveItem:
        c = self.columns
        f = int(c.files[index])
        item = LiveItem(
            int(c.item_ids[index]),
            c.paths[f],
            int(c.pages[index]),
            c.kinds[f],
            c.segment_names[int(c.segments[index])],
            int(c.rows[index]),
            int(c.n_tokens[index]),
            text,
            c.role_names[int(c.roles[index])],
            problem,
        )
        if problem and self._on_text_problem is not None:
            self._on_text_problem(item)
        return item

    # -- columns, for the search path (no item made) ------------------------------------------

    def path(self, index: int) -> str:
        return self.columns.paths[int(self.columns.files[index])]

    def segment(self, index: int) -> str:
        return self.columns.segment_names[int(self.columns.segments[index])]

    def copy_key(self, index: int) -> tuple:
        """Copies of a file share its rows: one page, whichever path reached it."""
        c = self.columns
        return (int(c.segments[index]), int(c.rows[index]), int(c.pages[index]))


def subset(columns: LiveColumns, keep: np.ndarray) -> LiveColumns:
    """``columns`` restricted to the rows where ``keep`` is true (the lists stay whole)."""
    return LiveColumns(
        item_ids=columns.item_ids[keep],
        files=columns.files[keep],
        pages=columns.pages[keep],
        segments=columns.segments[keep],
        rows=columns.rows[keep],
        n_tokens=columns.n_tokens[keep],
        roles=columns.roles[keep],
        paths=columns.paths,
        kinds=columns.kinds,
        segment_names=columns.segment_names,
        role_names=columns.role_names,
    )
