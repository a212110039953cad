"""The use cases behind the front door (:class:`smartcli.Index`), one module each.

- ``store_access``: opening, creating, reading and writing a store (the life cycle)
- ``pageview``: pages by catalog id, their pictures and where matches lie (``smart serve``)
- ``reports``: status, unencoded pages, verify, evaluate
- ``compaction``: ``smart compact``
- ``tuning``: ``smart tune`` and its reset
- ``qdrant``: mirroring to a Qdrant collection (``smart sync``) and opening one for queries

Updating lives in the ingest layer (``smartcli.ingest.pipeline``), querying in the search layer
(``smartcli.search.session``): the front door opens the store and hands them the work.
"""
