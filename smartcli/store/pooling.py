"""Token pooling: a page's token states merged into fewer before they are stored (``smart index
--token-pooling DISTANCE``, kept in the store's settings so that every update pools alike).

Ward's hierarchical clustering of a page's token states, cut at ``DISTANCE``: each cluster's
mean (unit length) replaces its members, and takes the character span of the member closest to
it, so that snippets still point into the text. Pooled tokens are ordered by span. The page's
vocabulary ids are kept whole (the first stage's postings come from them, not from the pooled
tokens). Measured in benchmarks/RESULTS.md ("Token pooling").
"""

from __future__ import annotations

import numpy as np

from smartcli.models.base import Encoded


def pool_tokens(encoded: Encoded, distance: float) -> Encoded:
    """``encoded`` with its token states pooled by Ward clusters at ``distance`` (0: unchanged)."""
    tokens = np.asarray(encoded.tokens, dtype=np.float32)
    if distance <= 0 or len(tokens) < 2:
        return encoded
    from scipy.cluster.hierarchy import fcluster, linkage

    labels = fcluster(linkage(tokens.astype(np.float64), method="ward"), distance, criterion="distance")
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = np.split(order, bounds)
    means = np.stack([tokens[g].mean(axis=0) for g in groups])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    spans = np.asarray(encoded.spans).reshape(-1, 2)
    kept = np.array([g[int(np.argmax(tokens[g] @ mean))] for g, mean in zip(groups, means)])
    by_span = np.argsort(spans[kept, 0], kind="stable")
    return Encoded(
        pooled=encoded.pooled,
        tokens=means[by_span].astype(encoded.tokens.dtype, copy=False),
        token_ids=encoded.token_ids,
        spans=spans[kept][by_span].astype(np.int32),
    )
