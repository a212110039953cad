"""`smart sync` (and `smart index --qdrant`): push a local store to a Qdrant collection through ``Index.sync``."""

from __future__ import annotations

from pathlib import Path

import typer

from smartcli import defaults
from smartcli.cli.errors import EXIT_OK, EXIT_USAGE, describe, exit_code
from smartcli.cli.options import (
    CollectionOption,
    JsonOption,
    OnDiskOption,
    QdrantFormatOption,
    QdrantOption,
    ReplicasOption,
    ShardsOption,
    StoreOption,
    WaitOption,
)
from smartcli.cli.present import format_bytes, print_json_line, print_line, warn


def sync(
    store: Path | None = StoreOption,
    qdrant: str | None = QdrantOption,
    collection: str = CollectionOption,
    qdrant_format: str = QdrantFormatOption,
    shards: int | None = ShardsOption,
    replicas: int | None = ReplicasOption,
    on_disk: bool = OnDiskOption,
    batch_points: int = typer.Option(
        defaults.QDRANT_BATCH_POINTS,
        "--batch-points",
        min=1,
        help="Points per upsert (each batch is recorded once Qdrant acknowledges it).",
    ),
    max_tokens: int | None = typer.Option(
        None,
        "--max-tokens",
        min=1,
        help="Token states per page in Qdrant; pages over it are pooled. Default: Qdrant's multivector limit.",
        show_default=False,
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.1, help=f"Seconds per request. Default: {defaults.QDRANT_TIMEOUT:g}.", show_default=False
    ),
    wait: bool = WaitOption,
    json_output: bool = JsonOption,
) -> None:
    """Push an existing store to a Qdrant collection: upsert new and changed pages, delete this store's removed ones (resumable)."""
    if not qdrant:
        warn("smart sync needs --qdrant URL|PATH (or $SMART_QDRANT_URL)")
        raise typer.Exit(EXIT_USAGE)
    from smartcli import Index, SmartError, SyncOptions

    try:
        options = SyncOptions(
            qdrant,
            collection,
            token_format=qdrant_format,
            shards=shards,
            replicas=replicas,
            on_disk=on_disk,
            batch_points=batch_points,
            max_tokens=max_tokens,
            timeout=timeout,
            wait=wait,
        )
        summary = Index.open(store).sync(options=options, events=printed_messages())
    except SmartError as exc:
        warn(describe(exc))
        raise typer.Exit(exit_code(exc)) from None
    print_sync(summary, json_output)
    raise typer.Exit(EXIT_OK)


def printed_messages():
    """Events that print the engine's one-line reports on stderr."""
    from smartcli import UpdateEvents

    class Messages(UpdateEvents):
        def message(self, text: str) -> None:
            warn(text)

    return Messages()


def print_sync(summary, json_output: bool) -> None:
    if json_output:
        print_json_line(summary.as_json())
        return
    print_line(
        f"Qdrant {summary.collection}: {summary.upserted} upserted, {summary.deleted} deleted, {summary.unchanged} unchanged "
        f"({summary.points} points of this store; {summary.batches} batches, {summary.retries} retries, "
        f"{format_bytes(summary.bytes_sent)} of vectors sent, {summary.seconds:.1f} s)"
    )
    if summary.reduced:
        print_line(f"{summary.reduced} pages over Qdrant's multivector limit had their token states pooled to fit")
