"""The front door: :class:`Index`, one object for everything `smart` does to a store.

    from smartcli import Index
    index = Index.open("~/papers.smart", create=True)
    summary = index.update(["~/papers"])
    for hit in index.search("how do I rotate a figure", k=5):
        print(hit.path, hit.page, hit.score)

The command line is a thin shell over this class: it parses arguments, calls a method and
presents what comes back. Nothing heavy is imported until it is needed: opening an index
reads its catalog, the model loads on the first query or the first page to encode.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError, StoreError, StoreMissing
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Hit, Scope
from smartcli.store.catalog import Store, integrity, reads, writes
from smartcli.store.catalog.connection import LOW_SPACE_BYTES, damaged_catalog, free_bytes, storage_error
from smartcli.store.catalog.layout import CATALOG, SEGMENT_DIR, STORE_NAMES, default_store_path
from smartcli.store.catalog.writes import check_same_model

__all__ = ["Index", "QdrantIndex", "UpdateEvents", "Status", "Scope", "Weights", "Hit", "TuneSummary", "VerifyReport"]


class UpdateEvents:
    """What an :meth:`Index.update` run tells its caller while it works (all optional).

    Subclass and override: ``message`` gets one-line reports (a skipped file, a page OCR
    could not read); with ``wants_progress`` set, ``started(total_pages)`` comes once the
    run is planned, then ``pages_done(n)`` (pages read) and ``committed(...)`` (what is kept);
    OCR work is announced by ``ocr_queued(n)`` (negative for queued pages that turned out to
    need no OCR) and ``ocr_done(n)`` (pages OCR read: the summary's ``attempted``);
    ``waiting()`` when another writer holds the store and ``wait`` is set.
    """

    wants_progress = False

    def message(self, text: str) -> None:
        pass

    def started(self, total_pages: int) -> None:
        pass

    def pages_done(self, n: int) -> None:
        pass

    def ocr_queued(self, n: int) -> None:
        pass

    def ocr_done(self, n: int) -> None:
        pass

    def waiting(self) -> None:
        pass

    def committed(self, files: int, pages: int, encoded: int, total_pages: int) -> None:
        """After each committed batch (with ``wants_progress``), the run's counts so far: files
        committed, pages finished (encoded, or recorded as not encodable), pages encoded, and
        ``total_pages`` the run will finish in all (the estimate of ``started``, corrected as
        files are read). Unlike ``pages_done`` (pages read), these count only what is kept."""
        pass


@dataclass
class Status:
    """What a store holds and how the files behind it changed (``smart status``)."""

    store: str
    model: str | None
    model_spec: str | None
    model_fingerprint: str | None
    dims: int | None
    token_dtype: str
    roots: list[str]
    files: dict[str, int]
    skipped_files: int
    items: int
    encoded_items: int
    not_encoded: dict[str, int]  # note code -> pages
    ocr: dict
    tokens: int
    shared_items: int
    segments: int
    garbage_rows: int
    retired_segments: int
    bytes: int
    bytes_per_item: int | None
    updated: float | None
    changed_on_disk: dict[str, int]
    # {"path", "code" (store/skips.py), "detail", "reason" (the code and detail in words)}
    skipped: list[dict] = field(default_factory=list)
    partly_indexed: list[dict] = field(default_factory=list)
    store_problems: list[str] = field(default_factory=list)
    tuning: dict | None = None  # what tune learned: weights, adapter, held-back figures (None: untuned)

    @property
    def healthy(self) -> bool:
        return not self.store_problems

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class Unencoded:
    """A page (or image) recorded without vectors, and why: ``note`` is a :class:`~smartcli.store.notes.Note`
    code (``""`` where none was recorded), ``detail`` a library's own message where there is one."""

    path: str
    page: int
    kind: str
    note: str
    detail: str | None = None

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class VerifyReport:
    """What :meth:`Index.verify` read and found (``smart status --verify``).

    ``damaged``: one entry per problem, ``{"segment": name or None (the catalog), "dataset":
    the dataset, or "page P of F" for a page's text, or None, "problem": what is wrong}``.
    """

    store: str
    segments: int  # segments read
    checksummed: int  # of them, written with checksums (digests or Fletcher-32)
    datasets: int
    bytes: int  # bytes of segment files read
    texts: int  # page texts checked
    seconds: float
    damaged: list[dict] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.damaged

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class TuneSummary:
    """What :meth:`Index.tune` did: the pairs it used, the held-back figures, what it kept."""

    store: str
    kept: str  # "adapter" (weights and adapter), "weights" (weights only) or "untuned" (nothing beat it)
    improved: bool  # what was kept beats the untuned search on the held-back pairs
    lambda_anchor: float
    lambda_late: float
    pairs: dict  # {"outline": {mining report}, "body": {"pages", "pairs"}, "user": {"lines", "matched", "unmatched"}, "used", "train", "held_back"}
    held_back: dict  # {"untuned": {...}, "weights": {...}, "adapter": {...} | None}: MRR@10, nDCG@10, weights
    epochs: int
    best_epoch: int
    seconds: float
    train_seconds: float
    history: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


class Index:
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
        self._tuning: dict | None = None  # the tuning record in use
        self._tuning_read = False  # False: read the record (again) before the next query
        self._adapter = None
        self._base_encoder = None
        self._model_spec = model
        self.device = device
        self.token_dtype = token_dtype
        self.candidates = candidates
        self.chunk_size = chunk_size
        self.warm = warm
        self._searcher = None
        self._by_id: tuple[list, dict] | None = None  # (the snapshot's items, item id -> item)
        self._word_cache: dict = {}  # (item id, path, page) -> word boxes, for the web view
        self._fresh = False

    # -- opening ---------------------------------------------------------------------------------

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
    ) -> "Index":
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
            raise SmartError(ErrorKind.BAD_OPTION, f"must be one of {', '.join(TOKEN_FORMATS)}, not {token_dtype!r}", option="token_dtype")
        root = Path(os.path.expanduser(os.fspath(path))) if path is not None else default_store_path()
        fresh = False
        try:
            found = (root / CATALOG).exists()
        except PermissionError:  # another user's store this user may not even look into
            raise SmartError(ErrorKind.PERMISSION_DENIED, f"no permission to read the store at {root} (permission denied)", path=str(root)) from None
        if not found:
            if not create:
                raise StoreMissing(f"no index at {root}")
            fresh = not root.exists()
            _create(root)
        index = cls(root, model, device, token_dtype, candidates, chunk_size, warm, tuned)
        index._fresh = fresh  # created by this open: removed again if the first update fails before adding anything
        return index

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.store.close()
            self._searcher = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def model(self):
        """The store's :class:`~smartcli.models.ModelInfo` (None before anything was encoded)."""
        with _reading(self.path, verify=False) as store:
            return store.model

    # -- indexing --------------------------------------------------------------------------------

    def update(
        self,
        paths: Iterable[str | os.PathLike] | None = None,
        *,
        ocr: str = defaults.OCR_MODE,
        ocr_lang: str = defaults.OCR_LANGUAGE,
        ocr_workers: int = defaults.OCR_WORKERS,
        batch_pages: int = defaults.BATCH_PAGES,
        batch_size: int | None = None,
        dpi: float | None = None,
        max_pixels: int | None = None,
        rebuild: bool = False,
        wait: bool = False,
        events: UpdateEvents | None = None,
        read_timeout: float = defaults.READ_TIMEOUT_SECONDS,
        read_memory: int = defaults.READ_MEMORY_BYTES,
    ):
        """Bring the store up to date with the files under ``paths`` (``smart index``).

        New and changed files are read and encoded, moved and copied ones recognized, gone
        ones removed, text-less pages OCR'd (``ocr``: auto, always or never); every batch is
        committed whole. ``paths`` None: the paths the store already covers. A path that does
        not exist (and never held indexed files) is a BAD_INPUT error, and changes nothing.
        Returns an :class:`~smartcli.ingest.indexer.IndexSummary`.
        Each file is read in a worker process given ``read_timeout`` seconds and ``read_memory``
        bytes of address space; a file past either is skipped, and not read again until it changes.
        """
        from smartcli.ingest.ocr import resolve_settings

        events = events or UpdateEvents()
        with self._discarded_on_failure():
            settings = resolve_settings(ocr, ocr_lang, ocr_workers)
            with self._writer(wait, rebuild, events) as store:
                roots = _roots_to_index(store, paths)
                summary = self._update(store, roots, settings, batch_pages, batch_size, dpi, max_pixels, events, (read_timeout, read_memory))
                store.finish_rebuild()
        self._fresh = False
        return summary

    @contextlib.contextmanager
    def _discarded_on_failure(self):
        """A store this object created is removed again when its first update fails with nothing
        in it (a mistyped path, a model that cannot load): a failed run leaves no empty store."""
        try:
            yield
        except SmartError:
            if self._fresh:
                _remove_if_empty(self.path)
                self._fresh = False
            raise

    def plan(self, paths: Iterable[str | os.PathLike] | None = None, *, ocr: str = defaults.OCR_MODE, ocr_lang: str = defaults.OCR_LANGUAGE, wait: bool = False):
        """What :meth:`update` would do, changing nothing: a :class:`~smartcli.ingest.planning.Plan`."""
        from smartcli.ingest.ocr import resolve_settings
        from smartcli.ingest.planning import plan_changes

        with self._discarded_on_failure(), self._writer(wait, False, UpdateEvents()) as store:
            settings = resolve_settings(ocr, ocr_lang)
            roots = _roots_to_index(store, paths)
            reread = _awaiting_ocr(store, _ocr_for_model(settings, store.model)) | _old_text(store, settle=False)
            return plan_changes(store, roots, reread)[0]

    def _update(self, store, roots, settings, batch_pages, batch_size, dpi, max_pixels, events, limits=None):
        from smartcli.ingest.discovery import count_pages
        from smartcli.ingest.indexer import Indexer
        from smartcli.ingest.ocr import OcrRunner
        from smartcli.ingest.pictures import render_options
        from smartcli.ingest.planning import plan_changes
        from smartcli.store.compaction import compact, needs_compaction

        settings = _ocr_for_model(settings, store.model)
        old_text = _old_text(store)
        plan, hashes = plan_changes(store, roots, _awaiting_ocr(store, settings) | old_text)
        _refuse_nothing_indexable(plan, roots)
        renormalized = sum(1 for s in plan.to_encode + plan.duplicates if s.path in old_text)
        if renormalized:
            events.message(f"{renormalized} file(s) were indexed with an older text normalization: reading and encoding them again")
        spec = self._model_spec or (store.model.spec if store.model else None)
        options = render_options(store.model, spec, dpi=dpi, max_pixels=max_pixels)
        encoder = _LazyEncoder(store, spec, self.device, self.token_dtype, options)
        _refuse_another_model(store, self._model_spec)
        if self._model_spec is not None or (plan.to_encode and store.model is None):
            encoder.load()  # check the model against the store, or bind a new store's model, before any change
        if batch_size is None:
            batch_size = encoder.default_batch_size if plan.to_encode else defaults.TEXT_BATCH_SIZE
        settings = _ocr_for_model(settings, encoder.info)
        counter = None
        if events.wants_progress and plan.to_encode:
            from smartcli.ingest.indexer import CommitCounter

            counter = CommitCounter({s.path: count_pages(s) for s in plan.to_encode}, events.committed)
            events.started(counter.total)
        runner = OcrRunner(settings, report=events.message, on_queued=events.ocr_queued, on_done=events.ocr_done,
                           **({} if limits is None else {"timeout": limits[0], "memory_bytes": limits[1]}))
        with runner:
            indexer = Indexer(store, encoder, batch_pages=batch_pages, encode_batch_size=batch_size, report=events.message, ocr=runner,
                              **({} if limits is None else {"read_timeout": limits[0], "read_memory": limits[1]}))
            if counter is not None:
                indexer.on_commit = counter
            summary = indexer.run(plan, hashes, progress=events.pages_done)
        summary.not_indexable = plan.not_indexable
        writes.record_roots(store, roots)
        from smartcli.ingest.planning import UNMOUNTED

        writes.record_mounts(store, roots, plan.mounts, [s.path for s in plan.skipped if s.reason == UNMOUNTED and s.path not in plan.mounts])
        if needs_compaction(store):
            compacted = compact(store)
            for d in compacted.damaged:  # never copied into a new segment: said, and left as it is
                events.message(f"segment {d.segment}.h5 is damaged ({d.dataset + ': ' if d.dataset else ''}{d.problem}): left out of the compaction, as it is")
            summary.compaction = compacted.as_json()
        summary.store = str(store.root)
        summary.ocr = runner.stats.as_json(settings)
        summary.renormalized = renormalized
        return summary

    def _writer(self, wait: bool, rebuild: bool, events: UpdateEvents):
        return _writing(self.path, wait, rebuild, events.waiting)

    def compact(self, *, wait: bool = False):
        """Rewrite segments to drop the rows of removed and replaced files (``smart compact``).

        Returns a :class:`~smartcli.store.compaction.CompactionResult`; its ``segments`` and
        ``bytes`` say what the store holds afterwards. The old segments stay on disk for
        ``grace_seconds`` (searches that started before can finish), so the store first grows:
        ``store_bytes_before``, ``bytes`` (now) and ``bytes_after_grace`` say by how much.
        """
        from smartcli.store.catalog.retirement import SEGMENT_GRACE_SECONDS
        from smartcli.store.compaction import compact

        # Sizes as `smart status` measures them, outside the writer (whose catalog log is not folded in yet).
        with _reading(self.path, verify=False) as store:
            before = reads.stats(store)["bytes"]
        with self._writer(wait, False, UpdateEvents()) as store:
            result = compact(store)
        with _reading(self.path, verify=False) as store:
            stats = reads.stats(store)
        result.segments, result.bytes = stats["segments"], stats["bytes"]
        result.store_bytes_before, result.bytes_after_grace = before, stats["live_bytes"]
        result.grace_seconds = SEGMENT_GRACE_SECONDS
        return result

    def sync(
        self,
        qdrant: str | None = None,
        collection: str = defaults.QDRANT_COLLECTION,
        *,
        api_key: str | None = None,
        token_format: str = defaults.QDRANT_TOKEN_FORMAT,
        shards: int | None = None,
        replicas: int | None = None,
        on_disk: bool = False,
        batch_points: int = defaults.QDRANT_BATCH_POINTS,
        max_tokens: int | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        wait: bool = False,
        events: UpdateEvents | None = None,
    ):
        """Make the Qdrant ``collection`` at ``qdrant`` (a URL, or a folder for Qdrant's embedded
        mode; ``$SMART_QDRANT_URL`` by default) hold this store's encoded pages.

        Only the difference since the last acknowledged sync is sent (the store's catalog records
        what Qdrant acknowledged, batch by batch), and only points this store wrote are removed.
        ``token_format``, ``shards``, ``replicas`` and ``on_disk`` shape a new collection;
        ``max_tokens`` lowers the per-page token limit (pages over it are pooled). Returns a
        :class:`~smartcli.store.qdrant.SyncSummary`.
        """
        from smartcli.store.qdrant import CollectionSettings, Target, connect, release, sync_store

        events = events or UpdateEvents()
        target = Target.resolve(qdrant, api_key, timeout, retries)
        settings = CollectionSettings(token_format, shards, replicas, on_disk)
        settings.check()
        with self._writer(wait, False, events) as store:
            client = connect(target)
            try:
                if events.wants_progress:
                    events.started(len(reads.live_items(store)))
                return sync_store(store, client, target, collection, settings, batch_points, max_tokens, report=events.message, progress=events.pages_done)
            finally:
                if target.local:
                    release(target)

    # -- searching -------------------------------------------------------------------------------

    def search(self, query: str, k: int = defaults.TOP_K, **options) -> list[Hit]:
        """The top ``k`` pages for a plain-language ``query`` (``smart search``).

        ``options``: ``mode`` (smart, pooled or late), ``lambda_anchor``, ``lambda_late``,
        ``scope`` (a :class:`Scope`: path prefixes, globs, kinds), ``min_score``.
        """
        return self.search_many([query], k, **options)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = defaults.TOP_K,
        *,
        mode: str = "smart",
        lambda_anchor: float | None = None,
        lambda_late: float | None = None,
        scope: Scope = Scope(),
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for several queries at once (they share each read of the token states).

        A query longer than ``defaults.MAX_QUERY_TOKENS`` tokens is cut to them, with a
        :class:`~smartcli.errors.SmartWarning`.
        """
        _check_finite_weights(lambda_anchor, lambda_late)
        _check_min_score(min_score)
        # Tokenizing a huge query costs far more than the cap keeps: cut by characters first.
        limit = defaults.MAX_QUERY_TOKENS * 16
        queries = [q if len(q) <= limit else q[:limit] for q in queries]
        searcher = self._current(with_encoder=True)
        weights = self._weights(mode, lambda_anchor, lambda_late)
        try:
            return searcher.search(list(queries), weights, k, scope, min_score)
        except StoreError:
            # A compaction deleted segments this snapshot still read: take a new one, once.
            return self._current(with_encoder=True, force=True).search(list(queries), weights, k, scope, min_score)

    def search_image(self, image: str | os.PathLike, k: int = defaults.TOP_K, **options) -> list[Hit]:
        """Pages like the picture at ``image`` (stores built with an image model)."""
        from smartcli.ingest.files import UnreadableFile
        from smartcli.ingest.render import load_image, probe_image

        path = os.fspath(image)
        try:
            probe_image(path)  # before the model loads: a wrong picture fails at once
        except UnreadableFile as exc:
            raise SmartError(ErrorKind.BAD_INPUT, f"{path}: {exc}", path=path) from None
        searcher = self._current(with_encoder=True)
        encoder = searcher.encoder
        if not encoder.info.consumes_pixels:
            raise SmartError(
                ErrorKind.BAD_INPUT, f"image queries need a store built with an image model; this one uses {encoder.info.name}, which reads text"
            )
        try:
            picture = load_image(path, encoder.pixel_cap)
        except UnreadableFile as exc:
            raise SmartError(ErrorKind.BAD_INPUT, f"{path}: {exc}", path=path) from None
        encoded = encoder.encode_documents([picture])[0]
        return self._search_encoded(searcher, encoded, None, k, **options)

    def item(self, path: str | os.PathLike, page: int | None = None):
        """The indexed page ``page`` of ``path`` (any page of a one-page file when None); raises
        a NOT_FOUND :class:`~smartcli.errors.SmartError` when it is not encoded. A relative ``path``
        that is no indexed file may name one by base name or path suffix (``graphs.pdf``,
        ``manuals/graphs.pdf``) when exactly one indexed file matches."""
        return self._current(with_encoder=False).find_item(_absolute(path), page, os.fspath(path))

    def like(self, path: str | os.PathLike, page: int | None = None, k: int = defaults.TOP_K, **options) -> list[Hit]:
        """More like this: pages ranked by similarity to an indexed page (its stored vectors;
        no model is loaded). The page itself is left out."""
        searcher = self._current(with_encoder=False)
        encoded, source = searcher.stored_query(_absolute(path), page, os.fspath(path))
        scope = options.pop("scope", Scope())
        scope = replace(scope, exclude=scope.exclude | {(source.path, source.page)})
        return self._search_encoded(searcher, encoded, source.text, k, scope=scope, **options)

    def _search_encoded(self, searcher, encoded, text, k, mode="smart", lambda_anchor=None, lambda_late=None, scope=Scope(), min_score=None):
        weights = self._weights(mode, lambda_anchor, lambda_late)
        _check_min_score(min_score)
        texts = [text] if text is not None else None
        return searcher.search_encoded([encoded], weights, k, texts=texts, scope=scope, min_score=min_score)[0]

    def load(self) -> None:
        """Open the snapshot and load the model now, rather than on the first query."""
        self._current(with_encoder=True)

    def __len__(self) -> int:
        """Encoded pages in the current snapshot."""
        return len(self._current(with_encoder=False))

    def _current(self, with_encoder: bool, force: bool = False):
        """The searcher over the last committed snapshot (opened on first use, refreshed after
        an index run commits, with the model loaded when ``with_encoder``)."""
        from smartcli.search.searcher import Searcher

        if self._searcher is None:
            try:
                store = Store.open(self.path)
            except sqlite3.DatabaseError as exc:
                raise damaged_catalog(self.path, exc) from None
            if store.model is None:
                store.close()
                raise StoreMissing(f"the index at {self.path} is empty", kind=ErrorKind.STORE_EMPTY)
            cache = defaults.WARM_CACHE_BYTES if self.warm else 0
            self._searcher = Searcher(store, None, device=self.device, chunk_size=self.chunk_size, cache_bytes=cache, shortlist=self.candidates)
        searcher = self._searcher
        if with_encoder and searcher.encoder is None:
            from smartcli.models.registry import load_query_encoder

            info = searcher.store.model
            self._base_encoder = load_query_encoder(info.spec, self.device, info.extra)  # pixel models: the store's render settings
            check_same_model(info, self._base_encoder.info, self.path)
            searcher.encoder = self._base_encoder
        if searcher.refresh(force) and searcher.encoder is not None:
            check_same_model(searcher.store.model, searcher.encoder.info, self.path)
        self._follow_tuning(searcher)
        return searcher

    # -- looking at pages (the web view) ---------------------------------------------------------

    def item_by_id(self, item_id: int):
        """The encoded page with catalog id ``item_id`` in the current snapshot, if its file can be
        shown: still as it was indexed, and inside the indexed paths once symbolic links are
        resolved. Anything else raises a NOT_FOUND :class:`~smartcli.errors.SmartError`."""
        searcher = self._current(with_encoder=False)
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
        """The page ``item`` (from :meth:`item_by_id` or a hit) drawn ``width`` pixels wide:
        PNG bytes, width, height."""
        from smartcli.ingest.files import UnreadableFile
        from smartcli.ingest.pageview import render_png

        try:
            return render_png(item.path, item.kind, item.page, width)
        except (UnreadableFile, OSError) as exc:
            raise SmartError(ErrorKind.NOT_FOUND, f"{item.path}: {exc}", path=item.path) from None

    def marks(self, item, matches) -> dict:
        """Where each query token's match (a :class:`~smartcli.search.explain.TokenMatch` of a hit)
        lies on the page, as fractions of its width and height.

        Text pages: ``{"words": [{"token", "query_token", "word", "similarity", "boxes"}]}``, the
        boxes of the page words each matched span falls on. Pictures of an image-model store:
        ``{"heat": {"rows", "cols", "region", "cells", "tokens"}}``, the patch grid over the
        ``region`` of the picture, each cell's best similarity to a query token that matched
        it (None for cells nothing matched) and per query token the patch it matched.
        """
        from smartcli.ingest.files import UnreadableFile
        from smartcli.ingest.pageview import boxes_of_span, patch_grid, picture_size

        searcher = self._current(with_encoder=False)
        model = searcher.store.model
        try:
            if model is not None and model.consumes_pixels:
                width, height = picture_size(item.path, item.kind, item.page)
                grid = patch_grid(model.family, item.n_tokens, width, height)
                if grid is None:
                    return {"heat": None}
                cells: list = [None] * (grid["rows"] * grid["cols"])
                for m in matches:
                    if 0 <= m.doc_token < len(cells) and (cells[m.doc_token] is None or m.similarity > cells[m.doc_token]):
                        cells[m.doc_token] = round(m.similarity, 6)
                tokens = [{"token": i, "query_token": m.query_token, "patch": m.doc_token, "similarity": round(m.similarity, 6)} for i, m in enumerate(matches)]
                return {"heat": dict(grid, cells=cells, tokens=tokens)}
            words = self._page_words(searcher, item)
        except (UnreadableFile, OSError) as exc:
            raise SmartError(ErrorKind.NOT_FOUND, f"{item.path}: {exc}", path=item.path) from None
        marked = []
        for i, m in enumerate(matches):
            boxes = [] if m.span is None else boxes_of_span(words, m.span)
            marked.append({"token": i, "query_token": m.query_token, "word": m.word, "similarity": round(m.similarity, 6), "boxes": [list(b) for b in boxes]})
        return {"words": marked}

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


    def _follow_tuning(self, searcher) -> None:
        """Use the store's current tuning record: its weights, and its adapter on query tokens."""
        from smartcli.search.tuning import AdaptedEncoder
        from smartcli.store.tuning import load_adapter, read_tuning

        record = read_tuning(searcher.store) if self.tuned else None
        if record != self._tuning or not self._tuning_read:
            self._tuning, self._tuning_read = record, True
            self._adapter = load_adapter(searcher.store, record) if record else None
        if self._base_encoder is not None:
            searcher.encoder = self._base_encoder if self._adapter is None else AdaptedEncoder(self._base_encoder, self._adapter)

    def _weights(self, mode: str, lambda_anchor: float | None, lambda_late: float | None) -> Weights:
        """The weights asked for; what is not asked for comes from the store's tuning, else the defaults."""
        _check_finite_weights(lambda_anchor, lambda_late)
        tuning = self._tuning or {}
        if lambda_anchor is None:
            lambda_anchor = tuning.get("lambda_anchor", defaults.LAMBDA_ANCHOR)
        if lambda_late is None:
            lambda_late = tuning.get("lambda_late", defaults.LAMBDA_LATE)
        return Weights.for_mode(mode, lambda_anchor, lambda_late)

    # -- tuning --------------------------------------------------------------------------------

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
        text (inverse cloze: a run of a sentence's words, the sentence hidden from its page when the
        page is scored for it). ``adapter`` also trains the query-side adapter, its Linear starting
        at zero (``init="identity"``) or at "all-but-the-top" of the query token states' principal
        directions (``init="pca"``). The store is read while
        training and locked only to record the result (``wait``: wait for another writer).
        """
        from smartcli.ingest.outlines import mine_indexed
        from smartcli.models.registry import load_encoder
        from smartcli.search.searcher import Searcher
        from smartcli.search.tuning import INITS, Pair, load_user_pairs, match_user_pairs, tune
        from smartcli.store.tuning import clear_tuning, write_tuning

        events = events or UpdateEvents()
        if init not in INITS:
            raise SmartError(ErrorKind.BAD_OPTION, f"unknown adapter initialisation {init!r} (known: {', '.join(INITS)})", option="init")
        raw_user = load_user_pairs(os.fspath(pairs)) if pairs is not None else []  # a bad file fails before the model loads
        if not outline and pairs is None and not body:
            raise SmartError(ErrorKind.BAD_OPTION, "with the outlines left out, pairs must be given", option="outline")
        with _reading(self.path) as store, store.read_snapshot():
            info = store.model
            if info is None:
                raise StoreMissing(f"the index at {self.path} is empty", kind=ErrorKind.STORE_EMPTY)
            encoder = load_encoder(info.spec, self.device, info.extra)
            check_same_model(info, encoder.info, self.path)
            searcher = Searcher(store, encoder, device=self.device, chunk_size=self.chunk_size, cache_bytes=defaults.WARM_CACHE_BYTES, shortlist=self.candidates)
            used: list = []
            counts: dict = {}
            if outline:
                found, report = mine_indexed(searcher.items, heading_path)
                for path, reason in report.unreadable:
                    events.message(f"{path}: outline not read ({reason})")
                used += [Pair(query, pages) for query, pages in found]
                counts["outline"] = report.as_json()
                events.message(
                    f"{report.pairs} pairs from the outlines of {report.with_outline} of {report.files} PDFs "
                    f"({report.entries} entries; dropped: {', '.join(f'{n} {k}' for k, n in sorted(report.dropped.items())) or 'none'})"
                )
            if body:
                from smartcli.ingest.outlines import body_pairs

                cut = body_pairs([(item.path, item.page, item.text) for item in searcher.items])
                used += [Pair(b.query, {(b.path, b.page)}, "body", b.hidden) for b in cut]
                counts["body"] = {"pages": len(searcher.items), "pairs": len(cut)}
                events.message(f"{len(cut)} pseudo-queries cut from the text of {len(searcher.items)} pages")
            if raw_user:
                user, unmatched = match_user_pairs(raw_user, searcher.items)
                used += user
                counts["user"] = {"lines": len(raw_user), "matched": len(raw_user) - unmatched, "unmatched": unmatched, "pairs": len(user)}
                events.message(f"{len(user)} pairs from {pairs} ({unmatched} of {len(raw_user)} lines name no indexed page)")
            result = tune(searcher, used, adapter, events.message, guard=guard, init=init)
        counts.update(used=result.pairs, train=result.train_pairs, held_back=result.held_back_pairs)
        final = result.final
        held_back = {
            "untuned": result.untuned.as_json(),
            "weights": result.weights_only.as_json(),
            "adapter": result.adapted.as_json() if result.adapted else None,
        }
        with self._writer(wait, False, events) as store:
            if result.kept:
                record = {
                    "lambda_anchor": final.weights.lambda_anchor,
                    "lambda_late": final.weights.lambda_late,
                    "variant": "query" if result.adapter is not None else None,
                    "init": init if result.adapter is not None else None,
                    "trained": time.time(),
                    "pairs": result.pairs,
                    "held_back_pairs": result.held_back_pairs,
                    "held_back": {"untuned": held_back["untuned"], "tuned": final.as_json()},
                }
                write_tuning(store, record, result.adapter)
            else:
                clear_tuning(store)
        self._tuning_read = False  # the next query reads the new record
        return TuneSummary(
            store=str(self.path),
            kept=result.chosen,
            improved=final.key() > result.untuned.key(),
            lambda_anchor=final.weights.lambda_anchor,
            lambda_late=final.weights.lambda_late,
            pairs=counts,
            held_back=held_back,
            epochs=result.epochs,
            best_epoch=result.best_epoch,
            seconds=round(result.seconds, 2),
            train_seconds=round(result.train_seconds, 2),
            history=result.history,
        )

    def reset_tuning(self, *, wait: bool = False) -> bool:
        """Back to the frozen model and the default weights (``smart tune --reset``); True when
        the store was tuned."""
        from smartcli.store.tuning import clear_tuning

        with self._writer(wait, False, UpdateEvents()) as store:
            had = clear_tuning(store)
        self._tuning_read = False
        return had

    # -- looking at the store --------------------------------------------------------------------

    def status(self) -> Status:
        """What the store holds (``smart status``). A damaged store is still described: its
        problems are in ``store_problems``."""
        with _reading(self.path, verify=False) as store, store.read_snapshot():
            return _collect_status(store)

    def unencoded(self) -> list[Unencoded]:
        """The pages and images recorded without vectors, with the code of why (``smart status --unencoded``),
        ordered by path and page."""
        with _reading(self.path, verify=False) as store, store.read_snapshot():
            return [Unencoded(**row) for row in reads.unencoded_items(store)]


    def verify(self, on_segment=None) -> VerifyReport:
        """Read every segment and every page's text and check them (``smart status --verify``):
        each segment's identity against the catalog's, its offsets and shapes, the Fletcher-32
        checksums and SHA-256 digests of its datasets (segments written since schema 3), that
        anchors are unit vectors, and each page's text against its CRC-32. Nothing is changed.
        ``on_segment(name)`` is called before each segment is read."""
        started = time.monotonic()
        with _reading(self.path, verify=False) as store, store.read_snapshot():
            found, counts = integrity.check(store, thorough=True, on_segment=on_segment)
        return VerifyReport(
            store=str(self.path),
            seconds=round(time.monotonic() - started, 3),
            damaged=[{"segment": d.segment, "dataset": d.dataset, "problem": d.problem} for d in found],
            **counts,
        )

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
        from smartcli.search.evaluate import configs_to_run, evaluate, load_judgments

        judged = queries if isinstance(queries, list) else _load_judgments(load_judgments, os.fspath(queries))
        searcher = self._current(with_encoder=True)
        weights = self._weights("smart", lambda_anchor, lambda_late)  # the store's tuned weights unless given
        configs = configs_to_run(weights.lambda_anchor, weights.lambda_late, sweep)
        return evaluate(searcher, judged, configs, k)


class QdrantIndex:
    """Search a Qdrant collection that ``Index.sync`` filled, with the local search's methods and
    results (same scores within float tolerance). No local store is needed: the collection
    records its model, which is loaded on the first query."""

    def __init__(self, searcher, target, device: str):
        self._searcher = searcher
        self.target = target
        self.device = device
        self.path = f"{target.location}#{searcher.collection}"

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
    ) -> "QdrantIndex":
        from smartcli.search.qdrant import QdrantSearcher
        from smartcli.store.qdrant import Target, connect

        target = Target.resolve(qdrant, api_key, timeout, retries)
        return cls(QdrantSearcher(connect(target), target, collection, shortlist=candidates), target, device)

    @property
    def model(self):
        return self._searcher.model

    def close(self) -> None:
        from smartcli.store.qdrant import release

        if self.target.local:
            release(self.target)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __len__(self) -> int:
        return len(self._searcher)

    def load(self) -> None:
        self._encoder()

    def _encoder(self):
        searcher = self._searcher
        if searcher.encoder is None:
            from smartcli.models.registry import load_encoder

            searcher.encoder = load_encoder(searcher.model.spec, self.device, searcher.model.extra)
            check_same_model(searcher.model, searcher.encoder.info, self.path)
        return searcher.encoder

    def search(self, query: str, k: int = defaults.TOP_K, **options) -> list[Hit]:
        """As :meth:`Index.search`."""
        return self.search_many([query], k, **options)[0]

    def search_many(self, queries: Sequence[str], k: int = defaults.TOP_K, *, mode: str = "smart", lambda_anchor=None, lambda_late=None, scope: Scope = Scope(), min_score=None) -> list[list[Hit]]:
        weights = _default_weights(mode, lambda_anchor, lambda_late)
        self._encoder()
        return self._searcher.search(list(queries), weights, k, scope, min_score)

    def item(self, path, page: int | None = None):
        return self._searcher.stored_query(_absolute(path), page)[1]

    def like(self, path, page: int | None = None, k: int = defaults.TOP_K, mode="smart", lambda_anchor=None, lambda_late=None, scope: Scope = Scope(), min_score=None) -> list[Hit]:
        """As :meth:`Index.like`: the page's stored vectors (in the collection) as the query."""
        encoded, source = self._searcher.stored_query(_absolute(path), page)
        scope = replace(scope, exclude=scope.exclude | {(source.path, source.page)})
        weights = _default_weights(mode, lambda_anchor, lambda_late)
        return self._searcher.search_encoded([encoded], weights, k, texts=[source.text], scope=scope, min_score=min_score)[0]

    def search_image(self, image, k: int = defaults.TOP_K, **options) -> list[Hit]:
        raise SmartError(ErrorKind.BAD_OPTION, "image queries are not supported on a Qdrant collection yet", option="image")


# -- helpers ---------------------------------------------------------------------------------------


def _check_finite_weights(lambda_anchor: float | None, lambda_late: float | None) -> None:
    for option, value in (("lambda_anchor", lambda_anchor), ("lambda_late", lambda_late)):
        if value is not None and not math.isfinite(value):
            raise SmartError(ErrorKind.BAD_OPTION, f"must be a finite number, not {value}", option=option)


def _default_weights(mode: str, lambda_anchor: float | None, lambda_late: float | None) -> Weights:
    """The weights of ``mode``, with the engine's defaults where none are given (no store tuning)."""
    _check_finite_weights(lambda_anchor, lambda_late)
    return Weights.for_mode(
        mode,
        defaults.LAMBDA_ANCHOR if lambda_anchor is None else lambda_anchor,
        defaults.LAMBDA_LATE if lambda_late is None else lambda_late,
    )


def _check_min_score(min_score: float | None) -> None:
    if min_score is not None and math.isnan(min_score):
        raise SmartError(ErrorKind.BAD_OPTION, "must be a number, not nan", option="min_score")


def _absolute(path) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _shown_file(path: str, origin: dict, roots: list[str]) -> bool:
    """Whether the web view may read ``path``: unchanged since indexing (same size and mtime,
    so not swapped for a link to another file) and, links resolved, under an indexed path."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if (st.st_size, st.st_mtime_ns) != (origin["size"], origin["mtime_ns"]):
        return False
    real = os.path.realpath(path)
    for root in roots:
        top = os.path.realpath(root)
        if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
            return True
    return False


def _load_judgments(load, path: str):
    try:
        return load(path)
    except OSError as exc:
        raise SmartError(ErrorKind.BAD_INPUT, f"{path}: {(exc.strerror or str(exc)).lower()}", path=path) from None


def _refuse_another_model(store: Store, spec: str | None) -> None:
    """A store keeps its first model: another model id is refused at once, before it is looked
    for (a folder is loaded and compared by fingerprint: it may hold the same model)."""
    from smartcli.errors import ModelMismatch

    stored = store.model
    if stored is None or spec is None or spec == stored.spec or os.path.isdir(spec):
        return
    raise ModelMismatch(f"{store.root} was built with model {stored.name!r}, not {spec!r}")


def _roots_to_index(store: Store, paths) -> list[str]:
    """The absolute paths to index: ``paths``, or with None the paths the store covers."""
    if paths is None:
        roots = store.roots
        if not roots:
            raise SmartError(ErrorKind.BAD_INPUT, "no paths given, and this index covers none yet", reason="no_paths")
        return roots
    roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
    _check_roots(store, roots)
    return roots


def _refuse_nothing_indexable(plan, roots: list[str]) -> None:
    """Paths under which every file is of a type that cannot be indexed (only .txt and .md files,
    say), and where the store holds nothing, are a mistake: a BAD_INPUT error, before any change."""
    from smartcli.ingest.discovery import describe_suffixes

    found = plan.new or plan.changed or plan.moved or plan.copied or plan.touched or plan.unchanged or plan.duplicates
    if found or plan.removed or plan.skipped or not plan.not_indexable:
        return
    where = roots[0] if len(roots) == 1 else f"{len(roots)} paths"
    raise SmartError(
        ErrorKind.BAD_INPUT,
        f"no indexable files under {where} (not indexable: {describe_suffixes(plan.not_indexable)}); nothing was indexed",
        reason="nothing_indexable",
        not_indexable=dict(plan.not_indexable.most_common()),
    )


def _check_roots(store: Store, roots: list[str]) -> None:
    """A path that does not exist is a mistake (a typo), unless the store indexed files there
    (then its files are gone and the run removes them)."""
    known = store.roots
    for root in roots:
        if os.path.lexists(root):
            continue
        prefix = root.rstrip(os.sep) + os.sep
        if any(k == root or root.startswith(k.rstrip(os.sep) + os.sep) or k.startswith(prefix) for k in known):
            continue
        raise SmartError(ErrorKind.BAD_INPUT, f"{root}: no such file or directory", path=root)


def _remove_if_empty(root: Path) -> None:
    """Delete a store directory holding no file (only what creating it wrote)."""
    import shutil

    try:
        with Store.open(root, verify=False) as store:
            if reads.files(store):
                return
    except (SmartError, sqlite3.DatabaseError, OSError):
        pass
    if root.is_dir() and set(os.listdir(root)) <= STORE_NAMES and not any((root / SEGMENT_DIR).glob("*")):
        shutil.rmtree(root, ignore_errors=True)


def _create(root: Path) -> None:
    """An empty store at ``root``; when another writer holds it, that writer is creating it."""
    try:
        with Store.open_for_writing(root):
            pass
    except SmartError as exc:
        if exc.kind is not ErrorKind.STORE_BUSY:
            raise


_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


@contextlib.contextmanager
def _opened(root: Path, open_store):
    """The store ``open_store()`` gives, closed afterwards; a damaged catalog (an sqlite error at
    any point) is reported as :class:`StoreDamaged`."""
    try:
        store = open_store()
    except sqlite3.DatabaseError as exc:
        raise damaged_catalog(root, exc) from None
    try:
        yield store
    except sqlite3.DatabaseError as exc:
        raise damaged_catalog(root, exc) from None
    except OSError as exc:  # writing a segment (h5py) or the catalog's files
        if exc.errno in _STORAGE_ERRNOS or free_bytes(root) < LOW_SPACE_BYTES:
            raise storage_error(root, exc) from None
        raise
    finally:
        store.close()


def _reading(root: Path, verify: bool = True):
    return _opened(root, lambda: Store.open(root, verify=verify))


def _writing(root: Path, wait: bool, rebuild: bool, on_wait):
    """The store opened for writing, under its lock."""
    return _opened(root, lambda: Store.open_for_writing(root, wait=wait, rebuild=rebuild, on_wait=on_wait))


def _ocr_for_model(settings, info):
    """OCR is for text models: a store of a model that reads pixels pictures its pages instead."""
    if info is not None and info.consumes_pixels:
        return replace(settings, mode="never")
    return settings


def _old_text(store: Store, settle: bool = True) -> set[str]:
    """Files to read again although unchanged: their text was normalized by an older version
    (text models only: a pixel model's vectors do not depend on the text)."""
    model = store.model
    if model is None or model.consumes_pixels:
        return set()
    return reads.paths_with_old_text(store, settle)


def _awaiting_ocr(store: Store, settings) -> set[str]:
    """Files to read again although unchanged: text-less pages OCR can read now."""
    from smartcli.store.notes import AWAITING_OCR

    return reads.paths_awaiting_ocr(store, AWAITING_OCR) if settings.available else set()


class _LazyEncoder:
    """Loads the model (and binds it to the store) the first time something must be encoded.

    A run that only moves, copies or removes files never pays for loading the model.
    """

    def __init__(self, store: Store, spec: str | None, device: str, token_dtype: str, options: dict | None = None):
        self.store, self.spec, self.device, self.token_dtype = store, spec, device, token_dtype
        self.options = options
        self._encoder = None

    def load(self):
        from smartcli.models.registry import load_encoder

        if self._encoder is None:
            encoder = load_encoder(self.spec, self.device, self.options)
            writes.bind_model(self.store, encoder.info, self.token_dtype)
            self._encoder = encoder
        return self._encoder

    @property
    def info(self):
        """The model's description: the stored one until the model itself is needed."""
        return self._encoder.info if self._encoder is not None else self.store.model

    def encode_documents(self, documents, batch_size: int | None = None):
        return self.load().encode_documents(documents, batch_size) if documents else []

    def __getattr__(self, name):
        # Anything else (default_batch_size, pixel_cap, max_pixels, ...) needs the real model.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)


def _collect_status(store: Store) -> Status:
    from smartcli.ingest.discovery import discover
    from smartcli.store.notes import Note

    stats = reads.stats(store)
    meta = store.meta
    model = store.model
    files = reads.files(store)
    modified = missing = 0
    for f in files:
        try:
            st = os.stat(f["path"])
        except OSError:
            missing += 1
            continue
        if (st.st_size, st.st_mtime_ns) != (f["size"], f["mtime_ns"]):
            modified += 1
    known = {f["path"] for f in files}
    roots = meta.get("roots", [])
    sources, _ = discover(roots) if roots else ([], [])
    new = sum(1 for s in sources if s.path not in known)
    encoded = stats["encoded_items"]
    not_encoded = stats["not_encoded"]
    by_language = reads.ocr_counts(store)
    return Status(
        store=str(store.root),
        model=model.name if model else None,
        model_spec=model.spec if model else None,
        model_fingerprint=model.fingerprint if model else None,
        dims=model.dims if model else None,
        token_dtype=store.token_dtype,
        roots=roots,
        files=stats["files"],
        skipped_files=stats["skipped_files"],
        items=stats["items"],
        encoded_items=encoded,
        not_encoded=not_encoded,
        ocr={
            "pages": sum(by_language.values()),
            "by_language": by_language,
            "missing_language_data": not_encoded.get(Note.OCR_MISSING_LANGUAGE.value, 0),
            "nothing_found": not_encoded.get(Note.OCR_NO_TEXT.value, 0),
            "unreadable": not_encoded.get(Note.OCR_UNREADABLE.value, 0),
        },
        tokens=stats["tokens"],
        shared_items=stats["shared_items"],
        segments=stats["segments"],
        garbage_rows=stats["garbage_rows"],
        retired_segments=stats["retired_segments"],
        bytes=stats["bytes"],
        bytes_per_item=round(stats["live_bytes"] / encoded) if encoded else None,
        updated=meta.get("updated"),
        changed_on_disk={"modified": modified, "missing": missing, "new": new},
        skipped=[{"path": f["path"], "code": f["code"], "detail": f["detail"], "reason": f["reason"]} for f in files if f["status"] == "skipped"],
        partly_indexed=[{"path": f["path"], "code": f["code"], "detail": f["detail"], "reason": f["reason"]} for f in files if f["status"] == "indexed" and f["reason"]],
        store_problems=integrity.check(store).sentences(),
        tuning=_tuning_status(store),
    )


def _tuning_status(store: Store) -> dict | None:
    from smartcli.store.tuning import read_tuning

    record = read_tuning(store)
    if record is None:
        return None
    keys = ("lambda_anchor", "lambda_late", "variant", "adapter", "trained", "pairs", "held_back_pairs", "held_back")
    return {key: record.get(key) for key in keys}
