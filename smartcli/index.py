"""The front door: :class:`Index`, one object for everything `smart` does to a store, and
:class:`QdrantIndex`, the same queries over a Qdrant collection.

    from smartcli import Index
    index = Index.open("~/papers.smart", create=True)
    summary = index.update(["~/papers"])
    for hit in index.search("how do I rotate a figure", k=5):
        print(hit.path, hit.page, hit.score)

Each method opens what it needs and hands the work to the layer that does it: updating to
``ingest.pipeline``, queries to a ``search.session.QuerySession``, the other use cases to
``smartcli.usecases``. Nothing heavy is imported until it is needed: opening an index reads its
catalog, the model loads on the first query or the first page to encode.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from smartcli import defaults
from smartcli.errors import ErrorKind, OptionError, SmartError
from smartcli.ingest.events import UpdateEvents
from smartcli.ingest.pipeline import UpdateOptions
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Hit, Scope
from smartcli.search.session import QuerySession, SearchOptions
from smartcli.usecases import store_access
from smartcli.usecases.qdrant import SyncOptions
from smartcli.usecases.reports import Status, Unencoded, VerifyReport
from smartcli.usecases.tune import TuneSummary
from smartcli.usecases.watch import WatchEvents, WatchOptions, WatchSummary

__all__ = [
    "Index",
    "QdrantIndex",
    "UpdateEvents",
    "UpdateOptions",
    "SearchOptions",
    "SyncOptions",
    "Status",
    "Unencoded",
    "VerifyReport",
    "TuneSummary",
    "WatchOptions",
    "WatchEvents",
    "WatchSummary",
    "Scope",
    "Weights",
    "Hit",
]


class _Queries:
    """The query methods :class:`Index` and :class:`QdrantIndex` share: each delegates to the
    query session, so both answer a query the same way.

    Options come as a :class:`SearchOptions` (``options=``), as keywords (``k``, ``mode``,
    ``lambda_anchor``, ``lambda_late``, ``scope``, ``min_score``), or both (keywords win)."""

    _session: QuerySession

    def search(self, query: str, k: int | None = None, *, options: SearchOptions | None = None, **fields) -> list[Hit]:
        """The top ``k`` pages for a plain-language ``query`` (``smart search``)."""
        return self.search_many([query], k, options=options, **fields)[0]

    def search_many(
        self, queries: Sequence[str], k: int | None = None, *, options: SearchOptions | None = None, **fields
    ) -> list[list[Hit]]:
        """:meth:`search` for several queries at once (they share each read of the token states).

        A query longer than ``defaults.MAX_QUERY_TOKENS`` tokens is cut to them, with a
        :class:`~smartcli.errors.SmartWarning`."""
        return self._session.search_many(list(queries), SearchOptions.of(options, k, **fields))

    def search_image(self, image: str | os.PathLike, k: int | None = None, *, options: SearchOptions | None = None, **fields) -> list[Hit]:
        """Pages like the picture at ``image`` (an index built with an image model)."""
        from smartcli.ingest.files import UnreadableFile
        from smartcli.ingest.render import load_image, probe_image

        path = os.fspath(image)
        options = SearchOptions.of(options, k, **fields)

        def load(pixel_cap):
            try:
                return load_image(path, pixel_cap)
            except UnreadableFile as exc:
                raise SmartError(ErrorKind.BAD_INPUT, f"{path}: {exc}", path=path) from None

        try:
            probe_image(path)  # before the model loads: a wrong picture fails at once
        except UnreadableFile as exc:
            raise SmartError(ErrorKind.BAD_INPUT, f"{path}: {exc}", path=path) from None
        return self._session.search_image(load, options)

    def like(
        self, path: str | os.PathLike, page: int | None = None, k: int | None = None, *, options: SearchOptions | None = None, **fields
    ) -> list[Hit]:
        """More like this: pages ranked by similarity to an indexed page (its stored vectors; no
        model is loaded). The page itself is left out."""
        return self._session.like(path, page, SearchOptions.of(options, k, **fields))

    def item(self, path: str | os.PathLike, page: int | None = None):
        """The indexed page ``page`` of ``path`` (any page of a one-page file when None); raises
        a NOT_FOUND :class:`~smartcli.errors.SmartError` when it is not encoded. A relative ``path``
        that is no indexed file may name one by base name or path suffix (``graphs.pdf``,
        ``manuals/graphs.pdf``) when exactly one indexed file matches."""
        return self._session.item(path, page)

    def load(self) -> None:
        """Open the snapshot and load the model now, rather than on the first query."""
        self._session.current(with_encoder=True)

    def __len__(self) -> int:
        """Encoded pages in the current snapshot."""
        return len(self._session)

    def close(self) -> None:
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Index(_Queries):
    """A store of page vectors and the model that fills it, opened from a directory."""

    def __init__(
        self,
        path: Path,
        model: str | None = None,
        device: str = defaults.DEVICE,
        token_dtype: str = defaults.TOKEN_DTYPE,
        candidates: int | None = defaults.CANDIDATES,
        chunk_size: int | None = None,
        warm: bool = False,
        tuned: bool = True,
    ):
        self.path = path
        self.tuned = tuned
        self._model_spec = model
        self.device = device
        self.token_dtype = token_dtype
        self.candidates = candidates
        self.chunk_size = chunk_size
        self.warm = warm
        self._session = QuerySession(self._open_snapshot, device, tuned)
        self._pages = None  # the page view, made on first use
        self._fresh = False  # created by open(): removed again if the first update fails before adding anything

    @classmethod
    def open(
        cls,
        path: str | os.PathLike | None = None,
        *,
        create: bool = False,
        model: str | None = None,
        device: str = defaults.DEVICE,
        token_dtype: str = defaults.TOKEN_DTYPE,
        candidates: int | None = defaults.CANDIDATES,
        chunk_size: int | None = None,
        warm: bool = False,
        tuned: bool = True,
    ) -> Index:
        """Open the store at ``path`` (default: ``$SMART_STORE``, else the XDG data folder).

        ``create`` makes an empty store when there is none; without it a missing store raises
        :class:`~smartcli.errors.StoreMissing`. ``model`` (a Hugging Face id or a folder; the
        packaged MiniLM by default) is the model a new store is built with; a store keeps its
        first model. ``candidates`` is the two-stage search's shortlist (None: score every page);
        ``warm`` keeps token states in memory between queries (for long-lived processes);
        ``tuned=False`` ignores what :meth:`tune` learned (the frozen model, default weights).
        """
        from smartcli.store.formats import TOKEN_FORMATS

        if token_dtype not in TOKEN_FORMATS:
            raise OptionError(f"must be one of {', '.join(TOKEN_FORMATS)}, not {token_dtype!r}", option="token_dtype")
        root, fresh = store_access.locate(path, create)
        index = cls(root, model, device, token_dtype, candidates, chunk_size, warm, tuned)
        index._fresh = fresh
        return index

    @property
    def model(self):
        """The store's :class:`~smartcli.models.ModelInfo` (None before anything was encoded)."""
        with store_access.reading(self.path, verify=False) as store:
            return store.model

    def _open_snapshot(self):
        from smartcli.search.searcher import Searcher

        store = store_access.open_for_search(self.path)
        cache = defaults.WARM_CACHE_BYTES if self.warm else 0
        return Searcher(store, device=self.device, chunk_size=self.chunk_size, cache_bytes=cache, shortlist=self.candidates)

    # -- indexing --------------------------------------------------------------------------------

    def update(
        self,
        paths: Iterable[str | os.PathLike] | None = None,
        options: UpdateOptions | None = None,
        *,
        events: UpdateEvents | None = None,
        **fields,
    ):
        """Bring the store up to date with the files under ``paths`` (``smart index``).

        New and changed files are read and encoded, moved and copied ones recognized, gone
        ones removed, text-less pages OCR'd; every batch is committed whole. ``paths`` None: the
        paths the store already covers. A path that does not exist (and never held indexed
        files) is a BAD_INPUT error, and changes nothing. ``options`` (or keywords naming its
        fields: ``ocr``, ``ocr_lang``, ``ocr_workers``, ``batch_pages``, ``batch_size``, ``dpi``,
        ``max_pixels``, ``rebuild``, ``wait``, ``read_timeout``, ``read_memory``): see
        :class:`~smartcli.ingest.pipeline.UpdateOptions`. Returns an
        :class:`~smartcli.ingest.indexer.IndexSummary`.
        """
        from smartcli.ingest import pipeline

        options = _with(options or UpdateOptions(), fields)
        events = events or UpdateEvents()
        with self._discarded_on_failure(), store_access.writing(self.path, options.wait, options.rebuild, events.waiting) as store:
            summary = pipeline.update(store, paths, options, self._model_spec, self.device, self.token_dtype, events)
        self._fresh = False
        return summary

    def watch(
        self,
        paths: Iterable[str | os.PathLike] | None = None,
        options: UpdateOptions | None = None,
        watching: WatchOptions | None = None,
        *,
        events: WatchEvents | None = None,
        stop: threading.Event | None = None,
        **fields,
    ) -> WatchSummary:
        """Keep the store fresh by itself (``smart watch``): :meth:`update` ``paths`` once (None:
        the paths the store covers), then listen for changes under the store's paths and run
        :meth:`update` on what changed, once the changed files stopped changing, until ``stop``
        is set (another thread, a signal handler); the batch being committed then ends the run.

        Paths on file systems that send no change events (network mounts) are scanned every
        ``watching.scan_every`` seconds instead. Another writer is waited for. ``options`` (or
        keywords naming its fields): as :meth:`update`; ``watching``: a
        :class:`~smartcli.usecases.watch.WatchOptions`; ``events``: a
        :class:`~smartcli.usecases.watch.WatchEvents`. Returns a
        :class:`~smartcli.usecases.watch.WatchSummary` of the updates it ran.
        """
        from smartcli.usecases.watch import watch

        options = _with(options or UpdateOptions(), fields)
        return watch(self, paths, options, watching or WatchOptions(), events or WatchEvents(), stop or threading.Event())

    def plan(self, paths: Iterable[str | os.PathLike] | None = None, options: UpdateOptions | None = None, **fields):
        """What :meth:`update` would do, changing nothing: a :class:`~smartcli.ingest.planning.Plan`."""
        from smartcli.ingest import pipeline

        options = _with(options or UpdateOptions(), fields)
        with self._discarded_on_failure(), store_access.writing(self.path, options.wait) as store:
            return pipeline.plan(store, paths, options)

    @contextlib.contextmanager
    def _discarded_on_failure(self):
        """A store this object created is removed again when its first update fails with nothing
        in it (a mistyped path, a model that cannot load): a failed run leaves no empty store."""
        try:
            yield
        except SmartError:
            if self._fresh:
                store_access.remove_if_empty(self.path)
                self._fresh = False
            raise

    def compact(self, *, wait: bool = False):
        """Rewrite segments to drop the rows of removed and replaced files (``smart compact``); a
        :class:`~smartcli.store.compaction.CompactionResult` (see ``usecases.compaction``)."""
        from smartcli.usecases.compaction import compact

        return compact(self.path, wait)

    def sync(
        self,
        qdrant: str | None = None,
        collection: str | None = None,
        *,
        options: SyncOptions | None = None,
        events: UpdateEvents | None = None,
        **fields,
    ):
        """Make the Qdrant ``collection`` at ``qdrant`` (a URL, or a folder for Qdrant's embedded
        mode; ``$SMART_QDRANT_URL`` by default) hold this store's encoded pages (``smart sync``).

        Only the difference since the last acknowledged sync is sent (the store's catalog records
        what Qdrant acknowledged, batch by batch), and only points this store wrote are removed.
        ``options`` or keywords: see :class:`~smartcli.usecases.qdrant.SyncOptions`. Returns a
        :class:`~smartcli.store.qdrant.SyncSummary`.
        """
        from smartcli.usecases.qdrant import sync

        named = {key: value for key, value in (("qdrant", qdrant), ("collection", collection)) if value is not None}
        return sync(self.path, _with(options or SyncOptions(), {**named, **fields}), events or UpdateEvents())

    # -- tuning ----------------------------------------------------------------------------------

    def tune(
        self,
        *,
        pairs: str | os.PathLike | None = None,
        outline: bool = True,
        heading_path: bool = False,
        adapter: bool = False,
        guard: bool = True,
        wait: bool = False,
        events: UpdateEvents | None = None,
        body: bool = False,
        init: str = defaults.TUNE_INIT,
    ) -> TuneSummary:
        """Learn this store's fusion weights and query-side adapter (``smart tune``).

        Pairs come from the outlines of the indexed PDFs (``outline``; with ``heading_path`` a
        heading's query carries its parents' headings) and from ``pairs``, a JSON-lines file of
        ``{"query", "file", "page"}``. A share is held back: on it the weights are chosen and the
        adapter's training stopped, and the result must beat the untuned search there, else the
        store is left untuned (``guard=False`` keeps what was learned anyway: for collections too
        small to hold back a telling share). ``body`` adds pseudo-queries cut from the pages' own
        text (inverse cloze). ``adapter`` also trains the query-side adapter, its Linear starting
        at zero (``init="identity"``) or at "all-but-the-top" of the query token states' principal
        directions (``init="pca"``). The store is read while training and locked only to record
        the result (``wait``: wait for another writer).
        """
        from smartcli.usecases.tune import TuneRequest, tune

        request = TuneRequest(None if pairs is None else os.fspath(pairs), outline, heading_path, body, adapter, guard, init)
        try:
            return tune(self.path, request, self.device, self.chunk_size, self.candidates, wait, events or UpdateEvents())
        finally:
            self._session.tuning_changed()

    def reset_tuning(self, *, wait: bool = False) -> bool:
        """Back to the frozen model and the default weights (``smart tune --reset``); True when
        the store was tuned."""
        from smartcli.usecases.tune import reset

        try:
            return reset(self.path, wait)
        finally:
            self._session.tuning_changed()

    # -- looking at the store --------------------------------------------------------------------

    def status(self) -> Status:
        """What the store holds (``smart status``). A damaged store is still described: its
        problems are in ``store_problems``."""
        from smartcli.usecases.reports import status

        return status(self.path)

    def unencoded(self) -> list[Unencoded]:
        """The pages and images recorded without vectors, with the code of why (``smart status --unencoded``),
        ordered by path and page."""
        from smartcli.usecases.reports import unencoded

        return unencoded(self.path)

    def verify(self, on_segment=None) -> VerifyReport:
        """Read every segment and every page's text and check them (``smart status --verify``):
        each segment's identity against the catalog's, its offsets and shapes, the Fletcher-32
        checksums and SHA-256 digests of its datasets (segments written since schema 3), that
        anchors are unit vectors, and each page's text against its CRC-32. Nothing is changed.
        ``on_segment(name)`` is called before each segment is read."""
        from smartcli.usecases.reports import verify

        return verify(self.path, on_segment)

    def evaluate(
        self,
        queries: str | os.PathLike | list,
        *,
        k: int = defaults.TOP_K,
        lambda_anchor: float | None = None,
        lambda_late: float | None = None,
        sweep: bool = False,
    ):
        """MRR@k, Recall@k and nDCG@k of pooled, late and smart search on judged queries
        (a JSON-lines file or a list of :class:`~smartcli.search.evaluate.JudgedQuery`),
        measured on the path :meth:`search` takes (two-stage with this index's ``candidates``)."""
        from smartcli.usecases.reports import evaluate

        return evaluate(self._session, queries, k, lambda_anchor, lambda_late, sweep)

    # -- looking at pages (the web view) ---------------------------------------------------------

    def item_by_id(self, item_id: int):
        """The encoded page with catalog id ``item_id`` in the current snapshot, if its file can be
        shown: still as it was indexed, and inside the indexed paths once symbolic links are
        resolved. Anything else raises a NOT_FOUND :class:`~smartcli.errors.SmartError`."""
        return self._page_view().item_by_id(item_id)

    def picture(self, item, width: int) -> tuple[bytes, int, int]:
        """The page ``item`` (from :meth:`item_by_id` or a hit) drawn ``width`` pixels wide:
        PNG bytes, width, height."""
        return self._page_view().picture(item, width)

    def open_file(self, item):
        """The file of ``item`` (from :meth:`item_by_id`) open for reading, and its length (None
        for a gzipped document, read decompressed), checked again as it is opened."""
        return self._page_view().open_file(item)

    def marks(self, item, matches) -> dict:
        """Where each query token's match (a :class:`~smartcli.search.explain.TokenMatch` of a hit)
        lies on the page, as fractions of its width and height.

        Text pages: ``{"words": [{"token", "query_token", "word", "similarity", "boxes"}]}``, the
        boxes of the page words each matched span falls on. Pictures of an image-model store:
        ``{"heat": {"rows", "cols", "region", "cells", "tokens"}}``, the patch grid over the
        ``region`` of the picture, each cell's best similarity to a query token that matched
        it (None for cells nothing matched) and per query token the patch it matched.
        """
        return self._page_view().marks(item, matches)

    def pages(self, path: str | os.PathLike) -> list[int]:
        """The encoded page numbers of the indexed file at ``path``, ascending ([] when none is):
        where a page found by :meth:`search` or :meth:`item` sits among its file's pages."""
        from smartcli.search.session import absolute

        return sorted(item.page for item in self._session.current().items if item.path == absolute(path))

    def _page_view(self):
        if self._pages is None:
            from smartcli.usecases.pageview import PageView

            self._pages = PageView(self._session)
        return self._pages


class QdrantIndex(_Queries):
    """Search a Qdrant collection that :meth:`Index.sync` filled, with the local search's methods
    and results (the same query session: same scores within float tolerance). No local store is
    needed: the collection records its model, which is loaded on the first query."""

    def __init__(self, backend, device: str):
        self._backend = backend
        self.target = backend.target
        self.device = device
        self.path = backend.path
        self._session = QuerySession(lambda: backend, device)

    @classmethod
    def open(
        cls,
        qdrant: str | None = None,
        collection: str = defaults.QDRANT_COLLECTION,
        *,
        api_key: str | None = None,
        device: str = defaults.DEVICE,
        candidates: int | None = defaults.CANDIDATES,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> QdrantIndex:
        from smartcli.usecases.qdrant import open_collection

        return cls(open_collection(qdrant, collection, api_key, candidates, timeout, retries), device)

    @property
    def model(self):
        return self._backend.model


def _with(options, fields: dict):
    """``options`` with ``fields`` changed (checked again, as a new options object is)."""
    from dataclasses import replace

    return replace(options, **fields) if fields else options
