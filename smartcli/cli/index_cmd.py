"""`smart index`: update the index through ``Index.update``, with progress on stderr and a summary on stdout."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from pathlib import Path

import typer

from smartcli import defaults
from smartcli.cli.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_SKIPPED, describe, exit_code
from smartcli.cli.options import (
    CollectionOption,
    DeviceOption,
    OnDiskOption,
    QdrantFormatOption,
    QdrantOption,
    ReplicasOption,
    ShardsOption,
    StoreOption,
)
from smartcli.cli.present import format_bytes, print_json_line, print_line, printable, stderr, warn


def index(
    paths: list[Path] | None = typer.Argument(
        None,
        help="Files or folders to index (folders are walked recursively). Default: the paths the store already covers.",
        show_default=False,
    ),
    store: Path | None = StoreOption,
    model: str | None = typer.Option(
        None,
        "--model",
        help="Hugging Face id or local folder of the embedding model. Default: the store's model, else the packaged all-MiniLM-L6-v2.",
    ),
    device: str = DeviceOption,
    batch_pages: int = typer.Option(
        defaults.BATCH_PAGES,
        "--batch-pages",
        min=1,
        help="Pages committed to the store per batch (an interrupted run keeps finished batches).",
    ),
    batch_size: int | None = typer.Option(
        None,
        "--batch-size",
        min=1,
        help=f"Text windows or pictures per forward pass. Default: {defaults.TEXT_BATCH_SIZE}; 8 for Qwen-VL-based models.",
        show_default=False,
    ),
    dpi: float | None = typer.Option(
        None,
        "--dpi",
        min=1,
        help="Image models: resolution PDF pages are rendered at. Default: what fills the model's pixel budget.",
        show_default=False,
    ),
    max_pixels: int | None = typer.Option(
        None,
        "--max-pixels",
        min=1,
        help="Qwen-VL and SigLIP 2 NaFlex models: pixel budget per page or image (sets token count and size). Default: the model's.",
        show_default=False,
    ),
    token_dtype: str = typer.Option(
        defaults.TOKEN_DTYPE,
        "--token-dtype",
        help="Storage of token states for a new store: binary (1 bit per dimension, ~31 KB per text page with the default model), int8 (per-token scale) or float16.",
    ),
    token_pooling: float | None = typer.Option(
        None,
        "--token-pooling",
        help="Pool a new store's token states by Ward clusters cut at this distance before storing them (0: none): 0.8 keeps"
        " a third of the tokens (17 KB a text page instead of 37) at a small cost in search quality. A store keeps its first run's."
        " Default: the store's, else 0.",
        show_default=False,
    ),
    precision: str | None = typer.Option(
        None,
        "--precision",
        help="How a new store's pages are encoded: fp32 (torch), int8 (a text model's 8-bit ONNX export on the CPU: about 1.1x the"
        " pages per CPU second, 1.4x per second, at a small cost in search quality), or auto (int8 for a text model on the CPU, else fp32)."
        f" A store keeps its first run's. Default: the store's, else {defaults.PRECISION}.",
        show_default=False,
    ),
    rebuild: bool = typer.Option(
        False,
        "--rebuild",
        help="Index from scratch into a new catalog built beside the old one and swapped in at the end (also the way out of a damaged store).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be added, updated, moved and removed, and change nothing."),
    json_output: bool = typer.Option(False, "--json", help="Print the end-of-run summary as one JSON object."),
    wait: bool = typer.Option(
        False, "--wait", help="If another `smart index` is writing to the store, wait for it instead of exiting with code 5."
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
    qdrant: str | None = QdrantOption,
    collection: str = CollectionOption,
    qdrant_format: str = QdrantFormatOption,
    shards: int | None = ShardsOption,
    replicas: int | None = ReplicasOption,
    on_disk: bool = OnDiskOption,
    read_timeout: float = typer.Option(
        defaults.READ_TIMEOUT_SECONDS,
        "--read-timeout",
        min=0.1,
        help="Seconds one file may take to open, count or read (in a worker process); a file past it is skipped, and not read again until it changes.",
    ),
) -> None:
    """Index PDFs and images under PATHS (new and changed files encoded, moved and copied ones recognized, gone ones removed).
    With --qdrant, the store is then mirrored into the collection (only the difference is sent)."""
    from smartcli import Index, SmartError, SyncOptions, UpdateOptions

    try:
        options = UpdateOptions(
            ocr=ocr,
            ocr_lang=ocr_lang,
            ocr_workers=ocr_workers,
            batch_pages=batch_pages,
            batch_size=batch_size,
            precision=precision,
            token_pooling=token_pooling,
            dpi=dpi,
            max_pixels=max_pixels,
            rebuild=rebuild,
            wait=wait,
            read_timeout=read_timeout,
        )
        mirror = (
            SyncOptions(qdrant, collection, token_format=qdrant_format, shards=shards, replicas=replicas, on_disk=on_disk, wait=wait)
            if qdrant
            else None
        )
        paths = list(paths) if paths else None  # none: the paths the store already covers
        if dry_run:
            raise typer.Exit(run_plan(lambda create: Index.open(store, create=create), paths, options, json_output))
        target = Index.open(store, create=True, model=model, device=device, token_dtype=token_dtype)
    except SmartError as exc:
        warn(describe(exc))
        raise typer.Exit(exit_code(exc)) from None
    raise typer.Exit(run_index(target, paths, options, mirror, json_output))


def run_plan(open_index, paths, options, json_output: bool) -> int:
    """Print what a run would do, changing nothing: a store that does not exist yet is not made
    (the plan is taken against an empty one in a scratch folder, removed with it)."""
    from smartcli import SmartError

    try:
        with _store_to_plan(open_index) as index:
            print_plan(index.plan(paths, options), json_output)
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    return EXIT_OK


@contextlib.contextmanager
def _store_to_plan(open_index):
    """``open_index(create)``'s store; where there is none, an empty one made in a scratch folder
    (a folder that holds other things is opened to be refused as it is: not a store)."""
    from smartcli import ErrorKind, Index, SmartError

    try:
        index, missing = open_index(False), None
    except SmartError as exc:
        if exc.kind is not ErrorKind.STORE_MISSING:
            raise
        index, missing = None, exc.details.get("path")
    if index is not None:
        yield index
    elif missing and os.path.isdir(missing) and os.listdir(missing):
        yield open_index(True)
    else:
        with tempfile.TemporaryDirectory(prefix="smart-dry-run-") as scratch:
            yield Index.open(Path(scratch) / "store", create=True)


def run_index(index, paths, options, mirror, json_output: bool) -> int:
    """Update the store, then mirror it into Qdrant when asked; progress on stderr, the summary on stdout."""
    from smartcli import SmartError

    progress = _Progress(index.path)
    try:
        with progress as events:
            summary = index.update(paths, options, events=events)
    except KeyboardInterrupt:
        files = progress.counts.files
        warn(f"interrupted: {files} file{'' if files == 1 else 's'} committed; run again to resume")
        return EXIT_INTERRUPTED
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    mirrored = None
    if mirror is not None:
        from smartcli.cli.sync_cmd import print_sync, printed_messages

        try:
            mirrored = index.sync(options=mirror, events=printed_messages())
        except SmartError as exc:
            print_summary(summary, json_output, paths=paths)
            warn(f"{describe(exc)}; the local store is up to date, run the same command again to finish the Qdrant sync")
            return exit_code(exc)
    print_summary(summary, json_output, extra={"qdrant": mirrored.as_json()} if mirrored is not None else None, paths=paths)
    if mirrored is not None and not json_output:
        print_sync(mirrored, False)
    return EXIT_OK if summary.complete else EXIT_SKIPPED


class _Progress:
    """The engine's events as progress on stderr: a live line on a terminal, else a plain line every
    few seconds when something changed (progress.py). Both count pages encoded and committed, never
    pages read."""

    def __init__(self, store_path: Path):
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        from smartcli import UpdateEvents
        from smartcli.cli.progress import PlainTicker, RunCounts, progress_interval

        self.store_path = store_path
        self.counts = counts = RunCounts()
        show = stderr.is_terminal

        class Counts(ProgressColumn):
            def render(self, task):
                return Text(counts.line(), style="progress.remaining")

        self.progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(bar_width=20),
            Counts(),
            console=stderr,
            disable=not show,
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

            def encoded(self, n: int) -> None:
                counts.encoded_now(n)

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
        if exc_type is None:
            self.counts.finish()  # the live line's last drawing: the run's average rate and time
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


def print_summary(summary, json_output: bool, extra: dict | None = None, paths=None) -> None:
    from smartcli.cli.present import not_encoded_warnings

    line = not_indexable_line(summary.as_json()["not_indexable"])
    if line:
        warn(line)
    for line in not_encoded_warnings(summary.not_encoded, summary.ocr):
        warn(line)
    if summary.pictures_without_text:
        warn(pictures_hint(summary.pictures_without_text, summary.store, paths))
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


# An image model that is small, fast on a CPU and reads photos (docs/vision-models.md lists others).
PICTURE_MODEL = "openai/clip-vit-base-patch32"


def pictures_hint(count: int, store: str, paths=None) -> str:
    """Once at the end of a run: pictures without text cannot be found with a text model, and how to
    search them (an image model reads their pixels; a store keeps one model, so they get their own)."""
    import shlex

    pictures = f"{count} picture{'s' if count != 1 else ''}"
    where = " ".join(shlex.quote(str(p)) for p in paths) if paths else "PATH"
    images_store = shlex.quote(f"{store.rstrip('/')}-images") if store else "~/pictures.smart"
    return (
        f"{pictures} without text cannot be found by the text model: to search {'them' if count != 1 else 'it'}, "
        f"get an image model once (`hf download {PICTURE_MODEL}`) and index the pictures into a store of their own "
        f"(`smart index {where} --model {PICTURE_MODEL} --store {images_store}`); other models: docs/vision-models.md"
    )


def reasons_line(skipped) -> str:
    """``2 not a readable PDF, 1 empty file``: skipped files counted by reason (details are on stderr)."""
    counts = Counter(s.reason.split(" (")[0] for s in skipped)
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
