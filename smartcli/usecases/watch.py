"""Keeping an index fresh by itself (``smart watch``, ``Index.watch``): index once, then listen
for changes under the store's roots and run the same incremental update on what changed.

One code path decides what is new, changed, moved, copied or gone: :meth:`Index.update`. The
watcher only chooses when to call it and on which paths (ingest/watching.py: the native
watcher's bursts, held until the files settle). Every update commits in whole batches, so a
watcher killed at any moment loses nothing: the next start's first update resumes. A stop
asked for (``stop`` set: Ctrl-C, SIGTERM) ends the run after the batch being committed.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field, replace

from smartcli import defaults
from smartcli.errors import ErrorKind, OptionError, SmartError
from smartcli.ingest.events import UpdateEvents
from smartcli.ingest.pipeline import UpdateOptions
from smartcli.ingest.watching import ChangeFeed, KnownPaths, Settling, relevant, update_paths, without_events
from smartcli.store.catalog import reads
from smartcli.usecases.store_access import reading

# A failed disk (full, an I/O error) is waited out; anything else wrong with the store ends the watch.
RETRIED = (ErrorKind.DISK_FULL, ErrorKind.STORE_IO)


@dataclass(frozen=True)
class WatchOptions:
    """How :meth:`Index.watch` listens (``smart watch``'s options), checked once here.

    ``settle``: seconds a changed file's size and mtime must stay the same before it is read;
    ``scan_every``: seconds between scans of roots that send no change events (network
    mounts), or of every root with ``scan_only``; ``hold``: the longest settled changes wait
    for a file still being written; ``retry``: seconds before an update that failed on the
    disk is tried again."""

    settle: float = defaults.WATCH_SETTLE_SECONDS
    scan_every: float = defaults.WATCH_SCAN_SECONDS
    scan_only: bool = False
    hold: float = defaults.WATCH_HOLD_SECONDS
    retry: float = defaults.WATCH_RETRY_SECONDS

    def __post_init__(self):
        for option in ("settle", "scan_every", "hold", "retry"):
            value = getattr(self, option)
            if not value >= 0 or (option == "scan_every" and not value > 0):
                raise OptionError(f"must be a positive number of seconds, not {value}", option=option)


@dataclass
class WatchChange:
    """What one update of the watcher changed. ``cause``: "start" (the first update), "events"
    (changes heard) or "scan" (a periodic scan)."""

    cause: str
    paths: list[str]  # what the update looked at
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    moved: list[dict] = field(default_factory=list)  # {"from", "to"}
    copied: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"path", "code", "detail", "reason"}
    pages_encoded: int = 0
    seconds: float = 0.0

    @property
    def empty(self) -> bool:
        return not (self.added or self.updated or self.moved or self.copied or self.removed or self.skipped)

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class WatchSummary:
    """What a watch did until it stopped."""

    updates: int = 0
    added: int = 0
    updated: int = 0
    moved: int = 0
    copied: int = 0
    removed: int = 0
    pages_encoded: int = 0

    def count(self, change: WatchChange) -> None:
        self.updates += 1
        self.added += len(change.added)
        self.updated += len(change.updated)
        self.moved += len(change.moved)
        self.copied += len(change.copied)
        self.removed += len(change.removed)
        self.pages_encoded += change.pages_encoded

    def as_json(self) -> dict:
        return asdict(self)


class WatchEvents(UpdateEvents):
    """What :meth:`Index.watch` tells its caller (all optional), besides each update's
    :class:`~smartcli.ingest.events.UpdateEvents`: ``watching(watched, scanned)`` once the
    first update is done (the roots listened to, and the roots scanned with why);
    ``changed(change)`` after each update that changed something (a :class:`WatchChange`);
    ``settling(paths)`` when changed files are held until they settle; ``failed(error,
    retry_in)`` when an update failed on the disk and will be tried again."""

    def watching(self, watched: list[str], scanned: dict[str, str]) -> None:
        pass

    def changed(self, change: WatchChange) -> None:
        pass

    def settling(self, paths: list[str]) -> None:
        pass

    def failed(self, error: SmartError, retry_in: float) -> None:
        pass


class _Stopped(BaseException):
    """Raised after a committed batch when a stop was asked for (never caught by ``except Exception``)."""


def watch(index, paths, options: UpdateOptions, watching: WatchOptions, events: WatchEvents, stop: threading.Event) -> WatchSummary:
    """Index ``paths`` (None: the store's roots) once, then keep the store's roots fresh until ``stop`` is set."""
    runner = _Updates(index, replace(options, wait=True), events, stop)
    if not runner.run(paths, "start"):
        return runner.summary
    roots = runner.roots
    scanned = {root: "asked" for root in roots} if watching.scan_only else {}
    for root in roots:
        if root not in scanned:
            reason = "it does not exist now" if not os.path.exists(root) else without_events(root)
            if reason:
                scanned[root] = reason
    listened = [r for r in roots if r not in scanned]
    events.watching(listened, scanned)
    folders = [r for r in listened if os.path.isdir(r)]
    files = [r for r in listened if r not in folders]
    settling = Settling(watching.settle, watching.hold)
    store = os.path.abspath(index.path)
    tick = min(0.25, max(watching.settle / 4, 0.02))
    next_scan = time.monotonic() + watching.scan_every
    retry: tuple[float, list[str]] | None = None
    with ChangeFeed(folders, files) as feed:
        while not runner.stopped and not stop.is_set():
            got = feed.get(tick)
            now = time.monotonic()
            held = settling.paths()
            if isinstance(got, BaseException):
                scanned.update({root: f"the watcher stopped ({got})" for root in listened})
                listened = []
                events.watching(listened, scanned)
            elif got:
                settling.note([p for p in got if relevant(p, roots, store, runner.known)], now)
            ready = settling.ready(now)
            if settling.paths() != held:
                events.settling(settling.paths())
            if retry is not None and now >= retry[0]:
                ready, retry = sorted(set(ready) | set(retry[1])), None
            if ready:
                retry = _retry_on_failure(runner, update_paths(ready, roots), "events", watching, events) or retry
            if scanned and now >= next_scan:
                # A root that is gone and holds nothing indexed any more has nothing to scan until it is back.
                due = [root for root in scanned if os.path.exists(root) or runner.known.holds(root)]
                if due:
                    retry = _retry_on_failure(runner, due, "scan", watching, events) or retry
                next_scan = time.monotonic() + watching.scan_every
    return runner.summary


def _retry_on_failure(runner, paths: list[str], cause: str, watching: WatchOptions, events: WatchEvents):
    """Run an update; when the disk failed it, (when to try again, its paths)."""
    try:
        runner.run(paths, cause)
    except SmartError as exc:
        if exc.kind not in RETRIED:
            raise
        events.failed(exc, watching.retry)
        return time.monotonic() + watching.retry, paths
    return None


class _Updates:
    """Runs :meth:`Index.update` for the watcher, tells what each changed, and stops between
    batches when asked."""

    def __init__(self, index, options: UpdateOptions, events: WatchEvents, stop: threading.Event):
        self.index, self.options, self.events, self.stop = index, options, events, stop
        self.summary = WatchSummary()
        self.stopped = False
        self.roots: list[str] = []
        self.known = KnownPaths()

    def run(self, paths, cause: str) -> bool:
        """One update of ``paths``; False when a stop ended it."""
        if self.stop.is_set():
            self.stopped = True
            return False
        relay = _Relay(self.events, self.stop)
        started = time.monotonic()
        try:
            summary = self.index.update(paths, self.options, events=relay)
        except _Stopped:
            self.stopped = True
            return False
        except SmartError as exc:
            if cause != "start" and exc.kind is ErrorKind.BAD_INPUT and exc.details.get("reason") == "nothing_indexable":
                return True  # only files of other types changed there
            raise
        self._read_catalog()
        change = _change_of(cause, paths, relay.plan, summary, time.monotonic() - started)
        self.summary.count(change)
        if not change.empty or cause == "start":
            self.events.changed(change)
        return True

    def _read_catalog(self) -> None:
        with reading(self.index.path, verify=False) as store:
            self.roots = store.roots
            self.known = KnownPaths(reads.file_hashes(store))


def _change_of(cause: str, paths, plan, summary, seconds: float) -> WatchChange:
    skipped = {s.path for s in summary.skipped}
    return WatchChange(
        cause=cause,
        paths=[os.fspath(p) for p in paths or []],
        added=[s.path for s in plan.new if s.path not in skipped],
        updated=[s.path for s in plan.changed if s.path not in skipped],
        moved=[{"from": old, "to": s.path} for old, s in plan.moved],
        copied=[s.path for s in plan.copied + plan.duplicates if s.path not in skipped],
        removed=list(plan.removed),
        skipped=[s.as_json() for s in summary.skipped],
        pages_encoded=summary.pages_encoded,
        seconds=round(seconds, 3),
    )


class _Relay(UpdateEvents):
    """The caller's events for one update, plus the plan kept and a stop checked after each
    committed batch."""

    wants_progress = True

    def __init__(self, events: WatchEvents, stop: threading.Event):
        self.events, self.stop = events, stop
        self.plan = None

    def planned(self, plan) -> None:
        self.plan = plan
        self.events.planned(plan)

    def committed(self, files: int, pages: int, encoded: int, total_pages: int) -> None:
        self.events.committed(files, pages, encoded, total_pages)
        if self.stop.is_set():
            raise _Stopped

    def message(self, text: str) -> None:
        self.events.message(text)

    def started(self, total_pages: int) -> None:
        self.events.started(total_pages)

    def pages_done(self, n: int) -> None:
        self.events.pages_done(n)

    def ocr_queued(self, n: int) -> None:
        self.events.ocr_queued(n)

    def ocr_done(self, n: int) -> None:
        self.events.ocr_done(n)

    def waiting(self) -> None:
        self.events.waiting()
