"""Rendering for people (rich, stderr for chatter) and for machines (JSON lines on stdout)."""

from __future__ import annotations

import json
import os
import re
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

stdout = Console(soft_wrap=False)
stderr = Console(stderr=True)


# Control characters (a newline in a file name would split a line) and the lone
# surrogates Python uses for bytes of a file name that are not valid UTF-8.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name
        return f"\\x{code - 0xDC00:02x}"
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(match.group()) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """``text`` on one line and encodable: control characters and undecodable bytes escaped (``\\n``, ``\\xff``)."""
    return _UNPRINTABLE.sub(_escape_char, text)


def warn(message: str) -> None:
    """One line on stderr, prefixed so it stands out in logs."""
    stderr.print(Text(f"smart: {printable(message)}"), highlight=False, soft_wrap=True)


def print_line(text: str) -> None:
    """One line of results on stdout: printable, never wrapped, no markup."""
    stdout.print(printable(text), highlight=False, markup=False, soft_wrap=True)


def print_json_line(obj: dict) -> None:
    # Lone surrogates (file names that are not UTF-8) cannot be written as UTF-8; as
    # \udcXX escapes the line stays valid UTF-8 and json.loads + os.fsencode give the
    # original bytes back.
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False))
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def display_path(path: str) -> str:
    """A path relative to the working directory when it is below it, printable on one line."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return printable(path)
    return printable(path if rel.startswith("..") else rel)


def results_table(query: str, hits, show_late: bool = True) -> Table:
    table = Table(title=f"[bold]{query}[/bold]", title_justify="left", expand=False, show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("score", justify="right", style="bold")
    table.add_column("anchor", justify="right")
    if show_late:
        table.add_column("late", justify="right")
    table.add_column("file", overflow="fold", style="cyan")
    table.add_column("page", justify="right")
    table.add_column("snippet", overflow="fold", ratio=1)
    for hit in hits:
        row = [str(hit.rank), f"{hit.score:.3f}", f"{hit.anchor:.3f}"]
        if show_late:
            row.append("" if hit.late is None else f"{hit.late:.3f}")
        row += [Text(display_path(hit.item.path)), str(hit.item.page), Text(hit.snippet)]
        table.add_row(*row)
    return table


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
