"""SMART scoring: anchor cosine fused with MaxSim late interaction.

    score(q, d) = lambda_anchor * cos(pooled_q, pooled_d)
                + lambda_late   * mean_i max_j cos(q_tok_i, d_tok_j)

All vectors are unit-norm, so cosines are dot products. Documents are scored in
chunks of contiguous items whose token states are concatenated into one [T, D]
matrix with per-item lengths, so memory is bounded by the chunk, not the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartcli import defaults
from smartcli.errors import OptionError

MODES = ("smart", "pooled", "late")
DEFAULT_LAMBDA_ANCHOR = defaults.LAMBDA_ANCHOR
DEFAULT_LAMBDA_LATE = defaults.LAMBDA_LATE


@dataclass(frozen=True)
class Weights:
    lambda_anchor: float = DEFAULT_LAMBDA_ANCHOR
    lambda_late: float = DEFAULT_LAMBDA_LATE

    @classmethod
    def for_mode(cls, mode: str, lambda_anchor: float, lambda_late: float) -> Weights:
        if mode == "pooled":
            return cls(1.0, 0.0)
        if mode == "late":
            return cls(0.0, 1.0)
        if mode == "smart":
            return cls(lambda_anchor, lambda_late)
        raise OptionError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}", option="mode")

    @property
    def needs_tokens(self) -> bool:
        return self.lambda_late != 0.0


def maxsim(query_tokens, doc_tokens, doc_lengths, query_lengths=None):
    """Late-interaction scores of queries against a chunk of documents (torch tensors).

    query_tokens: [Q, D], the tokens of one or more queries stacked.
    doc_tokens:   [T, D], the tokens of n documents stacked.
    doc_lengths:  [n] token count of each document (each >= 1, summing to T).
    query_lengths: [m] token count of each query (summing to Q); one query if None.
    Returns [m, n]: for each query, the mean over its tokens of the max over each
    document's tokens of the dot product.
    """
    import torch

    n = doc_lengths.shape[0]
    if query_lengths is None:
        query_lengths = torch.tensor([query_tokens.shape[0]], device=query_tokens.device)
    sim = doc_tokens @ query_tokens.T  # [T, Q]
    # A segmented max over each document's rows; as fast as the matrix product on CPU and CUDA
    # (a scatter_reduce runs about 3x slower here, see benchmarks/maxsim_kernel.py).
    best = torch.segment_reduce(sim, "max", lengths=doc_lengths, axis=0)  # [n, Q]
    # Mean over each query's own token columns.
    query_of_column = torch.repeat_interleave(torch.arange(len(query_lengths), device=sim.device), query_lengths)
    sums = torch.zeros((len(query_lengths), n), dtype=sim.dtype, device=sim.device)
    sums.index_add_(0, query_of_column, best.T)
    return sums / query_lengths.to(sim.dtype)[:, None]


def navigation_penalty(weights: Weights) -> float:
    """What a contents or index page's fused score loses (store/pageroles.py):
    ``defaults.NAVIGATION_PENALTY`` of the weights' sum, so that such a page ranks below body
    pages that match about as well, and first when none does."""
    return defaults.NAVIGATION_PENALTY * (abs(weights.lambda_anchor) + abs(weights.lambda_late))


def fuse(anchor: np.ndarray, late: np.ndarray | None, weights: Weights) -> np.ndarray:
    score = weights.lambda_anchor * anchor
    if late is not None and weights.lambda_late:
        score = score + weights.lambda_late * late
    return score


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first (ties broken by index for stable output)."""
    k = min(k, scores.shape[0])
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
    return part[np.lexsort((part, -scores[part]))]
