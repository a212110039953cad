"""A Qdrant collection as a mirror of local stores: layout, connection, and sync.

Collection layout (one point per encoded page or image)::

    vector "anchor"   [D] float32, cosine                 the page's pooled vector
    vector "tokens"   [T, D] multivector, MAX_SIM, dot    the page's token states, no HNSW graph
                      (m=0: it only rescores), float16 by default
    payload           path, dirs (every ancestor folder, with a trailing "/"), name, path_bytes
                      (only for a name that is not UTF-8), page, kind, role,
                      hash (the file's SHA-256), text, spans (character span of each token,
                      flattened), n_tokens (before reduction), pooled_from (tokens per stored
                      token, 1 when not reduced), model, fingerprint, origin (the store that wrote it)
    metadata          {"smart": {"layout": 1, "model": ModelInfo, "token_format": ...}}

Point ids are UUIDv5 of (path, page), so a re-run overwrites instead of adding. Tokens use
the dot product, not cosine: stored token states are unit length (float16), and the decoded
1-bit and int8 states of the other formats are what the local store scores with, not unit
vectors; dot keeps Qdrant's MaxSim equal to the local one in every format.

The local store stays the source of truth: a table ``qdrant_acked`` in its catalog records
which points (and which version of each) a collection has acknowledged (store/catalog/qdrant_acks.py).
A sync sends the difference and records each batch once Qdrant has it (``wait=True``), so a run
cut short by a crash or a network failure resumes where it stopped; removal only ever touches
points this store wrote, so several machines can fill one collection.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from smartcli import defaults
from smartcli.errors import ErrorKind, ModelMismatch, OptionError, SmartError
from smartcli.models.base import ModelInfo
from smartcli.store.catalog.qdrant_acks import acked_versions, forget_acked, record_acked
from smartcli.store.catalog.reads import file_hashes, live_items

LAYOUT_VERSION = 1
# A Qdrant multivector holds at most this many floats (tokens x dimensions).
MULTIVECTOR_FLOATS = 1_048_576
QDRANT_FORMATS = ("float16", "float32", "scalar", "binary")
_NAMESPACE = uuid.UUID("5a3c1f2e-16d0-4b8e-9b0a-51a7c0ffee16")


def point_id(path: str, page: int) -> str:
    """The stable id of the point of ``page`` of ``path`` (a name that is not UTF-8: by its bytes)."""
    if is_utf8(path):
        return str(uuid.uuid5(_NAMESPACE, f"{path}\x00{page}"))
    # No UTF-8 path starts so (they are absolute): never the id of another page.
    return str(uuid.uuid5(_NAMESPACE, f"bytes:{os.fsencode(path).hex()}\x00{page}"))


# File names that are not UTF-8 reach Python as strings holding lone surrogates (os.fsdecode);
# Qdrant's payload is UTF-8 text. Such a path is sent shown (each undecodable byte as \xNN) with
# its exact bytes in "path_bytes", which the search side turns back into the path.


def is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def payload_path(path: str) -> str:
    """``path`` as UTF-8 text for Qdrant: itself, or shown with ``\\xNN`` for each byte that is not UTF-8."""
    return path if is_utf8(path) else os.fsencode(path).decode("utf-8", "backslashreplace")


def path_fields(path: str) -> dict:
    """The payload fields that place a point's file: path, dirs, name (and path_bytes where needed)."""
    shown = payload_path(path)
    fields = {"path": shown, "dirs": ancestors(shown), "name": os.path.basename(shown)}
    if shown != path:
        fields["path_bytes"] = os.fsencode(path).hex()
    return fields


def local_path(payload: dict) -> str:
    """The file's path as this machine names it, from a point's payload."""
    raw = payload.get("path_bytes")
    return os.fsdecode(bytes.fromhex(raw)) if raw else payload["path"]


def ancestors(path: str) -> list[str]:
    """Every folder above ``path``, each with a trailing ``/`` (what a path-prefix filter matches)."""
    parts = path.split("/")
    return ["/".join(parts[:i]) + "/" for i in range(1, len(parts))]


def token_limit(dims: int) -> int:
    return MULTIVECTOR_FLOATS // dims


def reduce_tokens(tokens: np.ndarray, spans: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Token pooling for pages over the multivector limit: runs of ``factor`` adjacent tokens are
    averaged (and scaled back to their mean length), their spans joined. Returns the reduced
    tokens, spans and the factor (1: unchanged). Adjacent tokens of a text are mostly one word
    or phrase, which is what PyLate's ``pool_factor`` clustering finds too, without its cost."""
    n = tokens.shape[0]
    if n <= limit:
        return tokens, spans, 1
    factor = math.ceil(n / limit)
    groups = math.ceil(n / factor)
    pad = groups * factor - n
    padded = np.concatenate([tokens, np.repeat(tokens[-1:], pad, axis=0)]) if pad else tokens
    runs = padded.reshape(groups, factor, -1)
    mean = runs.mean(axis=1)
    length = np.linalg.norm(runs, axis=-1).mean(axis=1, keepdims=True)
    reduced = mean / np.maximum(np.linalg.norm(mean, axis=-1, keepdims=True), 1e-12) * length
    idx = np.arange(groups) * factor
    last = np.minimum(idx + factor, n) - 1
    joined = np.stack([spans[idx, 0], spans[last, 1]], axis=1)
    return reduced.astype(np.float32), joined.astype(np.int32), factor


# -- connection ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the collection lives: a URL (server or cluster) or a folder (embedded local mode)."""

    location: str
    api_key: str | None = None
    timeout: float = defaults.QDRANT_TIMEOUT
    retries: int = defaults.QDRANT_RETRIES

    @classmethod
    def resolve(cls, location: str | None, api_key: str | None = None, timeout: float | None = None, retries: int | None = None) -> Target:
        location = location or os.environ.get("SMART_QDRANT_URL")
        if not location:
            raise OptionError("no Qdrant location given (a URL or a folder; SMART_QDRANT_URL sets it too)", option="qdrant")
        if api_key is None:
            api_key = os.environ.get("SMART_QDRANT_API_KEY") or None
        if not cls.is_url(location) and location != ":memory:":
            location = os.path.abspath(os.path.expanduser(location))
        return cls(
            location,
            api_key,
            defaults.QDRANT_TIMEOUT if timeout is None else timeout,
            defaults.QDRANT_RETRIES if retries is None else retries,
        )

    @staticmethod
    def is_url(location: str) -> bool:
        return location.startswith(("http://", "https://", "grpc://"))

    @property
    def local(self) -> bool:
        return not self.is_url(self.location)

    def __repr__(self) -> str:  # never shows the key
        return f"Target({self.location!r})"


_LOCAL_CLIENTS: dict[str, list] = {}  # location -> [client, users]


def connect(target: Target):
    """A ``QdrantClient`` for ``target``. Embedded clients are shared within the process (local
    mode allows one per folder) and counted: each :func:`connect` needs its :func:`release`."""
    from qdrant_client import QdrantClient

    if target.local:
        entry = _LOCAL_CLIENTS.get(target.location)
        if entry is None:
            if target.location != ":memory:":
                check_qdrant_folder(target.location)
            try:
                if target.location == ":memory:":
                    client = QdrantClient(location=":memory:")
                else:
                    client = QdrantClient(path=target.location)
            except (RuntimeError, OSError) as exc:
                if local_disk_full(exc):
                    raise disk_full(target) from None
                raise SmartError(ErrorKind.BACKEND_UNAVAILABLE, f"cannot open the Qdrant folder {target.location}: {_first(exc)}") from None
            except Exception as exc:  # noqa: BLE001 - the client reading a meta.json it did not write
                raise _foreign(target.location, f"its meta.json is not one Qdrant can read ({type(exc).__name__})") from None
            if not _LOCAL_CLIENTS:
                import atexit

                atexit.register(_close_all)
            entry = _LOCAL_CLIENTS[target.location] = [client, 0]
        entry[1] += 1
        return entry[0]
    return QdrantClient(url=target.location, api_key=target.api_key, timeout=int(math.ceil(target.timeout)), check_compatibility=False)


# What Qdrant's embedded mode keeps in its folder (a lock file alone: a first open cut short).
_QDRANT_ENTRIES = {"meta.json", "collection", ".lock"}


def check_qdrant_folder(location: str) -> None:
    """Refuse (STORE_FOREIGN) a folder that holds something and is not a Qdrant folder: nothing
    in it is touched. A missing or empty folder is made one."""
    import json

    try:
        entries = set(os.listdir(location))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise _foreign(location, "it is a file, not a folder") from None
    except OSError as exc:
        raise SmartError(ErrorKind.BACKEND_UNAVAILABLE, f"cannot open the Qdrant folder {location}: {exc.strerror or exc}") from None
    if entries <= {".lock"}:
        return
    if "meta.json" not in entries:
        raise _foreign(location, "it holds files and no meta.json")
    try:
        with open(os.path.join(location, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
    except OSError as exc:
        raise SmartError(ErrorKind.BACKEND_UNAVAILABLE, f"cannot read {location}/meta.json: {exc.strerror or exc}") from None
    except ValueError:
        meta = None
    if not (isinstance(meta, dict) and isinstance(meta.get("collections"), dict) and isinstance(meta.get("aliases", {}), dict)):
        raise _foreign(location, "its meta.json is not Qdrant's")


def _foreign(location: str, why: str) -> SmartError:
    return SmartError(ErrorKind.STORE_FOREIGN, f"{location} is not a Qdrant folder ({why})", qdrant=True, path=location)


def local_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, from Qdrant's embedded mode, says its disk is full (an OSError, or its SQLite's)."""
    import errno

    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc).lower()


def disk_full(target: Target) -> SmartError:
    return SmartError(ErrorKind.DISK_FULL, f"no space left on the disk of the Qdrant folder {target.location}", path=target.location)


def release(target: Target) -> None:
    """Done with an embedded client: the last user closes it (so another process may open its folder)."""
    entry = _LOCAL_CLIENTS.get(target.location)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _LOCAL_CLIENTS[target.location]
        entry[0].close()


def _close_all() -> None:
    for location in list(_LOCAL_CLIENTS):
        with contextlib.suppress(Exception):
            _LOCAL_CLIENTS.pop(location)[0].close()


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _transient(exc: BaseException) -> bool:
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        return exc.status_code in (408, 429, 500, 502, 503, 504)
    if isinstance(exc, (ResponseHandlingException, ConnectionError, TimeoutError, socket.timeout)):
        return True
    try:
        import grpc

        if isinstance(exc, grpc.RpcError):
            return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)
    except ImportError:  # pragma: no cover - grpc comes with qdrant-client
        pass
    try:
        import httpx

        return isinstance(exc, httpx.TransportError)
    except ImportError:  # pragma: no cover
        return False


class Retrying:
    """Calls into Qdrant with retries and exponential backoff on transient failures; a failure
    that persists, or any other, becomes one BACKEND_UNAVAILABLE / BAD_INPUT error."""

    def __init__(self, target: Target, sleep: Callable[[float], None] = time.sleep, report: Callable[[str], None] | None = None):
        self.target = target
        self.sleep = sleep
        self.report = report
        self.retries = 0

    def __call__(self, what: str, fn, *args, **kwargs):
        from qdrant_client.http.exceptions import UnexpectedResponse

        delay = defaults.QDRANT_BACKOFF
        for attempt in range(self.target.retries + 1):
            try:
                return fn(*args, **kwargs)
            except SmartError:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted into transient and not below
                if self.target.local and local_disk_full(exc):
                    raise disk_full(self.target) from None
                if self.target.local and isinstance(exc, sqlite3.DatabaseError):
                    # The embedded engine's own SQLite file: not the store's catalog, never "the store is damaged".
                    raise SmartError(
                        ErrorKind.BACKEND_UNAVAILABLE, f"the Qdrant folder {self.target.location} failed to {what}: {_first(exc)}"
                    ) from None
                if not _transient(exc):
                    if isinstance(exc, UnexpectedResponse):
                        raise SmartError(
                            ErrorKind.BACKEND_UNAVAILABLE, f"Qdrant at {self.target.location} refused to {what}: {_first(exc)}"
                        ) from None
                    raise
                if attempt == self.target.retries:
                    raise SmartError(
                        ErrorKind.BACKEND_UNAVAILABLE,
                        f"Qdrant at {self.target.location} did not answer ({what}): {_first(exc)}, after {attempt + 1} attempts",
                    ) from None
                self.retries += 1
                if self.report is not None:
                    self.report(f"Qdrant: {what} failed ({_first(exc)}); retrying in {delay:.1f} s")
                self.sleep(delay)
                delay = min(delay * 2, defaults.QDRANT_BACKOFF_MAX)


# -- the collection --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectionSettings:
    """How a new collection is made (an existing one keeps its own)."""

    token_format: str = defaults.QDRANT_TOKEN_FORMAT
    shards: int | None = None  # Qdrant's default: one per node
    replicas: int | None = None  # Qdrant's default: 1
    on_disk: bool = False  # vectors on disk (memory-mapped), for collections larger than RAM

    def check(self) -> None:
        if self.token_format not in QDRANT_FORMATS:
            raise OptionError(f"must be one of {', '.join(QDRANT_FORMATS)}, not {self.token_format!r}", option="qdrant_format")


def collection_model(client, collection: str, call: Retrying) -> tuple[ModelInfo, dict] | None:
    """The model a collection was built with, and its smart metadata; None if there is no collection.
    A collection without smart's metadata, or with metadata that is not smart's, is refused (BAD_INPUT)."""
    if not call("look up the collection", client.collection_exists, collection):
        return None
    config = call("read the collection", client.get_collection, collection).config
    metadata = getattr(config, "metadata", None)
    meta = metadata.get("smart") if isinstance(metadata, dict) else None
    if not meta:
        raise SmartError(ErrorKind.BAD_INPUT, f"the Qdrant collection {collection!r} was not made by smart (no smart metadata)")
    try:
        info = ModelInfo(**meta["model"])
        if not (isinstance(info.fingerprint, str) and isinstance(info.dims, int) and isinstance(info.spec, str)):
            raise TypeError("a model without its fingerprint, dims or spec")
    except (TypeError, KeyError) as exc:
        raise SmartError(
            ErrorKind.BAD_INPUT,
            f"the Qdrant collection {collection!r} has smart metadata this version cannot read, damaged or of another program ({_first(exc)})",
        ) from None
    return info, meta


def ensure_collection(client, collection: str, info: ModelInfo, settings: CollectionSettings, call: Retrying, local: bool) -> dict:
    """Create the collection for ``info``'s vectors, or check that an existing one holds them."""
    from qdrant_client import models

    existing = collection_model(client, collection, call)
    if existing is not None:
        stored, meta = existing
        if stored.fingerprint != info.fingerprint:
            raise ModelMismatch(
                f"the Qdrant collection {collection!r} was built with model {stored.name!r} ({stored.fingerprint}), "
                f"not {info.name!r} ({info.fingerprint})"
            )
        return meta
    settings.check()
    fmt = settings.token_format
    quantization = None
    if fmt == "scalar":
        quantization = models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, always_ram=True))
    elif fmt == "binary":
        quantization = models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True))
    tokens = models.VectorParams(
        size=info.dims,
        distance=models.Distance.DOT,
        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
        hnsw_config=models.HnswConfigDiff(m=0),
        datatype=models.Datatype.FLOAT32 if fmt == "float32" else models.Datatype.FLOAT16,
        quantization_config=quantization,
        on_disk=settings.on_disk,
    )
    anchor = models.VectorParams(size=info.dims, distance=models.Distance.COSINE, on_disk=settings.on_disk)
    meta = {"layout": LAYOUT_VERSION, "model": asdict(info), "token_format": fmt}
    call(
        "create the collection",
        client.create_collection,
        collection,
        vectors_config={"anchor": anchor, "tokens": tokens},
        shard_number=settings.shards,
        replication_factor=settings.replicas,
        metadata={"smart": meta},
    )
    if not local:  # embedded mode has no payload indexes (and warns about them)
        for name, schema in (("path", "KEYWORD"), ("dirs", "KEYWORD"), ("kind", "KEYWORD"), ("origin", "KEYWORD"), ("page", "INTEGER")):
            call("index the payload", client.create_payload_index, collection, name, getattr(models.PayloadSchemaType, schema), wait=True)
    return meta


# -- sync ------------------------------------------------------------------------------------------


@dataclass
class SyncSummary:
    """What a sync did: points sent and deleted, and how many were already there."""

    target: str
    collection: str
    upserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    batches: int = 0
    retries: int = 0
    reduced: int = 0  # pages whose tokens were pooled to fit the multivector limit
    points: int = 0  # points of this store the collection holds afterwards
    seconds: float = 0.0
    bytes_sent: int = 0  # vector bytes as stored (float16 tokens, float32 anchors)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


def origin_of(store) -> str:
    """This store, on this machine: the tag its points carry."""
    return hashlib.sha1(f"{socket.gethostname()}:".encode() + os.fsencode(store.root.resolve())).hexdigest()[:16]


def _versions(store) -> dict[str, tuple]:
    """point id -> (live item, version) for every encoded page of the store."""
    sha = file_hashes(store)
    wanted = {}
    for item in live_items(store):
        # The role is part of the version: a page judged again, or sent before roles were, is sent again.
        digest = hashlib.sha1(f"{sha.get(item.path)}\x00{item.page}\x00{item.n_tokens}\x00{item.text}\x00{item.role}".encode()).hexdigest()
        wanted[point_id(item.path, item.page)] = (item, digest)
    return wanted


def sync_store(
    store,
    client,
    target: Target,
    collection: str,
    settings: CollectionSettings = CollectionSettings(),
    batch_points: int = defaults.QDRANT_BATCH_POINTS,
    max_tokens: int | None = None,
    report: Callable[[str], None] | None = None,
    progress: Callable[[int], None] | None = None,
    call: Retrying | None = None,
) -> SyncSummary:
    """Make the collection hold exactly this store's encoded pages (the caller holds the store's
    write lock). Deletions first, then upserts, each batch recorded once acknowledged."""
    from qdrant_client import models

    started = time.monotonic()
    call = call or Retrying(target, report=report)
    info = store.model
    summary = SyncSummary(target=target.location, collection=collection)
    if info is None:
        summary.notes.append("empty_store")
        return summary
    existed = call("look up the collection", client.collection_exists, collection)
    ensure_collection(client, collection, info, settings, call, target.local)
    limit = min(max_tokens or token_limit(info.dims), token_limit(info.dims))
    have = acked_versions(store, target.location, collection)
    if have and not existed:  # the collection was deleted since: nothing it acknowledged is there
        forget_acked(store, target.location, collection)
        have = {}
    wanted = _versions(store)
    origin = origin_of(store)
    gone = [pid for pid in have if pid not in wanted]
    todo = [pid for pid, (_, version) in wanted.items() if have.get(pid) != version]
    summary.unchanged = len(wanted) - len(todo)
    for start in range(0, len(gone), batch_points):
        batch = gone[start : start + batch_points]
        call("delete points", client.delete, collection, points_selector=models.PointIdsList(points=batch), wait=True)
        forget_acked(store, target.location, collection, batch)
        summary.deleted += len(batch)
        summary.batches += 1
    # Upserts in segment/row order, so each batch reads few segment files.
    todo.sort(key=lambda pid: (wanted[pid][0].segment, wanted[pid][0].row))
    for start in range(0, len(todo), batch_points):
        batch = todo[start : start + batch_points]
        points, reduced, size = _points(store, [wanted[pid][0] for pid in batch], info, limit, origin)
        call("upsert points", client.upsert, collection, points=points, wait=True)
        record_acked(store, target.location, collection, [(pid, wanted[pid][1]) for pid in batch])
        summary.upserted += len(batch)
        summary.reduced += reduced
        summary.bytes_sent += size
        summary.batches += 1
        if progress is not None:
            progress(len(batch))
    summary.points = len(wanted)
    summary.retries = call.retries
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _points(store, items, info: ModelInfo, limit: int, origin: str):
    from qdrant_client import models

    points, paths, reduced, size = [], [], 0, 0
    by_segment: dict[str, list] = {}
    for item in items:
        by_segment.setdefault(item.segment, []).append(item)
    for name, group in by_segment.items():
        with store.open_segment(name) as segment:
            pooled = segment.pooled([item.row for item in group])
            for item, anchor in zip(group, pooled):
                begin, end = segment.token_range(item.row)
                tokens = segment.tokens(begin, end).astype(np.float32)
                spans = segment.spans(begin, end)
                tokens, spans, factor = reduce_tokens(tokens, spans, limit)
                reduced += factor > 1
                size += tokens.shape[0] * tokens.shape[1] * 2 + anchor.shape[0] * 4
                points.append(
                    models.PointStruct(
                        id=point_id(item.path, item.page),
                        vector={"anchor": anchor.astype(np.float32).tolist(), "tokens": tokens.tolist()},
                        payload={
                            **path_fields(item.path),
                            "page": item.page,
                            "kind": item.kind,
                            "role": item.role,
                            "hash": None,
                            "text": item.text,
                            "spans": spans.reshape(-1).astype(int).tolist(),
                            "n_tokens": item.n_tokens,
                            "pooled_from": factor,
                            "model": info.name,
                            "fingerprint": info.fingerprint,
                            "origin": origin,
                        },
                    )
                )
                paths.append(item.path)
    sha = file_hashes(store)
    for point, path in zip(points, paths):
        point.payload["hash"] = sha.get(path)
    return points, reduced, size
