"""``smart tune``: learn a store's fusion weights (and a query-side adapter) from pairs of a query
and its pages, mined from the PDFs' outlines, cut from the pages' text, or given by the user.
The learning itself is search/tuning.py; the record it leaves, store/tuning.py."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from smartcli import defaults
from smartcli.errors import ErrorKind, SmartError, StoreMissing
from smartcli.ingest.events import UpdateEvents
from smartcli.store.catalog.writes import check_same_model
from smartcli.usecases.store_access import reading_snapshot, writing


@dataclass
class TuneSummary:
    """What :meth:`Index.tune` did: the pairs it used, the held-back figures, what it kept."""

    store: str
    kept: str  # "adapter" (weights and adapter), "weights" (weights only) or "untuned" (nothing beat it)
    improved: bool  # what was kept beats the untuned search on the held-back pairs
    lambda_anchor: float
    lambda_late: float
    pairs: dict  # {"outline": {mining report}, "body": {"pages", "pairs"}, "user": {"lines", "matched", "unmatched"}, "used", "train", "held_back"}
    held_back: dict  # {"untuned": {...}, "weights": {...}, "adapter": {...} | None}: MRR@10, nDCG@10, weights
    epochs: int
    best_epoch: int
    seconds: float
    train_seconds: float
    history: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TuneRequest:
    """Where the pairs come from and what is trained (see :meth:`smartcli.Index.tune`)."""

    pairs: str | None = None  # a JSON-lines file of {"query", "file", "page"}
    outline: bool = True
    heading_path: bool = False
    body: bool = False
    adapter: bool = False
    guard: bool = True
    init: str = defaults.TUNE_INIT

    def __post_init__(self):
        from smartcli.search.tuning import INITS

        if self.init not in INITS:
            raise SmartError(
                ErrorKind.BAD_OPTION, f"unknown adapter initialisation {self.init!r} (known: {', '.join(INITS)})", option="init"
            )
        if not self.outline and self.pairs is None and not self.body:
            raise SmartError(ErrorKind.BAD_OPTION, "with the outlines left out, pairs must be given", option="outline")


def tune(
    root: Path, request: TuneRequest, device: str, chunk_size: int | None, candidates: int | None, wait: bool, events: UpdateEvents
) -> TuneSummary:
    """Learn on a snapshot of the store (read while training), then record what beat the untuned
    search on the held-back pairs under the write lock (``wait``: wait for another writer)."""
    from smartcli.models.registry import load_encoder
    from smartcli.search.searcher import Searcher
    from smartcli.search.tuning import load_user_pairs
    from smartcli.search.tuning import tune as learn

    raw_user = load_user_pairs(request.pairs) if request.pairs is not None else []  # a bad file fails before the model loads
    with reading_snapshot(root, verify=True) as store:
        info = store.model
        if info is None:
            raise StoreMissing(f"the index at {root} is empty", kind=ErrorKind.STORE_EMPTY)
        encoder = load_encoder(info.spec, device, info.extra)
        check_same_model(info, encoder.info, root)
        searcher = Searcher(
            store, encoder, device=device, chunk_size=chunk_size, cache_bytes=defaults.WARM_CACHE_BYTES, shortlist=candidates
        )
        used, counts = _gather_pairs(searcher, request, raw_user, events)
        result = learn(searcher, used, request.adapter, events.message, guard=request.guard, init=request.init)
    counts.update(used=result.pairs, train=result.train_pairs, held_back=result.held_back_pairs)
    _record(root, result, request.init, wait, events)
    return _summary(root, result, counts)


def reset(root: Path, wait: bool) -> bool:
    """Back to the frozen model and the default weights; True when the store was tuned."""
    from smartcli.store.tuning import clear_tuning

    with writing(root, wait) as store:
        return clear_tuning(store)


def _gather_pairs(searcher, request: TuneRequest, raw_user: list, events: UpdateEvents) -> tuple[list, dict]:
    """The pairs to learn from, and per source what was found (the summary's ``pairs``)."""
    from smartcli.ingest.outlines import body_pairs, copies_of, mine_indexed
    from smartcli.search.tuning import Pair, match_user_pairs

    used: list = []
    counts: dict = {}
    if request.outline:
        found, report = mine_indexed(searcher.items, request.heading_path)
        for path, reason in report.unreadable:
            events.message(f"{path}: outline not read ({reason})")
        used += [Pair(query, pages) for query, pages in found]
        counts["outline"] = report.as_json()
        dropped = ", ".join(f"{n} {k}" for k, n in sorted(report.dropped.items())) or "none"
        copies = f", {report.copies} copies counted once" if report.copies else ""
        events.message(
            f"{report.pairs} pairs from the outlines of {report.with_outline} of {report.files} PDFs{copies} "
            f"({report.entries} entries; dropped: {dropped})"
        )
    if request.body:
        # A copy's pages are the same pages: cut once, found under any copy's path.
        copies = copies_of(searcher.items)
        pages = [(item.path, item.page, item.text) for item in searcher.items if item.path in copies]
        cut = body_pairs(pages)
        used += [Pair(b.query, {(path, b.page) for path in copies[b.path]}, "body", b.hidden) for b in cut]
        counts["body"] = {"pages": len(pages), "pairs": len(cut)}
        events.message(f"{len(cut)} pseudo-queries cut from the text of {len(pages)} pages")
    if raw_user:
        user, unmatched = match_user_pairs(raw_user, searcher.items)
        used += user
        counts["user"] = {"lines": len(raw_user), "matched": len(raw_user) - unmatched, "unmatched": unmatched, "pairs": len(user)}
        events.message(f"{len(user)} pairs from {request.pairs} ({unmatched} of {len(raw_user)} lines name no indexed page)")
    return used, counts


def _record(root: Path, result, init: str, wait: bool, events: UpdateEvents) -> None:
    """What was kept becomes the store's tuning record; with nothing kept the store is untuned."""
    from smartcli.store.tuning import clear_tuning, write_tuning

    with writing(root, wait, on_wait=events.waiting) as store:
        if not result.kept:
            clear_tuning(store)
            return
        adapted = result.adapter is not None
        record = {
            "lambda_anchor": result.final.weights.lambda_anchor,
            "lambda_late": result.final.weights.lambda_late,
            "variant": "query" if adapted else None,
            "init": init if adapted else None,
            "trained": time.time(),
            "pairs": result.pairs,
            "held_back_pairs": result.held_back_pairs,
            "held_back": {"untuned": result.untuned.as_json(), "tuned": result.final.as_json()},
        }
        write_tuning(store, record, result.adapter)


def _summary(root: Path, result, counts: dict) -> TuneSummary:
    final = result.final
    return TuneSummary(
        store=str(root),
        kept=result.chosen,
        improved=final.key() > result.untuned.key(),
        lambda_anchor=final.weights.lambda_anchor,
        lambda_late=final.weights.lambda_late,
        pairs=counts,
        held_back={
            "untuned": result.untuned.as_json(),
            "weights": result.weights_only.as_json(),
            "adapter": result.adapted.as_json() if result.adapted else None,
        },
        epochs=result.epochs,
        best_epoch=result.best_epoch,
        seconds=round(result.seconds, 2),
        train_seconds=round(result.train_seconds, 2),
        history=result.history,
    )
