"""Rendering for people (rich, stderr for chatter) and for machines (JSON lines on stdout)."""

from __future__ import annotations

import json
import os
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

stdout = Console(soft_wrap=False)
stderr = Console(stderr=True)


def warn(message: str) -> None:
    """One line on stderr, prefixed so it stands out in logs."""
    stderr.print(Text(f"smart: {message}"), highlight=False, soft_wrap=True)


def print_json_line(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def display_path(path: str) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


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
