"""Looking at indexed pages (``smart serve``): a page by its catalog id, its picture, and where a
hit's token matches lie on it."""

from __future__ import annotations

import gzip
import os
from typing import BinaryIO

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError
from smartcli.search.session import QuerySession
from smartcli.store.catalog import reads


class PageView:
    """Pages of the snapshot a query session reads, for a viewer that shows them."""

    def __init__(self, session: QuerySession):
        self.session = session
        self._by_id: tuple[list, dict] | None = None  # (the snapshot's items, item id -> item)
        self._word_cache: dict = {}  # (item id, path, page) -> word boxes

    def item_by_id(self, item_id: int):
        """The encoded page with catalog id ``item_id`` in the current snapshot, if its file can be
        shown: still as it was indexed, and inside the indexed paths once symbolic links are
        resolved. Anything else raises a NOT_FOUND :class:`~smartcli.errors.SmartError`."""
        searcher = self.session.current()
        if self._by_id is None or self._by_id[0] is not searcher.items:
            self._by_id = (searcher.items, {item.item_id: item for item in searcher.items})
        item = self._by_id[1].get(item_id)
        if item is None:
            raise SmartError(ErrorKind.NOT_FOUND, f"no indexed page has id {item_id}")
        origin = reads.item_origin(searcher.store, item_id)
        if origin is None or not _shown_file(item.path, origin, searcher.store.roots):
            raise SmartError(ErrorKind.NOT_FOUND, f"page {item.page} of {item.path} changed or moved since it was indexed", path=item.path)
        return item

    def picture(self, item, width: int) -> tuple[bytes, int, int]:
        """The page ``item`` drawn ``width`` pixels wide: PNG bytes, width, height."""
        from smartcli.ingest.files import UnreadableFile
        from smartcli.ingest.pageview import render_png

        try:
            return render_png(item.path, item.kind, item.page, width)
        except (UnreadableFile, OSError) as exc:
            raise SmartError(ErrorKind.NOT_FOUND, f"{item.path}: {exc}", path=item.path) from None

    def open_file(self, item) -> tuple[BinaryIO, int | None]:
        """The file of ``item`` (from :meth:`item_by_id`) open for reading, and its length: the
        document itself, decompressed for a gzipped one (length None). The rules of
        :meth:`item_by_id` are checked again on the open file, so that a file swapped between
        the check and the open is never read. Raises a NOT_FOUND :class:`~smartcli.errors.SmartError`."""
        from smartcli.ingest.files import GZIP_SUFFIX, UnreadableFile, document_suffix, open_regular

        searcher = self.session.current()
        origin = reads.item_origin(searcher.store, item.item_id)
        gone = SmartError(ErrorKind.NOT_FOUND, f"{item.path} changed or moved since it was indexed", path=item.path)
        try:
            fd = open_regular(item.path)
        except (UnreadableFile, OSError):
            raise gone from None
        try:
            real = _real_path_of_open_file(fd, item.path)
            if origin is None or not _unchanged(os.fstat(fd), origin) or real is None or not _inside(real, searcher.store.roots):
                raise gone
            f = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        if (document_suffix(item.path) or "").endswith(GZIP_SUFFIX):
            return _Decompressed(f), None
        return f, origin["size"]

    def marks(self, item, matches) -> dict:
        """Where each query token's match lies on the page, as fractions of its width and height
        (see :meth:`smartcli.Index.marks`)."""
        from smartcli.ingest.files import UnreadableFile

        searcher = self.session.current()
        model = searcher.store.model
        try:
            if model is not None and model.consumes_pixels:
                return {"heat": _heat(model, item, matches)}
            words = self._page_words(searcher, item)
        except (UnreadableFile, OSError) as exc:
            raise SmartError(ErrorKind.NOT_FOUND, f"{item.path}: {exc}", path=item.path) from None
        return {"words": _word_marks(words, matches)}

    def _page_words(self, searcher, item):
        """Word boxes of a page, kept per item for this process (OCR'd pages are read again by OCR)."""
        from smartcli.ingest.pageview import page_words

        cache = self._word_cache
        key = (item.item_id, item.path, item.page)
        if key not in cache:
            origin = reads.item_origin(searcher.store, item.item_id) or {}
            if len(cache) >= defaults.VIEW_WORD_CACHE_PAGES:
                cache.pop(next(iter(cache)))
            cache[key] = page_words(item.path, item.kind, item.page, item.text, ocr_language=origin.get("ocr"))
        return cache[key]


def _heat(model, item, matches) -> dict | None:
    """The patch grid over the picture, each cell's best similarity to a query token that matched
    it (None for cells nothing matched), and per query token the patch it matched."""
    from smartcli.ingest.pageview import patch_grid, picture_size

    width, height = picture_size(item.path, item.kind, item.page)
    grid = patch_grid(model.family, item.n_tokens, width, height)
    if grid is None:
        return None
    cells: list = [None] * (grid["rows"] * grid["cols"])
    for m in matches:
        if 0 <= m.doc_token < len(cells) and (cells[m.doc_token] is None or m.similarity > cells[m.doc_token]):
            cells[m.doc_token] = round(m.similarity, 6)
    tokens = [
        {"token": i, "query_token": m.query_token, "patch": m.doc_token, "similarity": round(m.similarity, 6)}
        for i, m in enumerate(matches)
    ]
    return dict(grid, cells=cells, tokens=tokens)


def _word_marks(words, matches) -> list[dict]:
    """The boxes of the page words each matched span falls on."""
    from smartcli.ingest.pageview import boxes_of_span

    marked = []
    for i, m in enumerate(matches):
        boxes = [] if m.span is None else boxes_of_span(words, m.span)
        marked.append(
            {
                "token": i,
                "query_token": m.query_token,
                "word": m.word,
                "similarity": round(m.similarity, 6),
                "boxes": [list(b) for b in boxes],
            }
        )
    return marked


class _Decompressed(gzip.GzipFile):
    """A gzipped file's content; closing it closes the file too."""

    def __init__(self, source: BinaryIO):
        super().__init__(fileobj=source, mode="rb")
        self._source = source

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._source.close()


def _shown_file(path: str, origin: dict, roots: list[str]) -> bool:
    """Whether the viewer may read ``path``: unchanged since indexing (same size and mtime, so not
    swapped for a link to another file) and, links resolved, under an indexed path."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return _unchanged(st, origin) and _inside(os.path.realpath(path), roots)


def _unchanged(st: os.stat_result, origin: dict) -> bool:
    return (st.st_size, st.st_mtime_ns) == (origin["size"], origin["mtime_ns"])


def _inside(real: str, roots: list[str]) -> bool:
    for root in roots:
        top = os.path.realpath(root)
        if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
            return True
    return False


def _real_path_of_open_file(fd: int, path: str) -> str | None:
    """The real path of the file open as ``fd``: through /proc where there is one, else ``path``
    resolved, if it still names that very file (None otherwise)."""
    by_descriptor = f"/proc/self/fd/{fd}"
    if os.path.exists(by_descriptor):
        return os.readlink(by_descriptor)
    real = os.path.realpath(path)
    try:
        st, opened = os.stat(real), os.fstat(fd)
    except OSError:
        return None
    return real if (st.st_dev, st.st_ino) == (opened.st_dev, opened.st_ino) else None
