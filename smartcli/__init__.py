"""smart: search local PDF and image collections with SMART late interaction.

The library's front door is :class:`Index`::

    from smartcli import Index
    index = Index.open("~/papers.smart", create=True)
    index.update(["~/papers"])
    hits = index.search("how do I rotate a figure", k=5)

Importing this package is cheap: the names below load on first use, and the model (torch,
transformers) only when something is encoded.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "Index": "smartcli.index",
    "QdrantIndex": "smartcli.index",
    "UpdateOptions": "smartcli.ingest.pipeline",
    "SearchOptions": "smartcli.search.session",
    "SyncOptions": "smartcli.usecases.qdrant",
    "SyncSummary": "smartcli.store.qdrant",
    "Status": "smartcli.usecases.reports",
    "Unencoded": "smartcli.usecases.reports",
    "VerifyReport": "smartcli.usecases.reports",
    "TuneSummary": "smartcli.usecases.tune",
    "WatchOptions": "smartcli.usecases.watch",
    "WatchEvents": "smartcli.usecases.watch",
    "WatchChange": "smartcli.usecases.watch",
    "WatchSummary": "smartcli.usecases.watch",
    "UpdateEvents": "smartcli.ingest.events",
    "Hit": "smartcli.search.searcher",
    "Scope": "smartcli.search.searcher",
    "TokenMatch": "smartcli.search.explain",
    "Weights": "smartcli.search.scoring",
    "IndexSummary": "smartcli.ingest.indexer",
    "Plan": "smartcli.ingest.planning",
    "CompactionResult": "smartcli.store.compaction",
    "Evaluation": "smartcli.search.evaluate",
    "ModelInfo": "smartcli.models.base",
    "Note": "smartcli.store.notes",
    "SmartError": "smartcli.errors",
    "SmartWarning": "smartcli.errors",
    "ErrorKind": "smartcli.errors",
    "StoreMissing": "smartcli.errors",
    "QueryError": "smartcli.errors",
    "defaults": "smartcli.defaults",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'smartcli' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if name == "defaults" else getattr(loaded, name)
    globals()[name] = value
    return value
