"""`smart index`: update the index through ``Index.update``, with progress on stderr and a summary on stdout."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from smartcli.cli.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SKIPPED, describe, exit_code
from smartcli.cli.present import format_bytes, print_json_line, print_line, printable, stderr, warn


def run_index(
    paths: list[Path] | None,
    store_path: Path | None,
    model: str | None,
    device: str,
    batch_pages: int,
    batch_size: int | None,
    token_dtype: str,
    rebuild: bool,
    dry_run: bool,
    json_output: bool,
    wait: bool = False,
    dpi: float | None = None,
    max_pixels: int | None = None,
    ocr: str = "auto",
    ocr_lang: str = "eng",
    ocr_workers: int = 0,
    qdrant: dict | None = None,
    read_timeout: float | None = None,
) -> int:
    from smartcli import Index, SmartError

    paths = list(paths) if paths else None  # none: the paths the store already covers
    try:
        index = Index.open(store_path, create=True, model=model, device=device, token_dtype=token_dtype)
        if dry_run:
            print_plan(index.plan(paths, ocr=ocr, ocr_lang=ocr_lang, wait=wait), json_output)
            return EXIT_OK
        progress = _Progress(index.path)
        try:
            with progress as events:
                summary = index.update(
                    paths, ocr=ocr, ocr_lang=ocr_lang, ocr_workers=ocr_workers, batch_pages=batch_pages, batch_size=batch_size,
                    dpi=dpi, max_pixels=max_pixels, rebuild=rebuild, wait=wait, events=events,
                    **({} if read_timeout is None else {"read_timeout": read_timeout}),
                )
        except KeyboardInterrupt:
            files = progress.counts.files
            warn(f"interrupted: {files} file{'' if files == 1 else 's'} committed; run again to resume")
            return EXIT_INTERRUPTED
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    mirrored = None
    if qdrant is not None:
        from smartcli.cli.sync_cmd import print_sync

        try:
            mirrored = index.sync(**qdrant, wait=wait, events=_Messages())
        except SmartError as exc:
            print_summary(summary, json_output)
            warn(f"{describe(exc)}; the local store is up to date, run the same command again to finish the Qdrant sync")
            return exit_code(exc)
    print_summary(summary, json_output, extra={"qdrant": mirrored.as_json()} if mirrored is not None else None)
    if mirrored is not None and not json_output:
        print_sync(mirrored, False)
    return EXIT_OK if summary.complete else EXIT_SKIPPED


def _Messages():
    from smartcli import UpdateEvents

    class Messages(UpdateEvents):
        def message(self, text: str) -> None:
            warn(text)

    return Messages()


class _Progress:
    """The engine's events as progress on stderr: a live line on a terminal, else a plain line every
    few seconds (progress.py). Both count pages committed, never pages read."""

    def __init__(self, store_path: Path):
        from smartcli import UpdateEvents
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        from smartcli.cli.progress import PlainTicker, RunCounts, progress_interval

        self.store_path = store_path
        self.counts = counts = RunCounts()
        show = stderr.is_terminal

        class Counts(ProgressColumn):
            def render(self, task):
                return Text(counts.line(), style="progress.remaining")

        self.progress = Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(bar_width=20), Counts(), console=stderr, disable=not show,
        )
        self.ticker = None if show else PlainTicker(counts, warn, progress_interval())
        outer = self

        class Events(UpdateEvents):
            wants_progress = True

            def message(self, text: str) -> None:
                outer.progress.console.print(f"smart: {printable(text)}", highlight=False, markup=False, soft_wrap=True)

            def started(self, total_pages: int) -> None:
                counts.started(total_pages)
                outer.progress.update(outer.task, total=total_pages, visible=True)

            def committed(self, files: int, pages: int, encoded: int, total_pages: int) -> None:
                counts.committed(files, pages, encoded, total_pages)
                outer.progress.update(outer.task, completed=pages, total=total_pages)

            def ocr_queued(self, n: int) -> None:
                with counts.lock:
                    counts.ocr_queued += n

            def ocr_done(self, n: int) -> None:
                with counts.lock:
                    counts.ocr_done += n

            def waiting(self) -> None:
                warn(f"waiting for another writer to finish with {outer.store_path}")

        self.events = Events()

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task("indexing", total=None, visible=False)
        if self.ticker:
            self.ticker.start()
        return self.events

    def __exit__(self, exc_type, *exc):
        if self.ticker:
            self.ticker.stop(finished=exc_type is None)
        self.progress.__exit__(exc_type, *exc)


def print_plan(plan, json_output: bool) -> None:
    data = plan.as_json()
    line = not_indexable_line(data["not_indexable"])
    if line:
        warn(line)
    if json_output:
        print_json_line(data)
        return
    actions = (
        [("add", p) for p in data["add"]]
        + [("update", p) for p in data["update"]]
        + [("move", f"{m['from']} -> {m['to']}") for m in data["move"]]
        + [("copy", p) for p in data["copy"]]
        + [("remove", p) for p in data["remove"]]
        + [("skip", f"{s['path']}: {s['reason']}") for s in data["skip"]]
    )
    for action, what in actions:
        print_line(f"{action:7} {what}")
    print_line(f"{data['unchanged']} unchanged")


def not_indexable_line(counts: dict) -> str | None:
    """``not indexable: 12 .txt, 3 .md``: files under the paths of no indexable type, by suffix."""
    if not counts:
        return None
    return "not indexable: " + ", ".join(f"{n} {suffix or 'without a suffix'}" for suffix, n in counts.items())


def print_summary(summary, json_output: bool, extra: dict | None = None) -> None:
    from smartcli.cli.present import not_encoded_warnings

    line = not_indexable_line(summary.as_json()["not_indexable"])
    if line:
        warn(line)
    for line in not_encoded_warnings(summary.not_encoded, summary.ocr):
        warn(line)
    if summary.compaction:
        c = summary.compaction
        warn(
            f"compacted the store: {c['segments_rewritten']} segment(s) rewritten into {c['segments_written']}, "
            f"{c['dead_rows_dropped']} dead row(s) dropped, {format_bytes(c['bytes_reclaimed'])} reclaimed"
        )
    if json_output:
        print_json_line({**summary.as_json(), **(extra or {})})
        return
    line = (
        f"{summary.added} added, {summary.updated} updated, {summary.removed} removed, "
        f"{summary.moved} moved, {summary.copied} copied, {summary.unchanged} unchanged, "
        f"{len(summary.skipped)} skipped" + (f", {len(summary.partly_indexed)} partly indexed" if summary.partly_indexed else "")
    )
    print_line(line)
    if summary.skipped:
        print_line(f"skipped: {reasons_line(summary.skipped)}")
    if summary.partly_indexed:
        print_line(f"partly indexed: {len(summary.partly_indexed)} damaged file(s), readable pages kept")
    if summary.pages_encoded:
        print_line(
            f"{summary.pages_encoded} pages encoded, {summary.tokens_encoded} token states, "
            f"{format_bytes(summary.bytes_written)} written ({format_bytes(summary.bytes_per_page)} per page)"
        )
    if summary.renormalized:
        print_line(f"{summary.renormalized} file(s) encoded again for the new text normalization (ligatures, invisible characters)")
    ocr = summary.ocr or {}
    if ocr.get("attempted"):
        print_line(
            f"{ocr['attempted']} pages through OCR ({ocr['language']}), text from {ocr['pages']}, "
            f"in {ocr['seconds']:.1f} s ({ocr['attempted'] / max(ocr['seconds'], 1e-9):.2f} pages/s, "
            f"{ocr['workers']} workers)"
        )
    print_line(f"store: {summary.store}")


def reasons_line(skipped) -> str:
    """``2 not a readable PDF, 1 empty file``: skipped files counted by reason (details are on stderr)."""
    counts = Counter(s.reason.split(" (")[0] for s in skipped)
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
