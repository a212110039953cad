"""Whether the segment files and page texts are what the catalog committed: one check, cheap
or thorough.

The cheap check (every open, ``smart status``) reads no data: each segment the catalog lists
must be on disk at its committed size, every segment pages point at must be listed, and the
rows pages point at must lie in their segment (the lowest and highest row of each segment, and
whether one is NULL, from the catalog's index: a few lookups a segment). The thorough one
(``smart status --verify``) does the same and then reads every segment (identity, offsets and
shapes, checksums, digests), checks every page's row (a whole number in range, written for that
page number, holding the page's token count) and every page's text (its CRC-32).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from smartcli.errors import StoreDamaged
from smartcli.store.catalog.reads import segment_digests
from smartcli.store.catalog.records import checked_text, fs_path
from smartcli.store.catalog.schema import v3
from smartcli.store.segments import Damage, Segment, unreadable


class IntegrityReport(NamedTuple):
    damage: list[Damage]
    # What was checked: segments, and (thorough) checksummed ones, datasets, bytes and texts read.
    counts: dict

    def sentences(self) -> list[str]:
        """Each damage as one sentence: ``segment X.h5 is missing``."""
        return [_sentence(d) for d in self.damage]


class SegmentRead(NamedTuple):
    damage: list[Damage]
    opened: bool = False
    checksummed: bool = False  # its datasets carry checksums or the catalog its digests
    datasets: int = 0


def check(store, thorough: bool = False, on_segment: Callable[[str], None] | None = None) -> IntegrityReport:
    """What is wrong with the segments and texts the catalog relies on; ``thorough`` reads
    them all. ``on_segment(name)`` is called before each segment is looked at."""
    found = [Damage(None, None, f"pages point at segment {name}.h5, which the catalog does not list") for name in _unlisted(store)]
    counts = {"segments": 0, "checksummed": 0, "datasets": 0, "bytes": 0, "texts": 0}
    for name, size, rows in store.conn.execute("SELECT name, bytes, rows FROM segments ORDER BY name").fetchall():
        if on_segment is not None:
            on_segment(name)
        counts["segments"] += 1
        found += _row_damage(store, name, rows, thorough)
        path = store.segment_path(name)
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            found.append(Damage(name, None, "is missing"))
            continue
        except PermissionError:
            raise unreadable(path) from None  # not damage: nothing to rebuild
        except OSError as exc:
            found.append(Damage(name, None, f"cannot be read ({exc.strerror or exc})"))
            continue
        if actual != size:
            found.append(Damage(name, None, f"is {actual} bytes on disk, {size} committed"))
        if thorough:
            read = read_segment(store, name, check_rows=True)
            found += read.damage
            if read.opened:
                counts["checksummed"] += read.checksummed
                counts["datasets"] += read.datasets
                counts["bytes"] += actual
    if thorough:
        counts["texts"] = store.conn.execute("SELECT COUNT(*) FROM items WHERE text IS NOT NULL").fetchone()[0]
        found += _text_damage(store)
    return IntegrityReport(found, counts)


def raise_if_damaged(store) -> None:
    """Refuse (STORE_DAMAGED) a store the cheap check finds damaged."""
    found = check(store).sentences()
    if found:
        more = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
        raise StoreDamaged(f"the store at {store.root} is damaged: {found[0]}{more}", roots=store.roots)


def _unlisted(store) -> list[str]:
    """Segments pages point at that the catalog does not list."""
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT DISTINCT segment FROM items WHERE segment IS NOT NULL AND segment NOT IN (SELECT name FROM segments)"
        ).fetchall()
    ]


def read_segment(store, name: str, check_rows: bool = False) -> SegmentRead:
    """Read segment ``name`` whole and check it against the catalog's record of it (and, with
    ``check_rows``, that each page's row was written for that page and holds its token count)."""
    try:
        segment = Segment(store.segment_path(name))
    except StoreDamaged as exc:
        return SegmentRead([Damage(name, None, exc.details.get("problem") or str(exc))])
    with segment:
        digests = segment_digests(store, name)
        damage = segment.verify(store.expected(name), digests)
        if check_rows and not damage:
            damage = _rows_written_for(store, name, segment)
        return SegmentRead(damage, True, bool(digests) or segment.checksummed, len(segment._h5))


# -- the rows pages point at ------------------------------------------------------------------

ROW_OF = "row of "  # a Damage whose dataset starts so is the catalog's, about a page's row


def _row_damage(store, name: str, rows: int, thorough: bool) -> list[Damage]:
    """Pages of segment ``name`` whose row is not a whole number below ``rows``. Cheap: the index
    on (segment, row) gives the lowest and highest row and any NULL; thorough: every row's type."""
    conn = store.conn
    if not thorough:
        low = conn.execute("SELECT MIN(row) FROM items WHERE segment = ?", (name,)).fetchone()[0]
        high = conn.execute("SELECT MAX(row) FROM items WHERE segment = ?", (name,)).fetchone()[0]
        null = conn.execute("SELECT 1 FROM items WHERE segment = ? AND row IS NULL LIMIT 1", (name,)).fetchone()
        if null is None and all(r is None or (type(r) is int and 0 <= r < rows) for r in (low, high)):
            return []
    bad = conn.execute(
        """SELECT items.page, files.path, items.row FROM items JOIN files ON files.id = items.file_id
           WHERE items.segment = ? AND (typeof(items.row) != 'integer' OR items.row < 0 OR items.row >= ?)
           ORDER BY files.path, items.page""",
        (name, rows),
    ).fetchall()
    return [_bad_row(page, path, f"is {row!r}, not one of the {rows} rows of segment {name}.h5") for page, path, row in bad]


def _rows_written_for(store, name: str, segment: Segment) -> list[Damage]:
    """Pages whose row (in range) the segment wrote for another page number or token count."""
    import numpy as np

    lengths = np.diff(segment.offsets())
    pages = segment._read("item_page") if "item_page" in segment._h5 else None
    found = []
    for page, path, row, n_tokens in store.conn.execute(
        """SELECT items.page, files.path, items.row, items.n_tokens FROM items JOIN files ON files.id = items.file_id
           WHERE items.segment = ? AND typeof(items.row) = 'integer' AND items.row >= 0 AND items.row < ?
           ORDER BY files.path, items.page""",
        (name, len(lengths)),
    ):
        if pages is not None and int(pages[row]) != page:
            found.append(_bad_row(page, path, f"is {row}, which segment {name}.h5 wrote for page {int(pages[row])}"))
        elif int(lengths[row]) != n_tokens:
            found.append(_bad_row(page, path, f"is {row}, which holds {int(lengths[row])} token states, not the page's {n_tokens}"))
    return found


def _bad_row(page: int, path: str, problem: str) -> Damage:
    return Damage(None, f"{ROW_OF}page {page} of {fs_path(path)}", problem)


def _text_damage(store) -> list[Damage]:
    """Every page (encoded or not) whose stored text differs from what was committed."""
    rows = store.conn.execute(
        f"""SELECT items.page, files.path, CAST(items.text AS BLOB), {v3(store, "items.text_crc")}
           FROM items JOIN files ON files.id = items.file_id WHERE items.text IS NOT NULL ORDER BY files.path, items.page"""
    )
    return [Damage(None, f"page {r[0]} of {fs_path(r[1])}", problem) for r in rows if (problem := checked_text(r[2], r[3])[1])]


def part_of(d: Damage) -> str:
    """Which part of the store ``d`` is about: "segment", "text" (a page's text) or "catalog"."""
    if d.segment:
        return "segment"
    return "text" if d.dataset and d.dataset.startswith("page ") else "catalog"  # ROW_OF: the catalog's


def _sentence(d: Damage) -> str:
    where = f"segment {d.segment}.h5 " if d.segment else ""
    return f"{where}{d.dataset + ': ' if d.dataset else ''}{d.problem}"
