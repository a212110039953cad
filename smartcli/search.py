"""Query-time: score a snapshot of the store against encoded queries."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from smartcli.encoders import Encoded, Encoder, resolve_device
from smartcli.scoring import Weights, fuse, maxsim, top_k
from smartcli.store import LiveItem, Store, read_token_rows

# Upper bound on the token states held in memory at once (per chunk) when --chunk-size is automatic.
DEFAULT_CHUNK_TOKENS = 65536
SNIPPET_CHARS = 160
# Two-stage search: items re-scored with SMART after the anchor ranking (see benchmarks/two_stage.py).
DEFAULT_CANDIDATES = 200


@dataclass
class Hit:
    rank: int
    item: LiveItem
    score: float
    anchor: float
    late: float | None
    snippet: str

    def as_json(self) -> dict:
        return {
            "rank": self.rank,
            "path": self.item.path,
            "file": os.path.basename(self.item.path),
            "page": self.item.page,
            "kind": self.item.kind,
            "score": round(self.score, 6),
            "anchor": round(self.anchor, 6),
            "late": None if self.late is None else round(self.late, 6),
            "snippet": self.snippet,
        }


class Searcher:
    """Holds the committed snapshot of a store (items and pooled vectors) for many queries."""

    def __init__(self, store: Store, encoder: Encoder, device: str = "auto", chunk_size: int | None = None):
        import torch

        self.store = store
        self.encoder = encoder
        self.device = resolve_device(device)
        self.chunk_size = chunk_size
        self.items = store.live_items()
        self._by_segment: dict[str, list[int]] = defaultdict(list)
        for index, item in enumerate(self.items):
            self._by_segment[item.segment].append(index)
        self.pooled = self._load_pooled()
        self._torch = torch

    def _load_pooled(self) -> np.ndarray:
        dims = self.store.model.dims
        pooled = np.zeros((len(self.items), dims), dtype=np.float32)
        for name, indexes in self._by_segment.items():
            rows = np.array([self.items[i].row for i in indexes])
            with self.store.open_segment(name) as segment:
                pooled[indexes] = segment["pooled"][:][rows]
        return pooled

    def __len__(self) -> int:
        return len(self.items)

    def search(self, queries: list[str], weights: Weights, k: int = 10) -> list[list[Hit]]:
        encoded = self.encoder.encode(queries)
        return self.search_encoded(encoded, weights, k)

    def search_encoded(self, encoded: list[Encoded], weights: Weights, k: int) -> list[list[Hit]]:
        if not self.items or not encoded:
            return [[] for _ in encoded]
        anchor, late = self.scores(encoded, with_late=weights.needs_tokens)
        return self.rank(encoded, anchor, late, weights, k)

    def scores(self, encoded: list[Encoded], with_late: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Anchor cosines and (optionally) MaxSim scores of every query against every item: [m, N] each."""
        anchor = np.stack([e.pooled for e in encoded]) @ self.pooled.T
        return anchor, (self.late_scores(encoded) if with_late else None)

    def rank(
        self, encoded: list[Encoded], anchor: np.ndarray, late: np.ndarray | None, weights: Weights, k: int, snippets: bool = True
    ) -> list[list[Hit]]:
        """Fuse precomputed scores with ``weights`` and return each query's top ``k`` hits."""
        fused = fuse(anchor, late, weights)
        results = []
        for qi, query in enumerate(encoded):
            order = top_k(fused[qi], k)
            passages = self._snippets(query, [self.items[i] for i in order]) if snippets else [""] * len(order)
            results.append(
                [
                    Hit(
                        rank=rank + 1,
                        item=self.items[i],
                        score=float(fused[qi, i]),
                        anchor=float(anchor[qi, i]),
                        late=None if late is None else float(late[qi, i]),
                        snippet=snippet,
                    )
                    for rank, (i, snippet) in enumerate(zip(order, passages))
                ]
            )
        return results

    def late_scores(self, encoded: list[Encoded]) -> np.ndarray:
        """MaxSim of every query against every live item, chunk by chunk: [m, N]."""
        torch = self._torch
        q_tokens = torch.from_numpy(np.concatenate([e.tokens for e in encoded])).to(self.device)
        q_lengths = torch.tensor([e.tokens.shape[0] for e in encoded], device=self.device)
        late = np.zeros((len(encoded), len(self.items)), dtype=np.float32)
        for name, indexes in self._by_segment.items():
            with self.store.open_segment(name) as segment:
                offsets = segment["offsets"][:]
                for chunk in self._chunks(indexes, offsets):
                    first, last = self.items[chunk[0]].row, self.items[chunk[-1]].row
                    tokens = read_token_rows(segment, offsets[first], offsets[last + 1])
                    lengths = torch.from_numpy(np.diff(offsets[first : last + 2])).to(self.device)
                    scores = maxsim(q_tokens, torch.from_numpy(tokens).to(self.device), lengths, q_lengths)
                    rows = np.array([self.items[i].row - first for i in chunk])
                    late[:, chunk] = scores.cpu().numpy()[:, rows]
        return late

    def _chunks(self, indexes: list[int], offsets: np.ndarray):
        """Split a segment's live items (in row order) into runs that fit the chunk budget."""
        chunk: list[int] = []
        start_token = 0
        for index in indexes:
            row = self.items[index].row
            if chunk:
                too_many_items = self.chunk_size is not None and len(chunk) >= self.chunk_size
                too_many_tokens = self.chunk_size is None and offsets[row + 1] - start_token > DEFAULT_CHUNK_TOKENS
                if too_many_items or too_many_tokens:
                    yield chunk
                    chunk = []
            if not chunk:
                start_token = offsets[row]
            chunk.append(index)
        if chunk:
            yield chunk

    def _snippets(self, query: Encoded, items: list[LiveItem]) -> list[str]:
        """For each hit, the passage where the query's tokens found their best matches."""
        snippets = []
        for item in items:
            with self.store.open_segment(item.segment) as segment:
                start, stop = segment["offsets"][item.row : item.row + 2]
                tokens = read_token_rows(segment, start, stop)
                spans = segment["spans"][start:stop]
            best = (query.tokens @ tokens.T).argmax(axis=1)  # the doc token each query token matched
            snippets.append(passage_around(item.text, spans[best]))
        return snippets


def passage_around(text: str, matched_spans: np.ndarray, width: int = SNIPPET_CHARS) -> str:
    """The ``width``-character window of ``text`` that covers the most matched token spans."""
    if not text:
        return ""
    if len(text) <= width:
        return text
    starts = np.sort(matched_spans[:, 0])
    best_start, best_count = int(starts[0]) if len(starts) else 0, 0
    for i, s in enumerate(starts):
        count = int(np.searchsorted(starts, s + width - 20, side="right") - i)
        if count > best_count:
            best_start, best_count = int(s), count
    begin = max(0, min(best_start - 20, len(text) - width))
    # Start and end on word boundaries.
    if begin > 0:
        space = text.find(" ", begin)
        begin = space + 1 if 0 <= space < begin + 20 else begin
    end = min(len(text), begin + width)
    if end < len(text):
        space = text.rfind(" ", begin, end)
        end = space if space > begin + width // 2 else end
    return ("…" if begin > 0 else "") + text[begin:end] + ("…" if end < len(text) else "")
