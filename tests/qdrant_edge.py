"""The part of ``qdrant_client.QdrantClient`` that smart uses, on Qdrant Edge (``qdrant-edge-py``):
Qdrant's own engine (segments, payload indexes, MaxSim, the query planner) in process.

qdrant-client's embedded mode (``QdrantClient(path=...)``) re-implements Qdrant's API in Python;
Edge runs the Rust engine that a Qdrant server runs per shard. This adapter lets
smartcli/store/qdrant.py and smartcli/search/qdrant.py drive that engine unchanged: it only
translates qdrant-client's request models into Edge's and Edge's answers back into qdrant-client's
response models (``qdrant_client.http.models``). Every method and field smart sends is handled;
anything else is refused with ``NotImplementedError`` rather than dropped.

What Edge lacks, and what the adapter does instead (qdrant-edge-py 0.9):

- Collections. An ``EdgeShard`` is one shard in one folder; there is no collection namespace, so
  the adapter keeps one shard per collection in ``<root>/<collection>/``.
- Collection metadata. ``EdgeConfig`` has no ``metadata`` (smart's ``{"smart": {...}}`` layout
  record); the adapter keeps it in ``<root>/<collection>.metadata.json`` beside the shard.
- Sharding and replication. One local shard: ``shard_number`` and ``replication_factor`` other
  than None or 1 are refused.
- HNSW settings as a diff. Edge's ``HnswIndexConfig`` needs ``m``, ``ef_construct`` and
  ``full_scan_threshold``; the fields a ``HnswConfigDiff`` leaves out get Qdrant's defaults
  (100 and 10000), as a server fills them from its config.
- ``wait``. Edge applies an update before ``update()`` returns (written to its WAL), so every
  write is already a waited one.
- Background optimization. Edge optimizes only when ``EdgeShard.optimize()`` is called; the
  adapter never calls it, so points stay in plain (exactly scanned) appendable segments, as on a
  server whose collection is under the indexing threshold.
- Point ids. Edge returns UUID ids as ``uuid.UUID``; the adapter returns ``str``, as
  qdrant-client does.
- One opener per folder. Edge locks a shard's WAL, so a folder opens once per process: the
  adapter holds each shard open until :meth:`EdgeClient.close`.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import qdrant_edge as edge
from qdrant_client.http import models

# Qdrant's defaults for the HNSW fields a HnswConfigDiff may leave out (config/config.yaml).
_HNSW_DEFAULTS = {"ef_construct": 100, "full_scan_threshold": 10_000}

_DISTANCE = {
    models.Distance.COSINE: edge.Distance.Cosine,
    models.Distance.DOT: edge.Distance.Dot,
    models.Distance.EUCLID: edge.Distance.Euclid,
    models.Distance.MANHATTAN: edge.Distance.Manhattan,
}
_DATATYPE = {
    models.Datatype.FLOAT32: edge.VectorStorageDatatype.Float32,
    models.Datatype.FLOAT16: edge.VectorStorageDatatype.Float16,
    models.Datatype.UINT8: edge.VectorStorageDatatype.Uint8,
}
_COMPARATOR = {models.MultiVectorComparator.MAX_SIM: edge.MultiVectorComparator.MaxSim}
_SCHEMA = {
    models.PayloadSchemaType.KEYWORD: edge.PayloadSchemaType.Keyword,
    models.PayloadSchemaType.INTEGER: edge.PayloadSchemaType.Integer,
    models.PayloadSchemaType.FLOAT: edge.PayloadSchemaType.Float,
    models.PayloadSchemaType.BOOL: edge.PayloadSchemaType.Bool,
}
_SCALAR_TYPE = {models.ScalarType.INT8: edge.ScalarType.Int8}


class EdgeClient:
    """A ``QdrantClient`` look-alike over the Edge shards in the folder ``root``."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, edge.EdgeShard] = {}

    # -- collections -------------------------------------------------------------------------------

    def collection_exists(self, collection_name: str) -> bool:
        return self._metadata_path(collection_name).is_file()

    def get_collection(self, collection_name: str) -> models.CollectionInfo:
        """Only what Edge knows: points, segments, payload indexes, and the metadata file."""
        info = self._shard(collection_name).info()
        schema = {
            name: models.PayloadIndexInfo(data_type=_schema_back(index.data_type), points=index.points)
            for name, index in info.payload_schema.items()
        }
        metadata = json.loads(self._metadata_path(collection_name).read_text())
        return models.CollectionInfo.model_construct(
            points_count=info.points_count,
            segments_count=info.segments_count,
            indexed_vectors_count=info.indexed_vectors_count,
            payload_schema=schema,
            config=models.CollectionConfig.model_construct(metadata=metadata),
        )

    def create_collection(
        self, collection_name: str, vectors_config: dict, shard_number=None, replication_factor=None, metadata=None
    ) -> bool:
        if shard_number not in (None, 1) or replication_factor not in (None, 1):
            raise NotImplementedError("Qdrant Edge is one local shard: no sharding, no replication")
        if self.collection_exists(collection_name):
            raise ValueError(f"collection {collection_name!r} already exists")
        config = edge.EdgeConfig(vectors={name: _vector_params(params) for name, params in vectors_config.items()})
        self._shards[collection_name] = edge.EdgeShard.create(str(self.root / collection_name), config)
        # Written last: a collection exists once its shard does.
        self._metadata_path(collection_name).write_text(json.dumps(metadata or {}))
        return True

    def create_payload_index(
        self, collection_name: str, field_name: str, field_schema: models.PayloadSchemaType, wait: bool = True
    ) -> models.UpdateResult:
        self._shard(collection_name).update(edge.UpdateOperation.create_field_index(field_name, _SCHEMA[field_schema]))
        return _done()

    # -- points ----------------------------------------------------------------------------------

    def upsert(self, collection_name: str, points: list[models.PointStruct], wait: bool = True) -> models.UpdateResult:
        batch = [edge.Point(p.id, p.vector, p.payload) for p in points]
        self._shard(collection_name).update(edge.UpdateOperation.upsert_points(batch))
        return _done()

    def delete(self, collection_name: str, points_selector: models.PointIdsList, wait: bool = True) -> models.UpdateResult:
        if not isinstance(points_selector, models.PointIdsList):
            raise NotImplementedError(f"delete by {type(points_selector).__name__}")
        self._shard(collection_name).update(edge.UpdateOperation.delete_points(list(points_selector.points)))
        return _done()

    def count(self, collection_name: str, count_filter: models.Filter | None = None, exact: bool = True) -> models.CountResult:
        n = self._shard(collection_name).count(edge.CountRequest(exact=exact, filter=_filter(count_filter)))
        return models.CountResult(count=n)

    def scroll(self, collection_name: str, scroll_filter=None, limit: int = 10, offset=None, with_payload=True, with_vectors=False):
        request = edge.ScrollRequest(
            offset=offset,
            limit=limit,
            filter=_filter(scroll_filter),
            with_payload=_selector(with_payload),
            with_vector=_selector(with_vectors),
        )
        records, next_offset = self._shard(collection_name).scroll(request)
        return [_record(r) for r in records], _id(next_offset)

    def retrieve(self, collection_name: str, ids, with_payload=True, with_vectors=False) -> list[models.Record]:
        records = self._shard(collection_name).retrieve(
            list(ids), with_payload=_selector(with_payload), with_vector=_selector(with_vectors)
        )
        return [_record(r) for r in records]

    def query_batch_points(self, collection_name: str, requests: list[models.QueryRequest]) -> list[models.QueryResponse]:
        batch = edge.QueryBatchRequest([_query_request(r) for r in requests])
        answers = self._shard(collection_name).query_batch(batch)
        return [models.QueryResponse(points=[_scored(p) for p in points]) for points in answers]

    def close(self) -> None:
        while self._shards:
            _, shard = self._shards.popitem()
            shard.flush()
            shard.close()

    # -- internals -------------------------------------------------------------------------------

    def _metadata_path(self, collection_name: str) -> Path:
        return self.root / f"{collection_name}.metadata.json"

    def _shard(self, collection_name: str) -> edge.EdgeShard:
        shard = self._shards.get(collection_name)
        if shard is None:
            if not self.collection_exists(collection_name):
                raise ValueError(f"collection {collection_name!r} does not exist")
            shard = self._shards[collection_name] = edge.EdgeShard.load(str(self.root / collection_name))
        return shard


# -- collection layout ---------------------------------------------------------------------------


def _vector_params(params: models.VectorParams) -> edge.EdgeVectorParams:
    if params.memory is not None:
        raise NotImplementedError("VectorParams.memory")
    multivector = params.multivector_config
    return edge.EdgeVectorParams(
        size=params.size,
        distance=_DISTANCE[params.distance],
        on_disk=params.on_disk,
        multivector_config=None if multivector is None else edge.MultiVectorConfig(_COMPARATOR[multivector.comparator]),
        datatype=None if params.datatype is None else _DATATYPE[params.datatype],
        quantization_config=_quantization(params.quantization_config),
        hnsw_config=_hnsw(params.hnsw_config),
    )


def _hnsw(diff: models.HnswConfigDiff | None) -> edge.HnswIndexConfig | None:
    if diff is None:
        return None
    if diff.m is None or diff.memory is not None:
        raise NotImplementedError("an HNSW override without m, or with memory")
    fields = {name: value for name, value in diff.model_dump().items() if value is not None}
    for name in ("ef_construct", "full_scan_threshold"):
        fields.setdefault(name, _HNSW_DEFAULTS[name])
    return edge.HnswIndexConfig(**fields)


def _quantization(config):
    if config is None:
        return None
    if isinstance(config, models.ScalarQuantization):
        scalar = config.scalar
        return edge.ScalarQuantizationConfig(type=_SCALAR_TYPE[scalar.type], quantile=scalar.quantile, always_ram=scalar.always_ram)
    if isinstance(config, models.BinaryQuantization):
        return edge.BinaryQuantizationConfig(always_ram=config.binary.always_ram)
    raise NotImplementedError(f"quantization {type(config).__name__}")


def _schema_back(data_type) -> models.PayloadSchemaType:
    return next(ours for ours, theirs in _SCHEMA.items() if theirs == data_type)


# -- requests ------------------------------------------------------------------------------------


def _filter(flt: models.Filter | None) -> edge.Filter | None:
    if flt is None:
        return None
    if flt.min_should is not None:
        raise NotImplementedError("Filter.min_should")

    def conditions(items):
        return None if items is None else [_condition(c) for c in items]

    return edge.Filter(must=conditions(flt.must), should=conditions(flt.should), must_not=conditions(flt.must_not))


def _condition(condition):
    if isinstance(condition, models.FieldCondition):
        match = condition.match
        if isinstance(match, models.MatchValue):
            return edge.FieldCondition(key=condition.key, match=edge.MatchValue(match.value))
        if isinstance(match, models.MatchAny):
            return edge.FieldCondition(key=condition.key, match=edge.MatchAny(list(match.any)))
        raise NotImplementedError(f"field condition on {condition.key!r} with {type(match).__name__}")
    if isinstance(condition, models.HasIdCondition):
        return edge.HasIdCondition(set(condition.has_id))
    if isinstance(condition, models.Filter):
        return _filter(condition)
    raise NotImplementedError(f"condition {type(condition).__name__}")


def _nearest(query, using: str | None):
    """A vector (dense list, or a list of lists for a multivector) is a nearest query, as the server reads it."""
    if isinstance(query, models.NearestQuery):
        query = query.nearest
    if not isinstance(query, list):
        raise NotImplementedError(f"query {type(query).__name__}")
    return edge.Query.Nearest(query, using=using)


def _prefetches(prefetch) -> list[edge.Prefetch] | None:
    if prefetch is None:
        return None
    stages = prefetch if isinstance(prefetch, list) else [prefetch]
    for stage in stages:
        if stage.lookup_from is not None or stage.params is not None:
            raise NotImplementedError("Prefetch.lookup_from / params")
    return [
        edge.Prefetch(
            limit=stage.limit,
            query=None if stage.query is None else _nearest(stage.query, stage.using),
            prefetches=_prefetches(stage.prefetch),
            filter=_filter(stage.filter),
            score_threshold=stage.score_threshold,
        )
        for stage in stages
    ]


def _query_request(request: models.QueryRequest) -> edge.QueryRequest:
    if request.lookup_from is not None or request.params is not None or request.shard_key is not None:
        raise NotImplementedError("QueryRequest.lookup_from / params / shard_key")
    return edge.QueryRequest(
        limit=request.limit,
        offset=request.offset,
        query=None if request.query is None else _nearest(request.query, request.using),
        prefetches=_prefetches(request.prefetch),
        with_vector=_selector(request.with_vector),
        with_payload=_selector(request.with_payload),
        filter=_filter(request.filter),
        score_threshold=request.score_threshold,
    )


def _selector(selected):
    """with_payload / with_vector: a flag or a list of names, as both sides spell it."""
    if selected is None or isinstance(selected, (bool, list)):
        return selected
    raise NotImplementedError(f"selector {type(selected).__name__}")


# -- answers -------------------------------------------------------------------------------------


def _record(record) -> models.Record:
    return models.Record.model_construct(id=_id(record.id), payload=record.payload, vector=record.vector)


def _scored(point) -> models.ScoredPoint:
    return models.ScoredPoint.model_construct(
        id=_id(point.id), version=point.version, score=point.score, payload=point.payload, vector=point.vector
    )


def _id(point_id):
    """Edge answers UUID ids as ``uuid.UUID``; qdrant-client as their string."""
    return str(point_id) if isinstance(point_id, uuid.UUID) else point_id


def _done() -> models.UpdateResult:
    return models.UpdateResult(operation_id=None, status=models.UpdateStatus.COMPLETED)


def mirror(store_path, root, collection: str, settings):
    """Sync the store at ``store_path`` into ``collection`` of a new Edge client on ``root``, through
    the path ``Index.sync`` takes; returns (client, target, summary)."""
    from smartcli.store.catalog import Store
    from smartcli.store.qdrant import Retrying, Target, ensure_collection, sync_store

    target = Target.resolve(str(root))
    client = EdgeClient(root)
    with Store.open_for_writing(store_path) as store:
        # Made as against a server, payload indexes included: sync_store leaves them out for a
        # folder, which it takes for qdrant-client's embedded mode (where they do nothing).
        ensure_collection(client, collection, store.model, settings, Retrying(target), local=False)
        summary = sync_store(store, client, target, collection, settings)
    return client, target, summary


def remote_index(client, target, collection: str, shortlist=None):
    """A QdrantIndex over ``collection`` of an Edge client (the shortlist: smart's default)."""
    from smartcli import QdrantIndex, defaults
    from smartcli.search.qdrant import QdrantSearcher

    return QdrantIndex(QdrantSearcher(client, target, collection, shortlist=shortlist or defaults.CANDIDATES), "cpu")
