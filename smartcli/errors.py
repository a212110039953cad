"""Errors the engine raises: each carries a kind, the CLI (or any caller) decides how to word it.

Messages say what happened in the engine's own terms (paths, model names, parameter names of
the Python API); they never name a command-line flag or suggest a command. Hints for people
belong to the presenter (``smartcli.cli.errors``).
"""

from __future__ import annotations

import enum


class ErrorKind(str, enum.Enum):
    STORE_MISSING = "store_missing"  # no store at the path
    STORE_EMPTY = "store_empty"  # a store with nothing indexed yet
    STORE_BUSY = "store_busy"  # another writer holds the store's lock
    STORE_DAMAGED = "store_damaged"  # catalog or segment files damaged or missing
    STORE_SCHEMA = "store_schema"  # written by another version of smart
    STORE_UNWRITABLE = "store_unwritable"  # the store cannot be created or changed here
    DISK_FULL = "disk_full"  # no space left on the store's disk (nothing was committed half)
    STORE_READ_ONLY = "store_read_only"  # the store is on a read-only file system (it can still be searched)
    PERMISSION_DENIED = "permission_denied"  # this user may not read or change the store
    STORE_IO = "store_io"  # the disk failed a read or write (not a sign of a damaged store)
    STORE_FOREIGN = "store_foreign"  # a non-empty directory that is not a smart store
    MODEL_MISMATCH = "model_mismatch"  # the store was built with another model
    MODEL_LOAD = "model_load"  # the model cannot be loaded (or the device is unavailable)
    BAD_OPTION = "bad_option"  # a setting the engine cannot take; ``option`` names it
    BAD_INPUT = "bad_input"  # an input file (query picture, judgments) that cannot be used
    NOT_FOUND = "not_found"  # a page or file asked for is not in the index
    BACKEND_UNAVAILABLE = "backend_unavailable"  # a search engine (Qdrant) cannot be reached or refused a request
    MISSING_DEPENDENCY = "missing_dependency"  # an optional package is not installed; ``package`` and ``extra`` name it
    WORKER_FAILED = "worker_failed"  # a worker process (the sandboxed reader, OCR) could not start; no file was marked


class SmartWarning(UserWarning):
    """Something a caller should hear about that did not stop the work (a query cut to the
    length cap, a damaged tuning searched without). Issued with :func:`warnings.warn`; the CLI
    prints each as one line. ``details`` hold facts a presenter may word (``part``, ``reason``)."""

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.details = details


class SmartError(Exception):
    """An engine error: ``kind`` says what class of problem, ``str(exc)`` what happened.

    ``option`` names the API parameter a BAD_OPTION is about; ``details`` holds facts a
    presenter may word (e.g. ``roots`` of a damaged store, for the rebuild hint).
    """

    def __init__(self, kind: ErrorKind, message: str, option: str | None = None, **details):
        super().__init__(message)
        self.kind = kind
        self.option = option
        self.details = details


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when it has none), at most ``limit`` characters."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class _KindedError(SmartError):
    """A SmartError whose class fixes its kind (so callers may catch the class)."""

    default_kind: ErrorKind

    def __init__(self, message: str, option: str | None = None, kind: ErrorKind | None = None, **details):
        super().__init__(kind or self.default_kind, message, option, **details)


class StoreError(_KindedError):
    """The store is missing, damaged, busy, of another schema or another model."""

    default_kind = ErrorKind.STORE_DAMAGED


class StoreMissing(StoreError):
    default_kind = ErrorKind.STORE_MISSING


class StoreBusy(StoreError):
    default_kind = ErrorKind.STORE_BUSY


class StoreDamaged(StoreError):
    default_kind = ErrorKind.STORE_DAMAGED


class ModelMismatch(StoreError):
    default_kind = ErrorKind.MODEL_MISMATCH


class ModelLoadError(_KindedError):
    """The model could not be loaded; ``str(exc)`` says why."""

    default_kind = ErrorKind.MODEL_LOAD


class OptionError(_KindedError):
    """A setting the engine cannot take (``option`` names the parameter)."""

    default_kind = ErrorKind.BAD_OPTION


class QueryError(SmartError):
    """A query that cannot be searched (BAD_INPUT): ``details["reason"]`` a code of
    ``smartcli.search.queries``, ``details["index"]`` its position among the queries asked together."""

    def __init__(self, message: str, reason: str, index: int = 0):
        super().__init__(ErrorKind.BAD_INPUT, message, reason=reason, index=index)
