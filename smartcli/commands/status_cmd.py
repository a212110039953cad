"""`smart status`: what the store holds and whether the files behind it changed."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from smartcli import cli
from smartcli.output import format_bytes, print_json_line, stdout, warn


def run_status(store_path: Path, json_output: bool) -> int:
    from smartcli.store import Store, StoreError

    try:
        store = Store.open(store_path)
        with store:
            report = collect_status(store)
    except StoreError as exc:
        warn(str(exc))
        return cli._store_error_code(exc)
    if json_output:
        print_json_line(report)
    else:
        print_status(report)
    return cli.EXIT_OK


def collect_status(store) -> dict:
    from smartcli.discovery import discover

    stats = store.stats()
    meta = store.meta
    model = store.model
    files = store.files()
    on_disk_changed = on_disk_missing = 0
    for f in files:
        try:
            st = os.stat(f["path"])
        except OSError:
            on_disk_missing += 1
            continue
        if (st.st_size, st.st_mtime_ns) != (f["size"], f["mtime_ns"]):
            on_disk_changed += 1
    known = {f["path"] for f in files}
    roots = meta.get("roots", [])
    sources, _ = discover(roots) if roots else ([], [])
    on_disk_new = sum(1 for s in sources if s.path not in known)
    encoded = stats["encoded_items"]
    return {
        "store": str(store.root),
        "model": model.name if model else None,
        "model_spec": model.spec if model else None,
        "model_fingerprint": model.fingerprint if model else None,
        "dims": model.dims if model else None,
        "token_dtype": store.token_dtype,
        "roots": roots,
        "files": stats["files"],
        "skipped_files": stats["skipped_files"],
        "items": stats["items"],
        "encoded_items": encoded,
        "not_encoded": stats["not_encoded"],
        "tokens": stats["tokens"],
        "segments": stats["segments"],
        "garbage_rows": stats["garbage_rows"],
        "bytes": stats["bytes"],
        "bytes_per_item": round(stats["bytes"] / encoded) if encoded else None,
        "updated": meta.get("updated"),
        "changed_on_disk": {"modified": on_disk_changed, "missing": on_disk_missing, "new": on_disk_new},
    }


def print_status(r: dict) -> None:
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    updated = dt.datetime.fromtimestamp(r["updated"]).isoformat(" ", "seconds") if r["updated"] else "never"
    changed = r["changed_on_disk"]
    rows = [
        ("store", r["store"]),
        ("model", f"{r['model']} ({r['model_fingerprint']}, {r['dims']} dims, tokens as {r['token_dtype']})"),
        ("indexed paths", ", ".join(r["roots"]) or "-"),
        ("files", ", ".join(f"{n} {kind}" for kind, n in sorted(r["files"].items())) or "0"),
        ("skipped files", str(r["skipped_files"])),
        ("pages encoded", f"{r['encoded_items']} of {r['items']}"),
        ("not encoded", ", ".join(f"{n} {note}" for note, n in r["not_encoded"].items()) or "0"),
        ("token states", str(r["tokens"])),
        ("size on disk", f"{format_bytes(r['bytes'])} ({format_bytes(r['bytes_per_item'] or 0)} per encoded page)"),
        ("segments", f"{r['segments']} ({r['garbage_rows']} dead rows)"),
        ("last update", updated),
        ("changed since", f"{changed['modified']} modified, {changed['missing']} missing, {changed['new']} new"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    stdout.print(table, highlight=False)
