"""What `smart index` shows while it works: counts of what is encoded and committed, and an ETA
from the throughput measured on them.

Pages are "done" once the batch holding them is committed (encoded, or recorded as not
encodable), never when they are read; "encoded" counts pages as they are encoded, also those of a
long file whose slices are encoded and written ahead of its commit (indexer.py ``_commit``), so a
file of hundreds of pages shows its progress while it is encoded. The rate is measured on pages
finished (committed, or encoded and waiting for their file's commit) over the last
:attr:`Throughput.window` seconds, and it keeps falling while nothing moves, so the ETA grows
during a stall instead of freezing. The last line gives the run's average rate.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

from smartcli import defaults

PROGRESS_SECONDS_ENV = "SMART_PROGRESS_SECONDS"  # overrides defaults.PROGRESS_SECONDS (tests, logs)


class Throughput:
    """Pages per second measured on commits, and the ETA it gives. Times are ``time.monotonic()`` seconds."""

    def __init__(self, window: float = 30.0):
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()  # (time, pages done), oldest first

    def start(self, now: float, done: int = 0) -> None:
        self.samples.clear()
        self.samples.append((now, done))

    def update(self, now: float, done: int) -> None:
        if not self.samples:
            self.start(now, done)
            return
        self.samples.append((now, done))
        # Keep the newest sample at or before the window's start (the rate's base), and the rest.
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window:
            self.samples.popleft()

    @property
    def done(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def rate(self, now: float) -> float | None:
        """Pages per second from the newest sample at or before ``now - window`` (never the last
        sample itself, unless it is the only one) to ``now``; None before anything was committed."""
        if len(self.samples) < 2:
            return None
        base_time, base_done = self.samples[0]
        for t, d in list(self.samples)[:-1]:
            if t <= now - self.window:
                base_time, base_done = t, d
        elapsed = now - base_time
        if elapsed <= 0:
            return None
        return (self.done - base_done) / elapsed

    def eta(self, now: float, total: int) -> float | None:
        """Seconds until ``total`` pages are done at the measured rate; None while it cannot be measured."""
        remaining = total - self.done
        if remaining <= 0:
            return 0.0
        rate = self.rate(now)
        if not rate:
            return None
        return remaining / rate


def clock(seconds: float | None) -> str:
    """``0:01:05``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_interval() -> float:
    try:
        value = float(os.environ.get(PROGRESS_SECONDS_ENV, ""))
    except ValueError:
        return defaults.PROGRESS_SECONDS
    return value if value > 0 else defaults.PROGRESS_SECONDS


class RunCounts:
    """The counts of a run, updated from the engine's events (any thread) and read by the display."""

    def __init__(self, throughput: Throughput | None = None):
        self.lock = threading.Lock()
        self.throughput = throughput or Throughput()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.total = 0
        self.files = self.pages = self.encoded = 0
        self.pending = 0  # pages encoded since the last commit (their files not committed yet)
        self.ocr_queued = self.ocr_done = 0

    def started(self, total: int) -> None:
        with self.lock:
            self.started_at = time.monotonic()
            self.total = total
            self.throughput.start(self.started_at)

    def encoded_now(self, n: int) -> None:
        """``n`` more pages encoded, their files not committed yet."""
        with self.lock:
            self.pending += n
            self.throughput.update(time.monotonic(), max(self.throughput.done, self.pages + self.pending))

    def committed(self, files: int, pages: int, encoded: int, total: int) -> None:
        with self.lock:
            self.files, self.pages, self.encoded, self.total = files, pages, encoded, total
            self.pending = 0  # the batch's encoded pages are committed now (or left for the next run)
            self.throughput.update(time.monotonic(), max(self.throughput.done, pages))

    def finish(self) -> None:
        """The run ended: the next :meth:`line` is the last (the run's average rate and time)."""
        with self.lock:
            self.finished_at = time.monotonic()

    def state(self) -> tuple:
        """The counts a line shows (a line whose state did not change says nothing new)."""
        with self.lock:
            return (self.pages, self.total, self.encoded + self.pending, self.files, self.ocr_done, self.ocr_queued)

    def line(self, final: bool | None = None) -> str:
        """``120/877 pages done (118 encoded), 3 files committed, 14.2 pages/s, eta 0:00:54``; the
        last line (``final``, by default once :meth:`finish` was called) gives the average rate of
        the run and its time instead: ``877/877 pages done (870 encoded), 30 files committed, 12.9
        pages/s, in 0:01:08``."""
        with self.lock:
            final = self.finished_at is not None if final is None else final
            now = self.finished_at or time.monotonic()
            rate = self.throughput.rate(now)
            files = f"{self.files} file{'' if self.files == 1 else 's'} committed"
            text = f"{self.pages}/{self.total} pages done ({self.encoded + self.pending} encoded), {files}"
            if final:
                elapsed = now - (self.started_at or now)
                average = self.pages / elapsed if elapsed > 0 else None
                text += (f", {average:.1f} pages/s" if average is not None else "") + f", in {clock(elapsed)}"
            else:
                text += (f", {rate:.1f} pages/s" if rate is not None else "") + f", eta {clock(self.throughput.eta(now, self.total))}"
            if self.ocr_queued or self.ocr_done:
                text += f"; OCR {self.ocr_done}/{self.ocr_queued} pages"
            return text


class PlainTicker:
    """Every ``interval`` seconds, ``emit(counts.line())`` when the counts changed since the last
    line (stderr is not a terminal: a log, a pipe; a stall prints nothing rather than the same
    line again and again).

    Nothing is printed before the first interval has passed, so a short run stays quiet; a run
    that printed a line prints a last one when it ends, with the counts of the summary and the
    run's average rate.
    """

    def __init__(self, counts: RunCounts, emit, interval: float):
        self.counts, self.emit, self.interval = counts, emit, interval
        self.printed = False
        self._last = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smart-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            state = self.counts.state()
            if self.counts.started_at is not None and state != self._last:
                self.emit(self.counts.line(final=False))
                self._last = state
                self.printed = True

    def stop(self, finished: bool) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if finished and self.printed:
            self.emit(self.counts.line(final=True))
