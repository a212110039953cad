"""One query path for every backend.

A :class:`QuerySession` answers queries over a :class:`Backend`: the local store's snapshot
(searcher.py) or a Qdrant collection (qdrant.py). Whichever holds the pages, a query is
prepared the same way (cut to a length, normalised as page text is), checked the same way
(:class:`SearchOptions`), encoded by the same torch-free query encoder, weighted by the same
rules (the store's tuning, else the defaults) and ranked with copies of a file folded into one
hit; the backend only scores, ranks and explains.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from smartcli import defaults
from smartcli.errors import ErrorKind, OptionError, SmartError, SmartWarning, StoreError
from smartcli.models.base import Encoded, ModelInfo
from smartcli.search.queries import encode_queries
from smartcli.search.scoring import MODES, Weights
from smartcli.search.searcher import Hit, Scope
from smartcli.store.catalog import LiveItem
from smartcli.store.catalog.writes import check_same_model


@dataclass(frozen=True)
class SearchOptions:
    """What a search asks for (``smart search``'s options), checked once here.

    ``lambda_anchor`` and ``lambda_late`` None: the store's tuned weights, else the defaults; a
    weight is at most ``defaults.MAX_LAMBDA`` either way (its products with cosines stay finite).
    ``min_score`` is in the scale of ``mode``."""

    k: int = defaults.TOP_K
    mode: str = "smart"
    lambda_anchor: float | None = None
    lambda_late: float | None = None
    scope: Scope = Scope()
    min_score: float | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise OptionError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}", option="mode")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise OptionError(f"must be a whole number of at least 1, not {self.k!r}", option="k")
        for option in ("lambda_anchor", "lambda_late"):
            value = getattr(self, option)
            if value is not None and not math.isfinite(value):
                raise OptionError(f"must be a finite number, not {value}", option=option)
            if value is not None and abs(value) > defaults.MAX_LAMBDA:
                raise OptionError(
                    f"must be between -{defaults.MAX_LAMBDA:,.0f} and {defaults.MAX_LAMBDA:,.0f}, not {value:g}", option=option
                )
        if self.min_score is not None and math.isnan(self.min_score):
            raise OptionError("must be a number, not nan", option="min_score")

    @classmethod
    def of(cls, options: SearchOptions | None, k: int | None = None, **fields) -> SearchOptions:
        """``options`` (or the defaults) with ``k`` and ``fields`` changed: the keyword form of the
        library's search methods."""
        if k is not None:
            fields["k"] = k
        return replace(options or cls(), **fields)


class Backend(Protocol):
    """Where the pages are: what a session asks of the local store and of a Qdrant collection."""

    path: str  # the store or collection, as messages name it
    textual: bool  # token states map back to the page text (False for pixel models)

    @property
    def model(self) -> ModelInfo: ...

    def __len__(self) -> int: ...

    def refresh(self, force: bool = False) -> bool:
        """Take a new snapshot when the pages changed (or anyway with ``force``); True when it did."""

    def tuning_record(self) -> dict | None:
        """What ``smart tune`` recorded for these pages (None: untuned)."""

    def adapter(self, record: dict):
        """The query adapter ``record`` names, or None."""

    def search_encoded(
        self,
        encoded: list[Encoded],
        weights: Weights,
        k: int,
        texts: list[str] | None = None,
        scope: Scope = Scope(),
        min_score: float | None = None,
    ) -> list[list[Hit]]:
        """Each query's top ``k`` hits, copies folded (``fold_copies``), explained."""

    def stored_query(self, path: str, page: int | None, named: str | None = None) -> tuple[Encoded, LiveItem]: ...

    def find_item(self, path: str, page: int | None, named: str | None = None) -> LiveItem: ...

    def close(self) -> None: ...


class QuerySession:
    """Queries over one backend, opened on first use, with the model loaded on the first query."""

    def __init__(self, open_backend: Callable[[], Backend], device: str = defaults.DEVICE, tuned: bool = True):
        self._open_backend = open_backend
        self.device = device
        self.tuned = tuned
        self._backend: Backend | None = None
        self._base_encoder = None
        self.encoder = None  # the base encoder, through the store's adapter when it has one
        self._record: dict | None = None  # the backend's tuning record as last read
        self._tuning: dict | None = None  # the record in use (None: untuned, or the record is damaged)
        self._tuning_read = False  # False: read the record (again) before the next query
        self._adapter = None

    # -- the backend and the model -----------------------------------------------------------

    def current(self, with_encoder: bool = False, force: bool = False) -> Backend:
        """The backend, refreshed to its last committed snapshot, with the model loaded when
        ``with_encoder``."""
        if self._backend is None:
            self._backend = self._open_backend()
        backend = self._backend
        if with_encoder and self._base_encoder is None:
            from smartcli.models.registry import load_query_encoder

            info = backend.model
            encoder = load_query_encoder(info.spec, self.device, info.extra)  # pixel models: the stored render settings
            check_same_model(info, encoder.info, backend.path)
            self._base_encoder = encoder
        if backend.refresh(force) and self._base_encoder is not None:
            check_same_model(backend.model, self._base_encoder.info, backend.path)
        self._follow_tuning(backend)
        return backend

    def _follow_tuning(self, backend: Backend) -> None:
        """Use the backend's current tuning record: its weights, and its adapter on query tokens.
        A damaged tuning is not used (untuned search), with one warning each time it is read."""
        from smartcli.search.tuning import AdaptedEncoder

        record = backend.tuning_record() if self.tuned else None
        if record != self._record or not self._tuning_read:
            self._record, self._tuning_read = record, True
            self._tuning, self._adapter = self._usable_tuning(backend, record)
        if self._base_encoder is not None:
            self.encoder = self._base_encoder if self._adapter is None else AdaptedEncoder(self._base_encoder, self._adapter)

    @staticmethod
    def _usable_tuning(backend: Backend, record: dict | None) -> tuple[dict | None, object]:
        """(the record, its adapter), or (None, None) when untuned or the tuning is damaged."""
        from smartcli.store.tuning import TuningDamaged

        if not record:
            return None, None
        try:
            return record, backend.adapter(record)
        except TuningDamaged as exc:
            warnings.warn(SmartWarning(f"{exc}; searching untuned", **exc.details), stacklevel=2)
            return None, None

    def tuning_changed(self) -> None:
        """The store's tuning was written or cleared: read it again before the next query."""
        self._tuning_read = False

    def weights(self, options: SearchOptions) -> Weights:
        """The weights asked for; what is not asked for comes from the store's tuning (on the
        defaults' scale, also a record of a version that kept late-only as 0/1), else the defaults."""
        from smartcli.search.tuning import on_default_scale

        tuned = Weights(defaults.LAMBDA_ANCHOR, defaults.LAMBDA_LATE)
        if self._tuning:
            tuned = on_default_scale(Weights(self._tuning["lambda_anchor"], self._tuning["lambda_late"]))
        lambda_anchor = options.lambda_anchor if options.lambda_anchor is not None else tuned.lambda_anchor
        lambda_late = options.lambda_late if options.lambda_late is not None else tuned.lambda_late
        return Weights.for_mode(options.mode, lambda_anchor, lambda_late)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def __len__(self) -> int:
        return len(self.current())

    # -- queries -----------------------------------------------------------------------------

    def search_many(self, queries: Sequence[str], options: SearchOptions) -> list[list[Hit]]:
        """The top hits of each query (a query longer than ``defaults.MAX_QUERY_TOKENS`` tokens is
        cut to them, with a :class:`~smartcli.errors.SmartWarning`). A query that cannot be
        searched raises :class:`~smartcli.search.queries.QueryError` (``details["index"]`` says
        which) before any is scored."""
        self.current(with_encoder=True)
        texts, encoded = encode_queries(self.encoder, queries)
        return self._ranked(encoded, texts, options)

    def search_image(self, load_picture: Callable[[int | None], object], options: SearchOptions) -> list[Hit]:
        """Pages like a picture (backends of an image model); ``load_picture(pixel_cap)`` reads it."""
        self.current(with_encoder=True)
        encoder = self._base_encoder
        if not encoder.info.consumes_pixels:
            raise SmartError(
                ErrorKind.BAD_INPUT,
                f"image queries need a store built with an image model; this one uses {encoder.info.name}, which reads text",
            )
        encoded = encoder.encode_documents([load_picture(encoder.pixel_cap)])
        return self._ranked(encoded, None, options)[0]

    def like(self, path: str | os.PathLike, page: int | None, options: SearchOptions) -> list[Hit]:
        """Pages like an indexed page: its stored vectors as the query (no model is loaded), the page
        itself left out."""
        backend = self.current()
        encoded, source = backend.stored_query(absolute(path), page, os.fspath(path))
        options = replace(options, scope=replace(options.scope, exclude=options.scope.exclude | {(source.path, source.page)}))
        return self._ranked([encoded], [source.text], options)[0]

    def item(self, path: str | os.PathLike, page: int | None) -> LiveItem:
        return self.current().find_item(absolute(path), page, os.fspath(path))

    def _ranked(self, encoded: list[Encoded], texts: list[str] | None, options: SearchOptions) -> list[list[Hit]]:
        weights = self.weights(options)
        backend = self.current()
        try:
            return backend.search_encoded(encoded, weights, options.k, texts=texts, scope=options.scope, min_score=options.min_score)
        except StoreError:
            # A compaction deleted segments this snapshot still read: take a new one, once.
            backend = self.current(force=True)
            return backend.search_encoded(encoded, weights, options.k, texts=texts, scope=options.scope, min_score=options.min_score)


def absolute(path: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))
