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
import os
import sqlite3
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError, StoreError, StoreMissing
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Hit, Scope
from smartcli.store.catalog import CATALOG, Store, check_same_model, damaged_catalog, default_store_path

__all__ = ["Index", "UpdateEvents", "Status", "Scope", "Weights", "Hit"]


class UpdateEvents:
    """What an :meth:`Index.update` run tells its caller while it works (all optional).

    Subclass and override: ``message`` gets one-line reports (a skipped file, a page OCR
    could not read); with ``wants_progress`` set, ``started(total_pages)`` comes once the
    run is planned, then ``pages_done(n)``; OCR work is announced by ``ocr_queued(n)`` and
    ``ocr_done(n)``; ``waiting()`` when another writer holds the store and ``wait`` is set.
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
    skipped: list[dict] = field(default_factory=list)
    partly_indexed: list[dict] = field(default_factory=list)
    store_problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.store_problems

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
    ):
        self.path = path
        self._model_spec = model
        self.device = device
        self.token_dtype = token_dtype
        self.candidates = candidates
        self.chunk_size = chunk_size
        self.warm = warm
        self._searcher = None

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
    ) -> "Index":
        """Open the store at ``path`` (default: ``$SMART_STORE``, else the XDG data folder).

        ``create`` makes an empty store when there is none; without it a missing store raises
        :class:`~smartcli.errors.StoreMissing`. ``model`` (a Hugging Face id or a folder; the
        packaged MiniLM by default) is the model a new store is built with; a store keeps its
        first model. ``candidates`` is the two-stage search's shortlist (None: score every page);
        ``warm`` keeps token states in memory between queries (for long-lived processes).
        """
        from smartcli.store.formats import TOKEN_FORMATS

        if token_dtype not in TOKEN_FORMATS:
            raise SmartError(ErrorKind.BAD_OPTION, f"must be one of {', '.join(TOKEN_FORMATS)}, not {token_dtype!r}", option="token_dtype")
        root = Path(os.path.expanduser(os.fspath(path))) if path is not None else default_store_path()
        if not (root / CATALOG).exists():
            if not create:
                raise StoreMissing(f"no index at {root}")
            _create(root)
        return cls(root, model, device, token_dtype, candidates, chunk_size, warm)

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
        paths: Iterable[str | os.PathLike],
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
    ):
        """Bring the store up to date with the files under ``paths`` (``smart index``).

        New and changed files are read and encoded, moved and copied ones recognized, gone
        ones removed, text-less pages OCR'd (``ocr``: auto, always or never); every batch is
        committed whole. Returns an :class:`~smartcli.ingest.indexer.IndexSummary`.
        """
        from smartcli.ingest.ocr import resolve_settings

        events = events or UpdateEvents()
        settings = resolve_settings(ocr, ocr_lang, ocr_workers)
        roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
        with self._writer(wait, rebuild, events) as store:
            summary = self._update(store, roots, settings, batch_pages, batch_size, dpi, max_pixels, events)
        return summary

    def plan(self, paths: Iterable[str | os.PathLike], *, ocr: str = defaults.OCR_MODE, ocr_lang: str = defaults.OCR_LANGUAGE, wait: bool = False):
        """What :meth:`update` would do, changing nothing: a :class:`~smartcli.ingest.planning.Plan`."""
        from smartcli.ingest.ocr import resolve_settings
        from smartcli.ingest.planning import plan_changes

        settings = resolve_settings(ocr, ocr_lang)
        roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
        with self._writer(wait, False, UpdateEvents()) as store:
            return plan_changes(store, roots, _awaiting_ocr(store, _ocr_for_model(settings, store.model)))[0]

    def _update(self, store, roots, settings, batch_pages, batch_size, dpi, max_pixels, events):
        from smartcli.ingest.indexer import Indexer, total_pages
        from smartcli.ingest.ocr import OcrRunner
        from smartcli.ingest.pictures import render_options
        from smartcli.ingest.planning import plan_changes
        from smartcli.store.compaction import compact, needs_compaction

        settings = _ocr_for_model(settings, store.model)
        plan, hashes = plan_changes(store, roots, _awaiting_ocr(store, settings))
        spec = self._model_spec or (store.model.spec if store.model else None)
        options = render_options(store.model, spec, dpi=dpi, max_pixels=max_pixels)
        encoder = _LazyEncoder(store, spec, self.device, self.token_dtype, options)
        if self._model_spec is not None or (plan.to_encode and store.model is None):
            encoder.load()  # check the model against the store, or bind a new store's model, before any change
        if batch_size is None:
            batch_size = encoder.default_batch_size if plan.to_encode else defaults.TEXT_BATCH_SIZE
        settings = _ocr_for_model(settings, encoder.info)
        if events.wants_progress and plan.to_encode:
            events.started(total_pages(plan.to_encode) + len(plan.copied) + len(plan.duplicates))
        runner = OcrRunner(settings, report=events.message, on_queued=events.ocr_queued, on_done=events.ocr_done)
        with runner:
            indexer = Indexer(store, encoder, batch_pages=batch_pages, encode_batch_size=batch_size, report=events.message, ocr=runner)
            summary = indexer.run(plan, hashes, progress=events.pages_done)
        store.record_roots(roots)
        if needs_compaction(store):
            summary.compaction = compact(store).as_json()
        summary.store = str(store.root)
        summary.ocr = runner.stats.as_json(settings)
        return summary

    def _writer(self, wait: bool, rebuild: bool, events: UpdateEvents):
        return _writing(self.path, wait, rebuild, events.waiting)

    def compact(self, *, wait: bool = False):
        """Rewrite segments to drop the rows of removed and replaced files (``smart compact``).

        Returns a :class:`~smartcli.store.compaction.CompactionResult`; its ``segments`` and
        ``bytes`` say what the store holds afterwards.
        """
        from smartcli.store.compaction import compact

        with self._writer(wait, False, UpdateEvents()) as store:
            result = compact(store)
            stats = store.stats()
        result.segments, result.bytes = stats["segments"], stats["bytes"]
        return result

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
        """:meth:`search` for several queries at once (they share each read of the token states)."""
        weights = _weights(mode, lambda_anchor, lambda_late)
        searcher = self._current(with_encoder=True)
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
        a NOT_FOUND :class:`~smartcli.errors.SmartError` when it is not encoded."""
        return self._current(with_encoder=False).find_item(_absolute(path), page)

    def like(self, path: str | os.PathLike, page: int | None = None, k: int = defaults.TOP_K, **options) -> list[Hit]:
        """More like this: pages ranked by similarity to an indexed page (its stored vectors;
        no model is loaded). The page itself is left out."""
        searcher = self._current(with_encoder=False)
        encoded, source = searcher.stored_query(_absolute(path), page)
        scope = options.pop("scope", Scope())
        scope = replace(scope, exclude=scope.exclude | {(source.path, source.page)})
        return self._search_encoded(searcher, encoded, source.text, k, scope=scope, **options)

    def _search_encoded(self, searcher, encoded, text, k, mode="smart", lambda_anchor=None, lambda_late=None, scope=Scope(), min_score=None):
        weights = _weights(mode, lambda_anchor, lambda_late)
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
            searcher.encoder = load_query_encoder(info.spec, self.device, info.extra)  # pixel models: the store's render settings
            check_same_model(info, searcher.encoder.info, self.path)
        if searcher.refresh(force) and searcher.encoder is not None:
            check_same_model(searcher.store.model, searcher.encoder.info, self.path)
        return searcher

    # -- looking at the store --------------------------------------------------------------------

    def status(self) -> Status:
        """What the store holds (``smart status``). A damaged store is still described: its
        problems are in ``store_problems``."""
        with _reading(self.path, verify=False) as store, store.read_snapshot():
            return _collect_status(store)

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
        configs = configs_to_run(
            defaults.LAMBDA_ANCHOR if lambda_anchor is None else lambda_anchor,
            defaults.LAMBDA_LATE if lambda_late is None else lambda_late,
            sweep,
        )
        return evaluate(self._current(with_encoder=True), judged, configs, k)


# -- helpers ---------------------------------------------------------------------------------------


def _weights(mode: str, lambda_anchor: float | None, lambda_late: float | None) -> Weights:
    return Weights.for_mode(
        mode,
        defaults.LAMBDA_ANCHOR if lambda_anchor is None else lambda_anchor,
        defaults.LAMBDA_LATE if lambda_late is None else lambda_late,
    )


def _absolute(path) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def _load_judgments(load, path: str):
    try:
        return load(path)
    except OSError as exc:
        raise SmartError(ErrorKind.BAD_INPUT, f"{path}: {(exc.strerror or str(exc)).lower()}", path=path) from None


def _create(root: Path) -> None:
    """An empty store at ``root``; when another writer holds it, that writer is creating it."""
    try:
        with Store.open_for_writing(root):
            pass
    except SmartError as exc:
        if exc.kind is not ErrorKind.STORE_BUSY:
            raise


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


def _awaiting_ocr(store: Store, settings) -> set[str]:
    """Files to read again although unchanged: text-less pages OCR can read now."""
    from smartcli.store.notes import AWAITING_OCR

    return store.paths_awaiting_ocr(AWAITING_OCR) if settings.available else set()


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
            self.store.bind_model(encoder.info, self.token_dtype)
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

    stats = store.stats()
    meta = store.meta
    model = store.model
    files = store.files()
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
    by_language = store.ocr_counts()
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
        skipped=[{"path": f["path"], "reason": f["reason"]} for f in files if f["status"] == "skipped"],
        partly_indexed=[{"path": f["path"], "reason": f["reason"]} for f in files if f["status"] == "indexed" and f["reason"]],
        store_problems=store.problems(),
    )
