"""`smart index`: plan, encode and commit; print a summary."""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from dataclasses import replace
from pathlib import Path

from smartcli import cli
from smartcli.output import format_bytes, print_json_line, print_line, printable, stderr, warn

DEFAULT_BATCH_SIZE = 32  # text windows per forward pass; pixel families set their own


def run_index(
    paths: list[Path],
    store_path: Path,
    model: str | None,
    device: str,
    batch_pages: int,
    batch_size: int,
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
) -> int:
    from smartcli.ocr import check_options, resolve_settings
    from smartcli.store import TOKEN_DTYPES, Store, StoreError, damaged_catalog

    if token_dtype not in TOKEN_DTYPES:
        warn(f"--token-dtype must be one of {', '.join(TOKEN_DTYPES)}, not {token_dtype!r}")
        return cli.EXIT_USAGE
    ocr_problem = check_options(ocr, ocr_lang)
    if ocr_problem:
        warn(ocr_problem)
        return cli.EXIT_USAGE
    ocr_settings = resolve_settings(ocr, ocr_lang, ocr_workers)
    try:
        store = Store.open_for_writing(
            store_path,
            wait=wait,
            rebuild=rebuild and not dry_run,
            on_wait=lambda: warn(f"waiting for another writer to finish with {store_path}"),
        )
    except StoreError as exc:
        warn(str(exc))
        return cli._store_error_code(exc)
    with store:
        try:
            return index_into(
                store, paths, model, device, batch_pages, batch_size, token_dtype, dry_run, json_output, dpi, max_pixels,
                ocr_settings,
            )
        except StoreError as exc:
            warn(str(exc))
            return cli._store_error_code(exc)
        except sqlite3.DatabaseError as exc:
            warn(str(damaged_catalog(store.root, exc)))
            return cli.EXIT_ERROR


def index_into(
    store, paths, model, device, batch_pages, batch_size, token_dtype, dry_run, json_output, dpi=None, max_pixels=None,
    ocr_settings=None,
) -> int:
    from smartcli.compaction import compact, needs_compaction
    from smartcli.encoders import ModelLoadError
    from smartcli.indexer import plan_changes
    from smartcli.ocr import OcrSettings, retry_notes
    from smartcli.pixel_indexing import render_options

    roots = [os.path.abspath(p) for p in paths]
    ocr_settings = ocr_for_model(ocr_settings or OcrSettings(mode="never"), store.model)
    reread = store.paths_awaiting_ocr(retry_notes()) if ocr_settings.available else set()
    plan, hashes = plan_changes(store, roots, reread)
    if dry_run:
        print_plan(plan, json_output)
        return cli.EXIT_OK
    try:
        options = render_options(store.model, model or (store.model.spec if store.model else None), dpi=dpi, max_pixels=max_pixels)
    except ValueError as exc:
        warn(str(exc))
        return cli.EXIT_USAGE
    encoder = LazyEncoder(store, model, device, token_dtype, options)
    try:
        if model is not None or (plan.to_encode and store.model is None):
            encoder.load()  # check --model against the store, or bind a new store's model, before any change
        if batch_size is None:
            batch_size = getattr(encoder, "default_batch_size", DEFAULT_BATCH_SIZE) if plan.to_encode else DEFAULT_BATCH_SIZE
        ocr_settings = ocr_for_model(ocr_settings, encoder.info)
        summary, ocr_stats = encode_with_progress(store, encoder, plan, hashes, batch_pages, batch_size, ocr_settings)
    except ModelLoadError as exc:
        warn(str(exc))
        return cli.EXIT_ERROR
    except ValueError as exc:  # render settings the model or the store cannot take
        warn(str(exc))
        return cli.EXIT_USAGE
    store.record_roots(roots)
    if needs_compaction(store):
        result = compact(store)
        summary.compaction = result.as_json()
        warn(
            f"compacted the store: {result.segments_rewritten} segment(s) rewritten into {result.segments_written}, "
            f"{result.dead_rows_dropped} dead row(s) dropped, {format_bytes(result.bytes_reclaimed)} reclaimed"
        )
    print_summary(summary, store, json_output, ocr_settings, ocr_stats)
    return cli.EXIT_OK if summary.complete else cli.EXIT_SKIPPED


def ocr_for_model(settings, info):
    """OCR is for text models: a store of a model that reads pixels pictures its pages instead."""
    if info is not None and info.consumes_pixels:
        return replace(settings, mode="never")
    return settings


class LazyEncoder:
    """Loads the model (and binds it to the store) the first time something must be encoded.

    A run that only moves, copies or removes files never pays for loading the model.
    """

    def __init__(self, store, model: str | None, device: str, token_dtype: str, options: dict | None = None):
        self.store, self.model, self.device, self.token_dtype = store, model, device, token_dtype
        self.options = options
        self._encoder = None

    def load(self):
        from smartcli.encoders import load_encoder

        if self._encoder is None:
            spec = self.model or (self.store.model.spec if self.store.model else None)
            encoder = load_encoder(spec, self.device, self.options)
            self.store.bind_model(encoder.info, self.token_dtype)
            self._encoder = encoder
        return self._encoder

    @property
    def info(self):
        """The model's description: the stored one until the model itself is needed."""
        return self._encoder.info if self._encoder is not None else self.store.model

    def encode(self, texts, batch_size: int = 32):
        return self.load().encode(texts, batch_size) if texts else []

    def __getattr__(self, name):
        # Anything else (encode_images, max_pixels, ...) needs the real model.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.load(), name)


def encode_with_progress(store, encoder, plan, hashes, batch_pages, batch_size, ocr_settings):
    """Run the indexer under a progress display: pages, and an OCR line when pages go through OCR."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from smartcli.indexer import Indexer, total_pages
    from smartcli.ocr import OcrRunner

    show = stderr.is_terminal and bool(plan.to_encode)
    total = total_pages(plan.to_encode) + len(plan.copied) + len(plan.duplicates) if show else 0
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr, disable=not show) as progress:
        task = progress.add_task("indexing", total=total)
        ocr_task = progress.add_task("OCR", total=0, visible=False)

        def report(message: str) -> None:
            progress.console.print(f"smart: {printable(message)}", highlight=False, markup=False, soft_wrap=True)

        def ocr_queued(n: int) -> None:
            progress.update(ocr_task, total=progress.tasks[ocr_task].total + n, visible=True)

        ocr = OcrRunner(ocr_settings, report=report, on_queued=ocr_queued, on_done=lambda n: progress.advance(ocr_task, n))
        with ocr:
            indexer = Indexer(store, encoder, batch_pages=batch_pages, encode_batch_size=batch_size, report=report, ocr=ocr)
            summary = indexer.run(plan, hashes, progress=lambda n: progress.advance(task, n))
        return summary, ocr.stats


def print_plan(plan, json_output: bool) -> None:
    unchanged = len(plan.unchanged) + len(plan.touched)
    if json_output:
        print_json_line(
            {
                "add": [s.path for s in plan.new],
                "update": [s.path for s in plan.changed],
                "move": [{"from": old, "to": s.path} for old, s in plan.moved],
                "copy": [s.path for s in plan.copied + plan.duplicates],
                "remove": plan.removed,
                "skip": [{"path": s.path, "reason": s.reason} for s in plan.skipped],
                "unchanged": unchanged,
            }
        )
        return
    actions = (
        [("add", s.path) for s in plan.new]
        + [("update", s.path) for s in plan.changed]
        + [("move", f"{old} -> {s.path}") for old, s in plan.moved]
        + [("copy", s.path) for s in plan.copied + plan.duplicates]
        + [("remove", p) for p in plan.removed]
        + [("skip", f"{s.path}: {s.reason}") for s in plan.skipped]
    )
    for action, what in actions:
        print_line(f"{action:7} {what}")
    print_line(f"{unchanged} unchanged")


def print_summary(summary, store, json_output: bool, ocr_settings, ocr_stats) -> None:
    from smartcli.indexer import NOTE_IMAGE
    from smartcli.ocr import NOTE_MISSING_DATA, NOTE_NOTHING_FOUND, install_hint

    images = summary.not_encoded.get(NOTE_IMAGE, 0)
    if images:
        warn(f"{images} image(s) recorded but not encoded: the text model reads no pixels (use an image model or --ocr auto)")
    missing = summary.not_encoded.get(NOTE_MISSING_DATA, 0)
    if missing:
        warn(f"{missing} page(s) or image(s) recorded without text: {install_hint(ocr_settings)}")
    unread = summary.not_encoded.get(NOTE_NOTHING_FOUND, 0)
    if unread:
        warn(f"{unread} page(s) or image(s) in which OCR found no text recorded but not encoded")
    ocr_notes = (NOTE_IMAGE, NOTE_MISSING_DATA, NOTE_NOTHING_FOUND)
    textless = sum(n for note, n in summary.not_encoded.items() if note not in ocr_notes)
    if textless:
        warn(f"{textless} page(s) without a usable text layer recorded but not encoded")
    per_page = summary.bytes_written / summary.pages_encoded if summary.pages_encoded else 0
    if json_output:
        data = summary.as_json()
        data["store"] = str(store.root)
        data["bytes_per_page"] = round(per_page)
        data["ocr"] = ocr_stats.as_json(ocr_settings)
        print_json_line(data)
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
            f"{format_bytes(summary.bytes_written)} written ({format_bytes(per_page)} per page)"
        )
    if ocr_stats.attempted:
        print_line(
            f"{ocr_stats.attempted} pages through OCR ({ocr_settings.language}), text from {ocr_stats.pages}, "
            f"in {ocr_stats.wall_seconds:.1f} s ({ocr_stats.attempted / max(ocr_stats.wall_seconds, 1e-9):.2f} pages/s, "
            f"{ocr_settings.workers} workers)"
        )
    print_line(f"store: {store.root}")


def reasons_line(skipped) -> str:
    """``2 not a readable PDF, 1 empty file``: skipped files counted by reason (details are on stderr)."""
    counts = Counter(s.reason.split(" (")[0] for s in skipped)
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
