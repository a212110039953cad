"""Qdrant as a mirror of the local store: ``smart sync`` (and ``smart index --qdrant``) sends the
difference; ``smart search --qdrant`` opens the collection as a query session's backend. The
collection's layout and the sync itself are store/qdrant.py; its searcher, search/qdrant.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smartcli import defaults
from smartcli.errors import ErrorKind, OptionError, SmartError
from smartcli.ingest.events import UpdateEvents
from smartcli.usecases.store_access import writing


@dataclass(frozen=True)
class SyncOptions:
    """Where and how :meth:`Index.sync` mirrors the store (``smart sync``'s options), checked once here.

    ``qdrant``: a URL (server or cluster) or a folder for Qdrant's embedded mode; None:
    ``$SMART_QDRANT_URL``. ``token_format``, ``shards``, ``replicas`` and ``on_disk`` shape a new
    collection; ``max_tokens`` lowers the per-page token limit (pages over it are pooled);
    ``wait``: wait for another writer of the local store."""

    qdrant: str | None = None
    collection: str = defaults.QDRANT_COLLECTION
    api_key: str | None = None
    token_format: str = defaults.QDRANT_TOKEN_FORMAT
    shards: int | None = None
    replicas: int | None = None
    on_disk: bool = False
    batch_points: int = defaults.QDRANT_BATCH_POINTS
    max_tokens: int | None = None
    timeout: float | None = None
    retries: int | None = None
    wait: bool = False

    def __post_init__(self):
        require_client()  # before anything is indexed or sent
        self.collection_settings().check()
        for option in ("shards", "replicas", "batch_points", "max_tokens"):
            value = getattr(self, option)
            if value is not None and value < 1:
                raise OptionError(f"must be at least 1, not {value}", option=option)
        if self.timeout is not None and not self.timeout > 0:
            raise OptionError(f"must be a positive number of seconds, not {self.timeout}", option="timeout")
        if self.retries is not None and self.retries < 0:
            raise OptionError(f"must be at least 0, not {self.retries}", option="retries")

    def collection_settings(self):
        from smartcli.store.qdrant import CollectionSettings

        return CollectionSettings(self.token_format, self.shards, self.replicas, self.on_disk)

    def target(self):
        from smartcli.store.qdrant import Target

        return Target.resolve(self.qdrant, self.api_key, self.timeout, self.retries)


def sync(root: Path, options: SyncOptions, events: UpdateEvents):
    """Make the collection hold the store's encoded pages, sending only the difference since the
    last acknowledged sync; returns a :class:`~smartcli.store.qdrant.SyncSummary`."""
    from smartcli.store.catalog import reads
    from smartcli.store.qdrant import connect, release, sync_store

    target = options.target()
    with writing(root, options.wait, on_wait=events.waiting) as store:
        client = connect(target)
        try:
            if events.wants_progress:
                events.started(len(reads.live_items(store)))
            return sync_store(
                store,
                client,
                target,
                options.collection,
                options.collection_settings(),
                options.batch_points,
                options.max_tokens,
                report=events.message,
                progress=events.pages_done,
            )
        finally:
            if target.local:
                release(target)


def open_collection(
    qdrant: str | None, collection: str, api_key: str | None, candidates: int | None, timeout: float | None, retries: int | None
):
    """A collection filled by :func:`sync`, as a query session's backend (search/qdrant.py)."""
    require_client()
    from smartcli.search.qdrant import QdrantSearcher
    from smartcli.store.qdrant import Target, connect, release

    target = Target.resolve(qdrant, api_key, timeout, retries)
    client = connect(target)
    try:
        return QdrantSearcher(client, target, collection, shortlist=candidates)
    except BaseException:
        if target.local:
            release(target)
        raise


def require_client() -> None:
    """Qdrant support is an optional extra: without it, say what to install."""
    try:
        import qdrant_client  # noqa: F401
    except ImportError:
        raise SmartError(
            ErrorKind.MISSING_DEPENDENCY,
            "Qdrant support needs the qdrant-client package, which is not installed",
            package="qdrant-client",
            extra="qdrant",
        ) from None
