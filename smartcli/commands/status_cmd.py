"""`smart status`: what the store holds and whether the files behind it changed."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from smartcli import cli
from smartcli.output import format_bytes, print_json_line, printable, stdout, warn


def run_status(store_path: Path, json_output: bool) -> int:
    """Print the status; a damaged store is still described, with the problem on stderr and exit code 1."""
    import sqlite3

    from smartcli.store import Store, StoreError, damaged_catalog

    try:
        store = Store.open(store_path, verify=False)
        with store, store.read_snapshot():
            report = collect_status(store)
            hint = store.rebuild_hint()
    except StoreError as exc:
        warn(str(exc))
        return cli._store_error_code(exc)
    except sqlite3.DatabaseError as exc:
        warn(str(damaged_catalog(store_path, exc)))
        return cli.EXIT_ERROR
    if json_output:
        print_json_line(report)
    else:
        print_status(report)
    for problem in report["store_problems"]:
        warn(f"the store at {store_path} is damaged: {problem}; {hint}")
    return cli.EXIT_ERROR if report["store_problems"] else cli.EXIT_OK


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
        "ocr": ocr_status(store, stats["not_encoded"]),
        "tokens": stats["tokens"],
        "shared_items": stats["shared_items"],
        "segments": stats["segments"],
        "garbage_rows": stats["garbage_rows"],
        "retired_segments": stats["retired_segments"],
        "bytes": stats["bytes"],
        "bytes_per_item": round(stats["live_bytes"] / encoded) if encoded else None,
        "updated": meta.get("updated"),
        "changed_on_disk": {"modified": on_disk_changed, "missing": on_disk_missing, "new": on_disk_new},
        "skipped": [{"path": f["path"], "reason": f["reason"]} for f in files if f["status"] == "skipped"],
        "partly_indexed": [{"path": f["path"], "reason": f["reason"]} for f in files if f["status"] == "indexed" and f["reason"]],
        "store_problems": store.problems(),
    }


def ocr_status(store, not_encoded: dict) -> dict:
    from smartcli.ocr import NOTE_MISSING_DATA, NOTE_NOTHING_FOUND

    by_language = store.ocr_counts()
    return {
        "pages": sum(by_language.values()),
        "by_language": by_language,
        "missing_language_data": not_encoded.get(NOTE_MISSING_DATA, 0),
        "nothing_found": not_encoded.get(NOTE_NOTHING_FOUND, 0),
    }


def describe_ocr(ocr: dict) -> str:
    line = f"{ocr['pages']} pages read by OCR" + (f" ({', '.join(ocr['by_language'])})" if ocr["by_language"] else "")
    if ocr["missing_language_data"]:
        line += f", {ocr['missing_language_data']} waiting for OCR language data (see `smart index`)"
    if ocr["nothing_found"]:
        line += f", {ocr['nothing_found']} with no text OCR could read"
    return line


def print_status(r: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    updated = dt.datetime.fromtimestamp(r["updated"]).isoformat(" ", "seconds") if r["updated"] else "never"
    changed = r["changed_on_disk"]
    rows = [
        ("store", r["store"]),
        ("model", f"{r['model']} ({r['model_fingerprint']}, {r['dims']} dims, tokens as {r['token_dtype']})" if r["model"] else "-"),
        ("indexed paths", ", ".join(map(printable, r["roots"])) or "-"),
        ("files", ", ".join(f"{n} {kind}" for kind, n in sorted(r["files"].items())) or "0"),
        ("skipped files", str(r["skipped_files"])),
        ("pages encoded", f"{r['encoded_items']} of {r['items']} ({r['shared_items']} sharing a copy's vectors)"),
        ("not encoded", ", ".join(f"{n} {note}" for note, n in r["not_encoded"].items()) or "0"),
        ("OCR", describe_ocr(r["ocr"])),
        ("token states", str(r["tokens"])),
        ("size on disk", f"{format_bytes(r['bytes'])} ({format_bytes(r['bytes_per_item'] or 0)} per encoded page)"),
        ("segments", segments_line(r)),
        ("last update", updated),
        ("changed since", f"{changed['modified']} modified, {changed['missing']} missing, {changed['new']} new"),
    ]
    if r["store_problems"]:
        rows.append(("damaged", "; ".join(r["store_problems"])))
    for key, value in rows:
        table.add_row(key, Text(printable(value)))
    stdout.print(table, highlight=False)


def segments_line(r: dict) -> str:
    line = f"{r['segments']} ({r['garbage_rows']} dead rows"
    line += "; `smart compact` reclaims them)" if r["garbage_rows"] else ")"
    if r["retired_segments"]:
        line += f", {r['retired_segments']} retired, deleted after a grace period"
    return line
