"""`smart compact`: ``Index.compact``, and what it reclaimed."""

from __future__ import annotations

from pathlib import Path

import typer

from smartcli.cli.errors import EXIT_ERROR, EXIT_OK, describe, exit_code, rebuild_hint
from smartcli.cli.options import JsonOption, StoreOption, WaitOption
from smartcli.cli.present import format_bytes, print_json_line, print_line, warn


def compact(store: Path | None = StoreOption, wait: bool = WaitOption, json_output: bool = JsonOption) -> None:
    """Reclaim the space of removed and replaced files by rewriting segments (`smart index` also does this past 25% dead rows)."""
    raise typer.Exit(run_compact(store, wait, json_output))


def run_compact(store_path: Path | None, wait: bool, json_output: bool) -> int:
    from smartcli import Index, SmartError

    try:
        index = Index.open(store_path)
        result = index.compact(wait=wait)
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    if json_output:
        print_json_line(
            {
                **result.as_json(),
                "segments": result.segments,
                "bytes": result.bytes,
                "bytes_before": result.store_bytes_before,
                "bytes_after_grace": result.bytes_after_grace,
                "grace_seconds": result.grace_seconds,
            }
        )
    elif result.segments_rewritten:
        print_line(
            f"{result.segments_rewritten} segment(s) rewritten into {result.segments_written}, "
            f"{result.dead_rows_dropped} dead row(s) dropped, {format_bytes(result.bytes_reclaimed)} reclaimed"
        )
        print_line(grace_line(result))
    else:
        print_line("nothing to compact")
        if result.bytes > result.bytes_after_grace:  # an earlier compaction's old segments, still kept
            print_line(grace_line(result))
    for d in result.damaged:  # never copied into a new segment, never deleted: left as it is
        where = f"{d.dataset}: " if d.dataset else ""
        warn(f"segment {d.segment}.h5 is damaged ({where}{d.problem}): left out of the compaction, as it is")
    if result.damaged:
        warn(f"the store is damaged; searches leave damaged segments out; {rebuild_hint()}")
        return EXIT_ERROR
    return EXIT_OK


def grace_line(result) -> str:
    """The store grows before it shrinks: the old segments stay for the grace period."""
    minutes = result.grace_seconds / 60
    period = f"{minutes:g} minutes" if minutes >= 1 else f"{result.grace_seconds:g} s"
    return (
        f"the store is {format_bytes(result.bytes)} now (it was {format_bytes(result.store_bytes_before)}): "
        f"the old segments are kept {period} for searches already running, then the next "
        f"`smart index` or `smart compact` deletes them, leaving {format_bytes(result.bytes_after_grace)}"
    )
