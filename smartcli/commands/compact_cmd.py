"""`smart compact`: rewrite segments to drop the rows of removed and replaced files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from smartcli import cli
from smartcli.output import format_bytes, print_json_line, print_line, warn


def run_compact(store_path: Path, wait: bool, json_output: bool) -> int:
    from smartcli.compaction import compact
    from smartcli.store import CATALOG, Store, StoreError, StoreMissing, damaged_catalog

    try:
        if not (store_path / CATALOG).exists():
            raise StoreMissing(f"no index at {store_path} (run `smart index PATH` first)")
        with Store.open_for_writing(
            store_path, wait=wait, on_wait=lambda: warn(f"waiting for another writer to finish with {store_path}")
        ) as store:
            result = compact(store)
            stats = store.stats()
    except StoreError as exc:
        warn(str(exc))
        return cli._store_error_code(exc)
    except sqlite3.DatabaseError as exc:
        warn(str(damaged_catalog(store_path, exc)))
        return cli.EXIT_ERROR
    if json_output:
        print_json_line({**result.as_json(), "segments": stats["segments"], "bytes": stats["bytes"]})
    elif result.segments_rewritten:
        print_line(
            f"{result.segments_rewritten} segment(s) rewritten into {result.segments_written}, "
            f"{result.dead_rows_dropped} dead row(s) dropped, {format_bytes(result.bytes_reclaimed)} reclaimed "
            f"(old segment files are deleted after a grace period, so running searches can finish)"
        )
    else:
        print_line("nothing to compact")
    return cli.EXIT_OK
