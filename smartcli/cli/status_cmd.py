"""`smart status`: what the store holds and whether the files behind it changed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from smartcli.cli.errors import EXIT_ERROR, EXIT_OK, describe, exit_code, rebuild_hint, tuning_hint
from smartcli.cli.options import StoreOption
from smartcli.cli.present import display_path, format_bytes, note_words, print_json_line, print_line, printable, stdout, warn


def status(
    store: Path | None = StoreOption,
    json_output: bool = typer.Option(False, "--json", help="Print the status as one JSON object."),
    unencoded: bool = typer.Option(False, "--unencoded", help="List the pages and images recorded without vectors, and why, instead."),
    verify: bool = typer.Option(
        False, "--verify", help="Also read every segment and page text and check them (identity, offsets, checksums); name what is damaged."
    ),
) -> None:
    """Show what the store holds and how many indexed files changed on disk since."""
    raise typer.Exit(run_unencoded(store, json_output) if unencoded else run_status(store, json_output, verify))


def run_status(store_path: Path | None, json_output: bool, verify: bool = False) -> int:
    """Print the status; a damaged store is still described, with the problem on stderr and exit code 1.
    ``verify`` reads everything too (Index.verify) and names each damaged segment, dataset or page."""
    from smartcli import Index, SmartError

    try:
        index = Index.open(store_path)
        report = index.status()
        checked = index.verify() if verify else None
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    if json_output:
        print_json_line({**report.as_json(), **({"verify": checked.as_json()} if checked else {})})
    else:
        print_status({**report.as_json(), **({"verify": checked.as_json()} if checked else {})})
    hint = rebuild_hint(report.roots)
    for problem in report.store_problems:
        warn(f"the store at {report.store} is damaged: {problem}; {hint}")
    damage = (report.tuning or {}).get("damage")
    elsewhere = [found for found in (checked.damaged if checked else []) if found.get("part") != "tuning"]
    for found in elsewhere:
        warn(f"damaged: {damage_line(found)}")
    if elsewhere:
        warn(f"the store at {report.store} is damaged ({len(elsewhere)} problem(s) found); searches leave damaged segments out; {hint}")
    if damage:
        warn(f"{damage['problem']}; searches go on untuned; {tuning_hint(damage)}")
    return EXIT_ERROR if report.store_problems or damage or (checked and checked.damaged) else EXIT_OK


def damage_line(d: dict) -> str:
    where = f"segment {d['segment']}.h5" if d["segment"] else "the catalog"
    return f"{where}: {d['dataset'] + ': ' if d['dataset'] else ''}{d['problem']}"


def verify_line(v: dict) -> str:
    line = (
        f"{v['segments']} segments ({v['checksummed']} with checksums), {v['datasets']} datasets, "
        f"{format_bytes(v['bytes'])} and {v['texts']} page texts read in {v['seconds']:.1f} s: "
    )
    return line + (f"{len(v['damaged'])} problem(s)" if v["damaged"] else "no damage found")


def describe_ocr(ocr: dict) -> str:
    """In `smart index`'s words: pages through OCR, and how many it found text on."""
    attempted = ocr.get("attempted", ocr["pages"])
    line = f"{attempted} pages through OCR" + (f" ({', '.join(ocr['by_language'])})" if ocr["by_language"] else "")
    line += f", text from {ocr['pages']}"
    if ocr["missing_language_data"]:
        line += f", {ocr['missing_language_data']} waiting for OCR language data (see `smart index`)"
    if ocr["nothing_found"]:
        line += f", {ocr['nothing_found']} with no text OCR could read"
    if ocr.get("unreadable"):
        line += f", {ocr['unreadable']} with no readable text (OCR found marks, not words)"
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
        (
            "model",
            f"{r['model']} ({r['model_fingerprint']}, {r['dims']} dims, pages in {r['precision']}, tokens as {r['token_dtype']}"
            + (f", pooled at {r['token_pooling']:g})" if r.get("token_pooling") else ")")
            if r["model"]
            else "-",
        ),
        ("indexed paths", ", ".join(map(printable, r["roots"])) or "-"),
        ("files", ", ".join(f"{n} {kind}" for kind, n in sorted(r["files"].items())) or "0"),
        ("skipped files", str(r["skipped_files"])),
        ("pages encoded", f"{r['encoded_items']} of {r['items']} ({r['shared_items']} sharing a copy's vectors)"),
        ("not encoded", unencoded_line(r["not_encoded"])),
        ("OCR", describe_ocr(r["ocr"])),
        ("token states", str(r["tokens"])),
        ("size on disk", f"{format_bytes(r['bytes'])} ({format_bytes(r['bytes_per_item'] or 0)} per encoded page)"),
        ("segments", segments_line(r)),
        ("last update", updated),
        ("changed since", changed_line(changed)),
        ("tuning", tuning_line(r.get("tuning"))),
    ]
    if r["store_problems"]:
        rows.append(("damaged", "; ".join(r["store_problems"])))
    if r.get("verify"):
        rows.append(("verified", verify_line(r["verify"])))
    for key, value in rows:
        table.add_row(key, Text(printable(value)))
    stdout.print(table, highlight=False)


def changed_line(changed: dict) -> str:
    touched = f" ({changed['touched']} more with a new date, the same content)" if changed.get("touched") else ""
    return f"{changed['modified']} modified{touched}, {changed['missing']} missing, {changed['new']} new"


def segments_line(r: dict) -> str:
    line = f"{r['segments']} ({r['garbage_rows']} dead rows"
    line += "; `smart compact` reclaims them)" if r["garbage_rows"] else ")"
    if r["retired_segments"]:
        line += f", {r['retired_segments']} retired, deleted after a grace period"
    return line


def tuning_line(t: dict | None) -> str:
    if not t:
        return "none (the frozen model and the default weights; see `smart tune`)"
    if t.get("damage"):
        return f"damaged ({t['damage']['problem']}): searches go on untuned"
    what = "query adapter and weights" if t.get("adapter") else "weights"
    line = f"{what} {t['lambda_anchor']:g}/{t['lambda_late']:g}"
    held = t.get("held_back") or {}
    if held.get("tuned") and held.get("untuned"):
        line += f", held-back nDCG@10 {held['untuned']['ndcg']:.3f} -> {held['tuned']['ndcg']:.3f} on {t.get('held_back_pairs')} of {t.get('pairs')} pairs"
    if t.get("trained"):
        line += f" (tuned {dt.datetime.fromtimestamp(t['trained']).isoformat(' ', 'seconds')})"
    return line


def unencoded_line(counts: dict) -> str:
    if not counts:
        return "0"
    return ", ".join(f"{n} {note_words(note)}" for note, n in counts.items()) + " (`smart status --unencoded` lists them)"


def run_unencoded(store_path: Path | None, json_output: bool) -> int:
    """`smart status --unencoded`: each page recorded without vectors and why (consecutive pages
    of a file with the same reason on one line; every page in --json)."""
    from smartcli import Index, SmartError

    try:
        index = Index.open(store_path)
        pages = index.unencoded()
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    if json_output:
        rows = [dict(page.as_json(), reason=note_words(page.note)) for page in pages]
        print_json_line({"store": str(index.path), "unencoded": rows})
        return EXIT_OK
    for line in unencoded_lines(pages):
        print_line(line)
    if not pages:
        warn("every indexed page is encoded")
    return EXIT_OK


def unencoded_lines(pages) -> list[str]:
    """``path:PAGES  reason`` per run of consecutive pages of one file with one reason (``path`` for an image)."""
    runs: list[list] = []  # [path, kind, first, last, note, detail]
    for p in pages:
        last = runs[-1] if runs else None
        if last and (last[0], last[4], last[5]) == (p.path, p.note, p.detail) and p.page == last[3] + 1:
            last[3] = p.page
        else:
            runs.append([p.path, p.kind, p.page, p.page, p.note, p.detail])
    lines = []
    for path, kind, first, last, note, detail in runs:
        where = display_path(path) if kind == "image" else f"{display_path(path)}:{first if first == last else f'{first}-{last}'}"
        reason = note_words(note) if note else "not encoded (no reason recorded)"
        lines.append(f"{where}  {reason}" + (f" ({detail})" if detail else ""))
    return lines
