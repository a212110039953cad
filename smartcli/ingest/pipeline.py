"""`smart index` from start to finish, on a store opened for writing.

A run plans (planning.py: new, changed, moved, copied, gone, unchanged), loads the model only
when something must be encoded, reads and encodes in committed batches (indexer.py, with OCR
from ocr.py), records the roots, and compacts when enough rows are dead. The front door opens
the store and calls :func:`update` or :func:`plan`; nothing here calls back into it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from smartcli import defaults
from smartcli.errors import ErrorKind, ModelMismatch, OptionError, SmartError
from smartcli.ingest.events import UpdateEvents
from smartcli.ingest.indexer import IndexSummary
from smartcli.ingest.planning import Plan
from smartcli.store.catalog import Store, reads, writes


@dataclass(frozen=True)
class UpdateOptions:
    """How :meth:`Index.update` reads and encodes (``smart index``'s options), checked once here.

    ``read_timeout`` and ``read_memory`` bound each file's reader process: a file past either is
    skipped, and not read again until it changes."""

    ocr: str = defaults.OCR_MODE
    ocr_lang: str = defaults.OCR_LANGUAGE
    ocr_workers: int = defaults.OCR_WORKERS
    batch_pages: int = defaults.BATCH_PAGES
    batch_size: int | None = None  # None: the model's own (defaults.TEXT_BATCH_SIZE for text models)
    precision: str | None = None  # "int8", "fp32" or "auto"; None: the store's, else defaults.PRECISION
    dpi: float | None = None
    max_pixels: int | None = None
    rebuild: bool = False
    wait: bool = False
    read_timeout: float = defaults.READ_TIMEOUT_SECONDS
    read_memory: int = defaults.READ_MEMORY_BYTES
    token_pooling: float | None = None  # Ward distance (store/pooling.py), 0: none; None: the store's, else 0

    def __post_init__(self):
        from smartcli.ingest.ocr import check_ocr_options

        check_ocr_options(self.ocr, self.ocr_lang)
        _at_least(0, ocr_workers=self.ocr_workers)
        _at_least(1, batch_pages=self.batch_pages, batch_size=self.batch_size, max_pixels=self.max_pixels, read_memory=self.read_memory)
        _positive(dpi=self.dpi, read_timeout=self.read_timeout)
        if self.token_pooling is not None and not 0 <= self.token_pooling < float("inf"):
            raise OptionError(f"must be a number of at least 0, not {self.token_pooling}", option="token_pooling")


def _at_least(low: int, **values) -> None:
    for option, value in values.items():
        if value is not None and value < low:
            raise OptionError(f"must be at least {low}, not {value}", option=option)


def _positive(**values) -> None:
    for option, value in values.items():
        if value is not None and not value > 0:
            raise OptionError(f"must be a positive number, not {value}", option=option)


def update(
    store: Store, paths, options: UpdateOptions, model_spec: str | None, device: str, token_dtype: str, events: UpdateEvents
) -> IndexSummary:
    """Bring ``store`` up to date with the files under ``paths`` (None: the paths it covers)."""
    from smartcli.ingest.ocr import resolve_settings

    settings = resolve_settings(options.ocr, options.ocr_lang, options.ocr_workers)
    roots = roots_to_index(store, paths)
    summary = _run(store, roots, settings, options, model_spec, device, token_dtype, events)
    store.finish_rebuild()
    return summary


def plan(store: Store, paths, options: UpdateOptions) -> Plan:
    """What :func:`update` would do, changing nothing."""
    from smartcli.ingest.ocr import resolve_settings
    from smartcli.ingest.planning import plan_changes

    settings = resolve_settings(options.ocr, options.ocr_lang)
    roots = roots_to_index(store, paths)
    reread = _awaiting_ocr(store, _ocr_for_model(settings, store.model)) | _old_text(store, settle=False)
    return plan_changes(store, roots, reread)[0]


def _run(store: Store, roots, settings, options: UpdateOptions, model_spec, device, token_dtype, events: UpdateEvents) -> IndexSummary:
    from smartcli.ingest.indexer import CommitCounter, Indexer
    from smartcli.ingest.ocr import OcrRunner
    from smartcli.ingest.planning import UNMOUNTED, plan_changes

    settings = _ocr_for_model(settings, store.model)
    old_text = _old_text(store)
    plan, hashes = plan_changes(store, roots, _awaiting_ocr(store, settings) | old_text)
    _refuse_nothing_indexable(plan, roots)
    events.planned(plan)
    renormalized = sum(1 for s in plan.to_encode + plan.duplicates if s.path in old_text)
    if renormalized:
        events.message(f"{renormalized} file(s) were indexed with an older text normalization: reading and encoding them again")
    spec = model_spec or (store.model.spec if store.model else None)
    encoder = LazyEncoder(store, spec, device, token_dtype, _encoder_options(store, spec, options), options.token_pooling or 0.0)
    _refuse_another_model(store, model_spec)
    _refuse_other_pooling(store, options.token_pooling)
    if model_spec is not None or (plan.to_encode and store.model is None):
        encoder.load()  # check the model against the store, or bind a new store's model, before any change
    batch_size = options.batch_size
    if batch_size is None:
        batch_size = encoder.default_batch_size if plan.to_encode else defaults.TEXT_BATCH_SIZE
    settings = _ocr_for_model(settings, encoder.info)
    limits = {"timeout": options.read_timeout, "memory_bytes": options.read_memory}
    runner = OcrRunner(settings, report=events.message, on_queued=events.ocr_queued, on_done=events.ocr_done, **limits)
    with runner:
        indexer = Indexer(
            store,
            encoder,
            batch_pages=options.batch_pages,
            encode_batch_size=batch_size,
            report=events.message,
            ocr=runner,
            read_timeout=options.read_timeout,
            read_memory=options.read_memory,
        )
        if events.wants_progress and plan.to_encode:
            counter = CommitCounter(indexer.count_pages(plan.to_encode), events.committed)
            events.started(counter.total)
            indexer.on_commit = counter
            indexer.on_encoded = events.encoded
        summary = indexer.run(plan, hashes, progress=events.pages_done)
    summary.not_indexable = plan.not_indexable
    writes.record_roots(store, roots)
    writes.record_mounts(store, roots, plan.mounts, [s.path for s in plan.skipped if s.reason == UNMOUNTED and s.path not in plan.mounts])
    summary.compaction = _compact_if_worth_it(store, events)
    summary.store = str(store.root)
    summary.ocr = runner.stats.as_json(settings)
    summary.renormalized = renormalized
    return summary


def _encoder_options(store: Store, spec: str | None, options: UpdateOptions) -> dict:
    """What the model is loaded with for this store: its render settings (pixel models) and the
    precision of its pages (text models); a store keeps its first run's (OptionError otherwise)."""
    from smartcli.ingest.pictures import render_options
    from smartcli.models.registry import document_precision

    settings = render_options(store.model, spec, dpi=options.dpi, max_pixels=options.max_pixels)
    return {**settings, "precision": document_precision(store.model, spec, options.precision)}


def _compact_if_worth_it(store: Store, events: UpdateEvents) -> dict | None:
    from smartcli.store.compaction import compact, needs_compaction

    if not needs_compaction(store):
        return None
    compacted = compact(store)
    for d in compacted.damaged:  # never copied into a new segment: said, and left as it is
        events.message(
            f"segment {d.segment}.h5 is damaged ({d.dataset + ': ' if d.dataset else ''}{d.problem}): left out of the compaction, as it is"
        )
    return compacted.as_json()


def roots_to_index(store: Store, paths) -> list[str]:
    """The absolute paths to index: ``paths``, or with None the paths the store covers."""
    if paths is None:
        roots = store.roots
        if not roots:
            raise SmartError(ErrorKind.BAD_INPUT, "no paths given, and this index covers none yet", reason="no_paths")
        return roots
    roots = [os.path.abspath(os.path.expanduser(os.fspath(p))) for p in paths]
    _check_roots(store, roots)
    return roots


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


def _refuse_nothing_indexable(plan: Plan, roots: list[str]) -> None:
    """Paths under which no file can be indexed (an empty folder, or only .txt and .md files, say),
    and where the store holds nothing, are a mistake: a BAD_INPUT error, before any change (the
    paths are not recorded)."""
    from smartcli.ingest.discovery import describe_suffixes

    found = plan.new or plan.changed or plan.moved or plan.copied or plan.touched or plan.unchanged or plan.duplicates
    if found or plan.removed or plan.skipped:
        return
    where = roots[0] if len(roots) == 1 else f"{len(roots)} paths"
    holds = f"not indexable: {describe_suffixes(plan.not_indexable)}" if plan.not_indexable else "no files at all"
    raise SmartError(
        ErrorKind.BAD_INPUT,
        f"no indexable files under {where} ({holds}); nothing was indexed",
        reason="nothing_indexable",
        not_indexable=dict(plan.not_indexable.most_common()),
    )


def _refuse_another_model(store: Store, spec: str | None) -> None:
    """A store keeps its first model: another model id is refused at once, before it is looked
    for (a folder is loaded and compared by fingerprint: it may hold the same model)."""
    stored = store.model
    if stored is None or spec is None or spec == stored.spec or os.path.isdir(spec):
        return
    raise ModelMismatch(f"{store.root} was built with model {stored.name!r}, not {spec!r}")


def _refuse_other_pooling(store: Store, token_pooling: float | None) -> None:
    """A store keeps its first run's token pooling (its pages must be pooled alike): another is refused."""
    if store.model is None or token_pooling is None or float(token_pooling) == store.token_pooling:
        return
    kept = f"pools token states at {store.token_pooling:g}" if store.token_pooling else "does not pool token states"
    raise OptionError(f"this store {kept}, kept from its first run; a rebuild indexes everything anew", option="token_pooling")


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


class LazyEncoder:
    """Loads the model (and binds it to the store) the first time something must be encoded.

    A run that only moves, copies or removes files never pays for loading the model.
    """

    def __init__(
        self, store: Store, spec: str | None, device: str, token_dtype: str, options: dict | None = None, token_pooling: float = 0.0
    ):
        self.store, self.spec, self.device, self.token_dtype = store, spec, device, token_dtype
        self.token_pooling = token_pooling
        self.options = options
        self._encoder = None

    def load(self):
        from smartcli.models.registry import load_encoder

        if self._encoder is None:
            encoder = load_encoder(self.spec, self.device, self.options)
            writes.bind_model(self.store, encoder.info, self.token_dtype, self.token_pooling)
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
