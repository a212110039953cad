"""`smart watch`: ``Index.watch``: index once, then keep the index fresh as files change; one line
per change on stderr (``--json``: one JSON line per update on stdout)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import typer

from smartcli import defaults
from smartcli.cli.errors import EXIT_INTERRUPTED, EXIT_OK, describe, exit_code
from smartcli.cli.options import DeviceOption, StoreOption
from smartcli.cli.present import display_path, print_json_line, warn
from smartcli.cli.progress import progress_interval


def watch(
    paths: list[Path] | None = typer.Argument(
        None,
        help="Files or folders to index and then watch. Default: the paths the store already covers.",
        show_default=False,
    ),
    store: Path | None = StoreOption,
    model: str | None = typer.Option(
        None,
        "--model",
        help="Hugging Face id or local folder of the embedding model of a new store. Default: the store's, else the packaged all-MiniLM-L6-v2.",
        show_default=False,
    ),
    device: str = DeviceOption,
    settle: float = typer.Option(
        defaults.WATCH_SETTLE_SECONDS,
        "--settle",
        min=0,
        help="Seconds a changed file's size and modification time must stay the same before it is read (files still being written wait).",
    ),
    scan_every: float = typer.Option(
        defaults.WATCH_SCAN_SECONDS,
        "--scan-every",
        min=0.1,
        help="Seconds between scans of paths whose file system sends no change events (network mounts).",
    ),
    scan: bool = typer.Option(False, "--scan", help="Scan every path each --scan-every seconds instead of listening for change events."),
    json_output: bool = typer.Option(
        False, "--json", help="One JSON object per line on stdout: the paths watched, then each update's changes."
    ),
    ocr: str = typer.Option(
        defaults.OCR_MODE,
        "--ocr",
        help="OCR for text models: auto (images, and pages whose text layer is empty or nearly so), always (every page) or never.",
    ),
    ocr_lang: str = typer.Option(
        defaults.OCR_LANGUAGE, "--ocr-lang", help="Tesseract language(s) of the OCR, joined by '+': eng, deu, eng+fra."
    ),
    ocr_workers: int = typer.Option(
        defaults.OCR_WORKERS, "--ocr-workers", min=0, help="OCR worker processes. Default: one per CPU.", show_default=False
    ),
    batch_pages: int = typer.Option(
        defaults.BATCH_PAGES,
        "--batch-pages",
        min=1,
        help="Pages committed to the store per batch (a stop, or a crash, keeps finished batches).",
    ),
    read_timeout: float = typer.Option(
        defaults.READ_TIMEOUT_SECONDS,
        "--read-timeout",
        min=0.1,
        help="Seconds one file's text may take to read; a file past it is skipped, and not read again until it changes.",
    ),
) -> None:
    """Index PATHS (or the store's paths) once, then keep the index fresh by itself: new, changed, moved, copied
    and deleted files are picked up as they change, while searches keep answering. Ctrl-C or SIGTERM stops it
    after the batch being committed."""
    from smartcli import Index, SmartError, UpdateOptions, WatchOptions

    try:
        options = UpdateOptions(
            ocr=ocr, ocr_lang=ocr_lang, ocr_workers=ocr_workers, batch_pages=batch_pages, read_timeout=read_timeout, wait=True
        )
        watching = WatchOptions(settle=settle, scan_every=scan_every, scan_only=scan)
        index = Index.open(store, create=True, model=model, device=device)
    except SmartError as exc:
        warn(describe(exc))
        raise typer.Exit(exit_code(exc)) from None
    raise typer.Exit(run_watch(index, list(paths) if paths else None, options, watching, json_output))


def run_watch(index, paths, options, watching, json_output: bool) -> int:
    from smartcli import SmartError

    stop = threading.Event()
    events = printed_events(json_output, watching.scan_every)
    try:
        with StopOnSignals(stop):
            summary = index.watch(paths, options, watching, events=events, stop=stop)
    except KeyboardInterrupt:
        warn("interrupted: every committed batch is kept; the next start resumes")
        return EXIT_INTERRUPTED
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    if json_output:
        print_json_line({"event": "stopped", **summary.as_json()})
    warn(f"stopped after {summary.updates} update(s): {changes_line(summary)}")
    return EXIT_OK


class StopOnSignals:
    """Ctrl-C and SIGTERM set ``stop`` (the watch ends after the batch being committed); a
    second Ctrl-C stops at once."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.previous: dict = {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.previous[signum] = signal.signal(signum, self._asked)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _asked(self, signum, frame):
        if self.stop.is_set():
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        self.stop.set()
        warn("stopping after the batch being committed (Ctrl-C again stops at once)")


def changes_line(c) -> str:
    return f"{c.added} added, {c.updated} updated, {c.moved} moved, {c.copied} copied, {c.removed} removed, {c.pages_encoded} pages encoded"


def change_lines(change) -> list[str]:
    """One line per changed file (skips are said by the update itself, as they happen)."""
    lines = [f"added {display_path(p)}" for p in change.added]
    lines += [f"updated {display_path(p)}" for p in change.updated]
    lines += [f"moved {display_path(m['from'])} -> {display_path(m['to'])}" for m in change.moved]
    lines += [f"copied {display_path(p)}" for p in change.copied]
    lines += [f"removed {display_path(p)}" for p in change.removed]
    return lines


def printed_events(json_output: bool, scan_every: float):
    """The watcher's events as lines on stderr (and JSON lines on stdout with ``--json``)."""
    from smartcli import WatchEvents

    class Printed(WatchEvents):
        def __init__(self):
            self.said = None  # when the last progress line was printed (None: no update is encoding)

        def message(self, text: str) -> None:
            warn(text)

        def waiting(self) -> None:
            warn("waiting for another writer to finish")

        def started(self, total_pages: int) -> None:
            self.said = time.monotonic()

        def committed(self, files: int, pages: int, encoded: int, total_pages: int) -> None:
            if self.said is not None and time.monotonic() - self.said >= progress_interval():
                warn(f"indexing: {pages}/{total_pages} pages committed")
                self.said = time.monotonic()

        def watching(self, watched: list[str], scanned: dict[str, str]) -> None:
            for root, why in scanned.items():
                warn(f"{display_path(root)}: scanned every {scan_every:g} s" + ("" if why == "asked" else f" ({why})"))
            if watched:
                named = ", ".join(map(display_path, watched)) if len(watched) <= 3 else f"{len(watched)} paths"
                warn(f"watching {named} for changes (Ctrl-C stops)")
            if json_output:
                print_json_line({"event": "watching", "watched": watched, "scanned": scanned})

        def changed(self, change) -> None:
            if change.cause == "start":
                warn(f"up to date: {changes_line_of(change)}, in {change.seconds:.1f} s")
            else:
                for line in change_lines(change):
                    warn(line)
            if json_output:
                print_json_line({"event": "change", **change.as_json()})

        def failed(self, error, retry_in: float) -> None:
            warn(f"{describe(error)}; trying again in {retry_in:g} s")

    return Printed()


def changes_line_of(change) -> str:
    return (
        f"{len(change.added)} added, {len(change.updated)} updated, {len(change.moved)} moved, "
        f"{len(change.copied)} copied, {len(change.removed)} removed, {len(change.skipped)} skipped"
    )
