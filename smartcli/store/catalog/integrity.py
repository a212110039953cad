"""Whether the segment files and page texts are what the catalog committed: one check, cheap
or thorough.

The cheap check (every open, ``smart status``) reads no data: each segment the catalog lists
must be on disk at its committed size, and every segment pages point at must be listed. The
thorough one (``smart status --verify``) does the same and then reads every segment (identity,
offsets and shapes, checksums, digests) and every page's text (its CRC-32).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from smartcli.errors import StoreDamaged
from smartcli.store.catalog.reads import segment_digests
from smartcli.store.catalog.records import checked_text, fs_path
from smartcli.store.catalog.schema import v3
from smartcli.store.segments import Damage, Segment


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
    for name, size in store.conn.execute("SELECT name, bytes FROM segments ORDER BY name").fetchall():
        if on_segment is not None:
            on_segment(name)
        counts["segments"] += 1
        path = store.segment_path(name)
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            found.append(Damage(name, None, "is missing"))
            continue
        except OSError as exc:
            found.append(Damage(name, None, f"cannot be read ({exc.strerror or exc})"))
            continue
        if actual != size:
            found.append(Damage(name, None, f"is {actual} bytes on disk, {size} committed"))
        if thorough:
            read = read_segment(store, name)
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


def read_segment(store, name: str) -> SegmentRead:
    """Read segment ``name`` whole and check it against the catalog's record of it."""
    try:
        segment = Segment(store.segment_path(name))
    except StoreDamaged as exc:
        return SegmentRead([Damage(name, None, exc.details.get("problem") or str(exc))])
    with segment:
        digests = segment_digests(store, name)
        return SegmentRead(segment.verify(store.expected(name), digests), True, bool(digests) or segment.checksummed, len(segment._h5))


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
    return "text" if d.dataset and d.dataset.startswith("page ") else "catalog"


def _sentence(d: Damage) -> str:
    where = f"segment {d.segment}.h5 " if d.segment else ""
    return f"{where}{d.dataset + ': ' if d.dataset else ''}{d.problem}"
