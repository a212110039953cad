"""The first stage of a two-stage search: which pages of the whole store a query's SMART score
is worth estimating for (its shortlist).

The anchor shortlist: the pages whose pooled vectors are closest to the query's.
"""

from __future__ import annotations

import numpy as np

from smartcli.search.scoring import top_k


class FirstStage:
    """The first stage over one snapshot's pages (built once per snapshot, used by every query)."""

    def __init__(self, pooled: np.ndarray, navigation: np.ndarray):
        self.pooled = pooled
        self.navigation = navigation

    def shortlist(self, query, size: int, admitted: np.ndarray | None = None) -> np.ndarray:
        """The item indexes of the query's shortlist, in item order: its top ``size`` pages by
        anchor cosine among the ``admitted`` ones (a boolean mask; None: every page)."""
        anchor = self.pooled @ np.asarray(query.pooled, dtype=np.float32)
        if admitted is not None:
            anchor = np.where(admitted, anchor, -np.inf)
            size = min(size, int(admitted.sum()))
        return np.sort(top_k(anchor, size))
