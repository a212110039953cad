"""`smart index`: plan, encode and commit; print a summary."""

from __future__ import annotations

import shutil
from pathlib import Path

from smartcli import cli
from smartcli.output import format_bytes, print_json_line, stderr, stdout, warn

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
    dpi: float | None = None,
    max_pixels: int | None = None,
) -> int:
    from smartcli.encoders import ModelLoadError, load_encoder
    from smartcli.indexer import plan_changes
    from smartcli.pixel_indexing import render_options
    from smartcli.store import TOKEN_DTYPES, Store, StoreError

    if token_dtype not in TOKEN_DTYPES:
        warn(f"--token-dtype must be one of {', '.join(TOKEN_DTYPES)}, not {token_dtype!r}")
        return cli.EXIT_USAGE
    try:
        if rebuild and not dry_run:
            wipe_store(store_path)
        store = Store.open_for_writing(store_path)
    except StoreError as exc:
        warn(str(exc))
        return cli._store_error_code(exc)
    with store:
        plan, hashes = plan_changes(store, [str(p) for p in paths])
        if dry_run:
            print_plan(plan, json_output)
            return cli.EXIT_OK
        encoder = None
        spec = model or (store.model.spec if store.model else None)
        try:
            options = render_options(store.model, spec, dpi=dpi, max_pixels=max_pixels)
        except ValueError as exc:
            warn(str(exc))
            return cli.EXIT_USAGE
        if plan.to_encode or model is not None:
            try:
                encoder = load_encoder(spec, device, options)
                store.bind_model(encoder.info, token_dtype)
            except (ModelLoadError, StoreError) as exc:
                warn(str(exc))
                return cli._store_error_code(exc) if isinstance(exc, StoreError) else cli.EXIT_ERROR
            except ValueError as exc:  # render settings the model or the store cannot take
                warn(str(exc))
                return cli.EXIT_USAGE
        batch_size = batch_size or getattr(encoder, "default_batch_size", DEFAULT_BATCH_SIZE)
        summary = encode_with_progress(store, encoder, plan, hashes, batch_pages, batch_size)
        store.record_roots(str(p.resolve()) for p in paths)
        print_summary(summary, store, json_output)
    return cli.EXIT_SKIPPED if summary.skipped else cli.EXIT_OK


def wipe_store(store_path: Path) -> None:
    """Delete a store's catalog and segments (under its write lock)."""
    from smartcli.store import CATALOG, SEGMENT_DIR, Store

    with Store.lock_only(store_path):
        for path in store_path.glob(CATALOG + "*"):
            path.unlink()
        shutil.rmtree(store_path / SEGMENT_DIR, ignore_errors=True)


def encode_with_progress(store, encoder, plan, hashes, batch_pages, batch_size):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from smartcli.indexer import Indexer, total_pages

    total = total_pages(plan.to_encode)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr, disable=total == 0 or not stderr.is_terminal) as progress:
        task = progress.add_task("indexing", total=total)
        indexer = Indexer(
            store,
            encoder,
            batch_pages=batch_pages,
            encode_batch_size=batch_size,
            report=lambda message: progress.console.print(f"smart: {message}", highlight=False, markup=False, soft_wrap=True),
        )
        return indexer.run(plan, hashes, progress=lambda n: progress.advance(task, n))


def print_plan(plan, json_output: bool) -> None:
    actions = (
        [("add", s.path) for s in plan.new]
        + [("update", s.path) for s in plan.changed]
        + [("move", f"{old} -> {s.path}") for old, s in plan.moved]
        + [("remove", p) for p in plan.removed]
        + [("skip", f"{s.path}: {s.reason}") for s in plan.skipped]
    )
    if json_output:
        print_json_line(
            {
                "add": [s.path for s in plan.new],
                "update": [s.path for s in plan.changed],
                "move": [{"from": old, "to": s.path} for old, s in plan.moved],
                "remove": plan.removed,
                "skip": [{"path": s.path, "reason": s.reason} for s in plan.skipped],
                "unchanged": len(plan.unchanged) + len(plan.touched),
            }
        )
        return
    for action, what in actions:
        stdout.print(f"{action:7} {what}", highlight=False, markup=False)
    stdout.print(f"{len(plan.unchanged) + len(plan.touched)} unchanged", highlight=False)


def print_summary(summary, store, json_output: bool) -> None:
    from smartcli.indexer import NOTE_IMAGE

    images = summary.not_encoded.get(NOTE_IMAGE, 0)
    if images:
        warn(f"{images} image(s) recorded but not encoded: the text model reads no pixels (use an image model or OCR)")
    textless = sum(n for note, n in summary.not_encoded.items() if note != NOTE_IMAGE)
    if textless:
        warn(f"{textless} page(s) without a usable text layer recorded but not encoded")
    per_page = summary.bytes_written / summary.pages_encoded if summary.pages_encoded else 0
    if json_output:
        data = summary.as_json()
        data["store"] = str(store.root)
        data["bytes_per_page"] = round(per_page)
        print_json_line(data)
        return
    line = (
        f"{summary.added} added, {summary.updated} updated, {summary.removed} removed, "
        f"{summary.moved} moved, {summary.unchanged} unchanged, {len(summary.skipped)} skipped"
    )
    stdout.print(line, highlight=False)
    if summary.pages_encoded:
        stdout.print(
            f"{summary.pages_encoded} pages encoded, {summary.tokens_encoded} token states, "
            f"{format_bytes(summary.bytes_written)} written ({format_bytes(per_page)} per page)",
            highlight=False,
        )
    stdout.print(f"store: {store.root}", highlight=False, markup=False)
