"""`smart sync` (and `smart index --qdrant`): push a local store to a Qdrant collection through ``Index.sync``."""

from __future__ import annotations

from pathlib import Path

from smartcli.cli.errors import EXIT_OK, describe, exit_code
from smartcli.cli.present import format_bytes, print_json_line, print_line, warn


def sync_options(qdrant: str | None, collection: str, api_key: str | None = None, token_format: str | None = None, shards=None, replicas=None,
                 on_disk: bool = False, batch_points: int | None = None, max_tokens: int | None = None, timeout: float | None = None) -> dict:
    """The keyword arguments of ``Index.sync`` the command line sets (unset ones keep their defaults)."""
    from smartcli import defaults

    return {
        "qdrant": qdrant,
        "collection": collection,
        "api_key": api_key,
        "token_format": token_format or defaults.QDRANT_TOKEN_FORMAT,
        "shards": shards,
        "replicas": replicas,
        "on_disk": on_disk,
        "batch_points": batch_points or defaults.QDRANT_BATCH_POINTS,
        "max_tokens": max_tokens,
        "timeout": timeout,
    }


def run_sync(store_path: Path | None, options: dict, json_output: bool, wait: bool = False) -> int:
    from smartcli import Index, SmartError, UpdateEvents

    class Events(UpdateEvents):
        def message(self, text: str) -> None:
            warn(text)

    try:
        index = Index.open(store_path)
        summary = index.sync(**options, wait=wait, events=Events())
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    print_sync(summary, json_output)
    return EXIT_OK


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
