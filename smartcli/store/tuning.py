"""What `tune` learned for a store: fusion weights and, optionally, a query-side adapter.

The catalog's ``meta`` row ``tuning`` holds the record (codes and numbers, no sentences)::

    {"format": 1, "model_fingerprint": ..., "lambda_anchor": ..., "lambda_late": ...,
     "adapter": "tuning/adapter-<id>.npz" | null, "variant": "query" | null, "init": "identity" | "pca" | null, "trained": <time>, ...}

The adapter's weights live in a small ``.npz`` file the record names (a LayerNorm's gain and bias,
a Linear's weight and bias: about 0.6 MB for a 384-dimension model). The file is written under a
temporary name, fsynced and renamed before the catalog names it, like a segment. Files the record
does not name are deleted by the next tune or reset (after the segments' grace time, so a search
that read the old record can still load its adapter).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartcli.store.catalog import Store
from smartcli.store.catalog.retirement import SEGMENT_GRACE_SECONDS
from smartcli.store.catalog.schema import TUNING_KEY
from smartcli.store.catalog.writes import clear_tuning_record, write_tuning_record
from smartcli.store.segments import fsync_dir

TUNING_FORMAT = 1
TUNING_DIR = "tuning"
_ARRAYS = ("ln_weight", "ln_bias", "weight", "bias")


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
    """The adapter ``record`` names (None when it names none, or its file is gone)."""
    name = record.get("adapter")
    if not name:
        return None
    try:
        with np.load(store.root / name) as data:
            return Adapter(*(data[key].astype(np.float32) for key in _ARRAYS))
    except (OSError, KeyError, ValueError):
        return None


def write_tuning(store: Store, record: dict, adapter: Adapter | None) -> dict:
    """Record ``record`` (with ``adapter``'s file) as the store's tuning; the caller holds the write lock."""
    record = dict(record, format=TUNING_FORMAT, model_fingerprint=store.model.fingerprint, adapter=None)
    if adapter is not None:
        directory = store.root / TUNING_DIR
        directory.mkdir(exist_ok=True)
        name = f"adapter-{uuid.uuid4().hex[:12]}.npz"
        temporary = directory / f".tmp-{name}"
        with open(temporary, "wb") as f:
            np.savez(f, **{key: getattr(adapter, key) for key in _ARRAYS})
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, directory / name)
        fsync_dir(directory)
        record["adapter"] = f"{TUNING_DIR}/{name}"
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
    """Delete adapter files the record does not name, once older than ``grace`` seconds."""
    directory = store.root / TUNING_DIR
    if not directory.is_dir():
        return
    record = store.meta.get(TUNING_KEY) or {}
    named = Path(record["adapter"]).name if record.get("adapter") else None
    now = time.time()
    for path in directory.iterdir():
        if path.name == named:
            continue
        try:
            if path.name.startswith(".tmp-") or now - path.stat().st_mtime > grace:
                path.unlink()
        except OSError:
            pass
