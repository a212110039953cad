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
    loop = _Listening(runner, watching, events, os.path.abspath(index.path))
    with ChangeFeed(*loop.folders_and_files()) as feed:
        while not runner.stopped and not stop.is_set():
            loop.tick(feed.get(loop.tick_seconds), time.monotonic())
    return runner.summary


class _Listening:
    """What the watcher does with each burst of changes, and on each tick of its clock."""

    def __init__(self, runner: _Updates, watching: WatchOptions, events: WatchEvents, store: str):
        self.runner, self.watching, self.events, self.store = runner, watching, events, store
        self.roots = runner.roots
        self.scanned = _to_scan(self.roots, watching)
        self.listened = [r for r in self.roots if r not in self.scanned]
        self.settling = Settling(watching.settle, watching.hold)
        self.tick_seconds = min(0.25, max(watching.settle / 4, 0.02))
        self.next_scan = time.monotonic() + watching.scan_every
        self.retry: tuple[float, list[str]] | None = None  # (when, paths) of an update the disk failed
        events.watching(self.listened, self.scanned)

    def folders_and_files(self) -> tuple[list[str], list[str]]:
        folders = [r for r in self.listened if os.path.isdir(r)]
        return folders, [r for r in self.listened if r not in folders]

    def tick(self, got: list[str] | BaseException | None, now: float) -> None:
        held = self.settling.paths()
        if isinstance(got, BaseException):
            self.scanned.update({root: f"the watcher stopped ({got})" for root in self.listened})
            self.listened = []
            self.events.watching(self.listened, self.scanned)
        elif got:
            self.settling.note([p for p in got if relevant(p, self.roots, self.store, self.runner.known)], now)
        ready = self.settling.ready(now)
        if self.settling.paths() != held:
            self.events.settling(self.settling.paths())
        if self.retry is not None and now >= self.retry[0]:
            ready, self.retry = sorted(set(ready) | set(self.retry[1])), None
        if ready:
            self._update(update_paths(ready, self.roots), "events")
        if self.scanned and now >= self.next_scan:
            # A root that is gone and holds nothing indexed any more has nothing to scan until it is back.
            due = [root for root in self.scanned if os.path.exists(root) or self.runner.known.holds(root)]
            if due:
                self._update(due, "scan")
            self.next_scan = time.monotonic() + self.watching.scan_every

    def _update(self, paths: list[str], cause: str) -> None:
        """Run an update; one the disk failed (full, I/O) is tried again later with its paths."""
        try:
            self.runner.run(paths, cause)
        except SmartError as exc:
            if exc.kind not in RETRIED:
                raise
            self.events.failed(exc, self.watching.retry)
            earlier = self.retry[1] if self.retry else []
            self.retry = time.monotonic() + self.watching.retry, sorted(set(earlier) | set(paths))


def _to_scan(roots: list[str], watching: WatchOptions) -> dict[str, str]:
    """The roots to scan rather than listen to, each with why."""
    if watching.scan_only:
        return {root: "asked" for root in roots}
    scanned = {}
    for root in roots:
        reason = "it does not exist now" if not os.path.exists(root) else without_events(root)
        if reason:
            scanned[root] = reason
    return scanned


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

    def encoded(self, n: int) -> None:
        self.events.encoded(n)

    def ocr_queued(self, n: int) -> None:
        self.events.ocr_queued(n)

    def ocr_done(self, n: int) -> None:
        self.events.ocr_done(n)

    def waiting(self) -> None:
        self.events.waiting()
