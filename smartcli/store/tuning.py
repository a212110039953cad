"""What `tune` learned for a store: fusion weights and, optionally, a query-side adapter.

The catalog's ``meta`` row ``tuning`` holds the record (codes and numbers, no sentences)::

    {"format": 1, "model_fingerprint": ..., "lambda_anchor": ..., "lambda_late": ...,
     "adapter": "tuning/adapter-<id>.npz" | null, "adapter_sha256": ..., "adapter_bytes": ...,
     "variant": "query" | null, "init": "identity" | "pca" | null, "trained": <time>, ...}

The adapter's weights live in a small ``.npz`` file the record names (a LayerNorm's gain and bias,
a Linear's weight and bias: about 0.6 MB for a 384-dimension model). The file is written under a
temporary name, fsynced and renamed before the catalog names it, like a segment, and the record
keeps its size and SHA-256: the adapter is part of the store, checked whenever it is loaded and
by ``smart status --verify``. A damaged tuning (a missing, cut, changed or unreadable adapter,
weights no search can use) raises :class:`TuningDamaged`; searches then go on untuned.

Adapter files the record does not name are deleted by the next tune or reset (after the segments'
grace time, so a search that read the old record can still load its adapter); only files with
the names tune gives are ever deleted.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError
from smartcli.store.catalog import Store
from smartcli.store.catalog.retirement import SEGMENT_GRACE_SECONDS
from smartcli.store.catalog.schema import TUNING_KEY
from smartcli.store.catalog.writes import clear_tuning_record, write_tuning_record
from smartcli.store.segments import fsync_dir

TUNING_FORMAT = 1
TUNING_DIR = "tuning"
_ARRAYS = ("ln_weight", "ln_bias", "weight", "bias")
# The names tune gives its files (and their temporary names): nothing else in tuning/ is its own.
_OWN_FILE = re.compile(r"(\.tmp-)?adapter-[0-9a-f]{12}\.npz")
# No adapter tune trains comes near this (a LayerNorm gain about 1, a Linear about 0.1): values
# past it are damage, also in files written before the record kept a checksum.
ADAPTER_MAX_ABS = 1e3

# Why a tuning is damaged (TuningDamaged's ``reason``).
MISSING, UNREADABLE, CHECKSUM, MALFORMED, BAD_VALUES, BAD_WEIGHTS = (
    "missing",
    "unreadable",
    "checksum",
    "malformed",
    "bad_values",
    "bad_weights",
)


class TuningDamaged(SmartError):
    """The store's tuning cannot be used (STORE_DAMAGED, ``part="tuning"``): ``reason`` one of the
    codes above, ``adapter`` the file's name in the store (None: the record's weights)."""

    def __init__(self, message: str, reason: str, adapter: str | None):
        super().__init__(ErrorKind.STORE_DAMAGED, message, part="tuning", reason=reason, adapter=adapter)


@dataclass
class Adapter:
    """Query-side adapter: ``normalize(x + Linear(LayerNorm(x)))``; the identity when the Linear is zero."""

    ln_weight: np.ndarray  # [D]
    ln_bias: np.ndarray  # [D]
    weight: np.ndarray  # [D, D]
    bias: np.ndarray  # [D]
    eps: float = 1e-5

    @classmethod
    def identity(cls, dims: int) -> Adapter:
        return cls(np.ones(dims, np.float32), np.zeros(dims, np.float32), np.zeros((dims, dims), np.float32), np.zeros(dims, np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Map token states ``x`` [n, D] (unit rows) to unit rows."""
        x = np.asarray(x, np.float32)
        mean = x.mean(axis=-1, keepdims=True)
        var = x.var(axis=-1, keepdims=True)
        normed = (x - mean) / np.sqrt(var + self.eps) * self.ln_weight + self.ln_bias
        y = x + normed @ self.weight.T + self.bias
        return (y / np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def read_tuning(store: Store) -> dict | None:
    """The store's tuning record, or None (untuned, or tuned for another model)."""
    record = store.meta.get(TUNING_KEY)
    if not record or record.get("format") != TUNING_FORMAT:
        return None
    model = store.model
    if model is None or record.get("model_fingerprint") != model.fingerprint:
        return None
    return record


def load_adapter(store: Store, record: dict) -> Adapter | None:
    """The adapter ``record`` names (None when it names none), checked: raises
    :class:`TuningDamaged` when the record's weights or its adapter file cannot be used."""
    check_weights(record)
    name = record.get("adapter")
    if not name:
        return None
    data = _adapter_bytes(store, record)
    try:
        with np.load(io.BytesIO(data)) as arrays:
            adapter = Adapter(*(arrays[key].astype(np.float32) for key in _ARRAYS))
    except Exception as exc:  # a damaged .npz fails in zipfile, numpy's format reader or a missing key
        raise _damaged(name, MALFORMED, f"is not a readable adapter file ({type(exc).__name__})") from None
    _check_arrays(name, adapter, store.model.dims if store.model else None)
    return adapter


def tuning_problem(store: Store) -> TuningDamaged | None:
    """What is wrong with the store's tuning (None: untuned, or usable); reads the adapter whole."""
    record = read_tuning(store)
    if record is None:
        return None
    try:
        load_adapter(store, record)
    except TuningDamaged as exc:
        return exc
    return None


def check_weights(record: dict) -> None:
    for key in ("lambda_anchor", "lambda_late"):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > defaults.MAX_LAMBDA:
            raise TuningDamaged(f"the store's tuning record holds a {key} no search can use ({value!r})", BAD_WEIGHTS, None)


def _adapter_bytes(store: Store, record: dict) -> bytes:
    """The adapter file's bytes, checked against the size and SHA-256 the record keeps (records
    written before they were kept: the file's own checks in load_adapter)."""
    name = record["adapter"]
    if not isinstance(name, str) or Path(name).parent != Path(TUNING_DIR) or not _OWN_FILE.fullmatch(Path(name).name):
        raise _damaged(str(name), MALFORMED, "is not the name of an adapter file in the store")
    try:
        data = (store.root / name).read_bytes()
    except FileNotFoundError:
        raise _damaged(name, MISSING, "is missing") from None
    except OSError as exc:
        raise _damaged(name, UNREADABLE, f"cannot be read ({(exc.strerror or str(exc)).lower()})") from None
    size, digest = record.get("adapter_bytes"), record.get("adapter_sha256")
    if size is not None and len(data) != size:
        raise _damaged(name, CHECKSUM, f"is {len(data)} bytes, {size} written")
    if digest is not None and hashlib.sha256(data).hexdigest() != digest:
        raise _damaged(name, CHECKSUM, "differs from what was written (SHA-256)")
    return data


def _check_arrays(name: str, adapter: Adapter, dims: int | None) -> None:
    shapes = [getattr(adapter, key).shape for key in _ARRAYS]
    d = dims or shapes[0][0]
    if shapes != [(d,), (d,), (d, d), (d,)]:
        raise _damaged(name, MALFORMED, f"holds arrays of shapes {shapes}, not those of a {d}-dimension adapter")
    for key in _ARRAYS:
        values = getattr(adapter, key)
        if not np.isfinite(values).all():
            raise _damaged(name, BAD_VALUES, f"holds values that are not finite numbers ({key})")
        if np.abs(values).max(initial=0.0) > ADAPTER_MAX_ABS:
            raise _damaged(name, BAD_VALUES, f"holds values no trained adapter has ({key} up to {np.abs(values).max():.3g})")


def _damaged(name: str, reason: str, problem: str) -> TuningDamaged:
    return TuningDamaged(f"the store's query adapter {name} {problem}", reason, name)


def write_tuning(store: Store, record: dict, adapter: Adapter | None) -> dict:
    """Record ``record`` (with ``adapter``'s file) as the store's tuning; the caller holds the write lock."""
    record = dict(record, format=TUNING_FORMAT, model_fingerprint=store.model.fingerprint, adapter=None)
    if adapter is not None:
        directory = store.root / TUNING_DIR
        directory.mkdir(exist_ok=True)
        name = f"adapter-{uuid.uuid4().hex[:12]}.npz"
        temporary = directory / f".tmp-{name}"
        buffer = io.BytesIO()
        np.savez(buffer, **{key: getattr(adapter, key) for key in _ARRAYS})
        data = buffer.getvalue()
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, directory / name)
        fsync_dir(directory)
        record.update(adapter=f"{TUNING_DIR}/{name}", adapter_bytes=len(data), adapter_sha256=hashlib.sha256(data).hexdigest())
    write_tuning_record(store, record)
    remove_unnamed(store)
    return record


def clear_tuning(store: Store) -> bool:
    """Forget the store's tuning (True when there was some); the caller holds the write lock."""
    had = store.meta.get(TUNING_KEY) is not None
    clear_tuning_record(store)
    remove_unnamed(store)
    return had


def remove_unnamed(store: Store, grace: float = SEGMENT_GRACE_SECONDS) -> None:
    """Delete adapter files the record does not name, once older than ``grace`` seconds; only
    files with the names tune gives (a user's own files in the folder are left alone)."""
    directory = store.root / TUNING_DIR
    if not directory.is_dir():
        return
    record = store.meta.get(TUNING_KEY) or {}
    named = Path(record["adapter"]).name if record.get("adapter") else None
    now = time.time()
    for path in directory.iterdir():
        if path.name == named or not _OWN_FILE.fullmatch(path.name):
            continue
        try:
            if path.name.startswith(".tmp-") or now - path.stat().st_mtime > grace:
                path.unlink()
        except OSError:
            pass
