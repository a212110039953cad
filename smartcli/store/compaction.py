"""Reclaim the space of dead segment rows by rewriting live rows into new segments.

Segments are immutable, so replacing or removing a file leaves its old rows in place
("dead rows"), and every `smart index` run adds a segment of its own. Compaction copies
the live rows of segments that hold dead rows (and of small segments, merged together)
into new segment files, then one catalog transaction points the items at the new rows
and retires the old segments. Vectors are copied as stored, bit for bit.

Crash safety is the store's: new segments are complete files before the transaction,
old ones stay on disk for the grace period (searches that started earlier still read
them), and anything left by an interrupted compaction is deleted by the next writer.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from smartcli.store.catalog import Store
from smartcli.store.catalog.connection import check_space
from smartcli.store.catalog.integrity import read_segment
from smartcli.store.catalog.reads import live_rows, segment_usage
from smartcli.store.catalog.writes import new_segment, replace_segments
from smartcli.store.segments import SegmentFile, copy_rows

# `smart index` compacts on its own when dead rows exceed this share of all stored rows.
AUTO_COMPACT_DEAD_SHARE = 0.25
# A rewritten segment holds at most this many token states (about 100 MB at 384 dims, float16).
TARGET_SEGMENT_TOKENS = 1 << 17
# Segments below this many token states are merged with each other when compacting.
SMALL_SEGMENT_TOKENS = TARGET_SEGMENT_TOKENS // 8


@dataclass
class CompactionResult:
    segments_rewritten: int = 0
    segments_written: int = 0
    rows_kept: int = 0
    dead_rows_dropped: int = 0
    bytes_before: int = 0  # of the rewritten segments
    bytes_after: int = 0  # of the new segments
    segments: int = 0  # segments the store holds afterwards (set by Index.compact)
    bytes: int = 0  # bytes the store holds afterwards (set by Index.compact)
    # Set by Index.compact: the store's size on disk before, and once the old segments, kept
    # for grace_seconds so that searches already running can finish, are deleted.
    store_bytes_before: int = 0
    bytes_after_grace: int = 0
    grace_seconds: float = 0

    damaged: list = field(default_factory=list)  # Damage of segments left out of the rewrite, untouched

    @property
    def bytes_reclaimed(self) -> int:
        return self.bytes_before - self.bytes_after

    def as_json(self) -> dict:
        return {
            "segments_rewritten": self.segments_rewritten,
            "segments_written": self.segments_written,
            "rows_kept": self.rows_kept,
            "dead_rows_dropped": self.dead_rows_dropped,
            "bytes_reclaimed": self.bytes_reclaimed,
            "damaged": [{"segment": d.segment, "dataset": d.dataset, "problem": d.problem} for d in self.damaged],
        }


def needs_compaction(store: Store) -> bool:
    usage = segment_usage(store)
    rows = sum(s["rows"] for s in usage)
    dead = sum(s["rows"] - s["live_rows"] for s in usage)
    return rows > 0 and dead / rows > AUTO_COMPACT_DEAD_SHARE


def segments_to_rewrite(usage: list[dict]) -> list[dict]:
    """Segments with dead rows, plus small segments when there are several to merge, plus
    segments written without an identity and checksums (before schema 3): rewritten, they are
    checked like new ones."""
    dead = [s for s in usage if s["live_rows"] < s["rows"]]
    small = [s for s in usage if s["live_rows"] == s["rows"] and s["tokens"] < SMALL_SEGMENT_TOKENS]
    chosen = dead + small if len(dead) + len(small) >= 2 else dead
    return chosen + [s for s in usage if not s.get("checked", True) and s not in chosen]


def compact(store: Store) -> CompactionResult:
    """Rewrite the live rows of :func:`segments_to_rewrite` into new segments (caller holds the write lock).

    Every segment chosen is read whole and checked first (identity, shapes, checksums,
    digests: integrity.read_segment); a damaged one is left out of the rewrite and kept as it
    is (its pages stay listed, searches skip it), and named in ``result.damaged``: nothing it
    holds is copied into a new segment, and nothing of it is deleted.
    """
    usage = segment_usage(store)
    chosen, damage = [], []
    for segment in segments_to_rewrite(usage):
        found = read_segment(store, segment["name"]).damage
        if found:
            damage += found
        else:
            chosen.append(segment)
    if len(chosen) == 1 and damage and chosen[0]["live_rows"] == chosen[0]["rows"] and chosen[0].get("checked", True):
        chosen = []  # it was chosen to be merged with the damaged one: nothing to gain alone
    result = CompactionResult(
        damaged=damage,
        segments_rewritten=len(chosen),
        dead_rows_dropped=sum(s["rows"] - s["live_rows"] for s in chosen),
        bytes_before=sum(s["bytes"] for s in chosen),
    )
    if not chosen:
        return result
    check_space(store.root, result.bytes_before)  # what is rewritten is at most what is there
    rows = []  # (segment, row, token count) in the order they will be written
    for segment in chosen:
        with store.open_segment(segment["name"]) as source:
            counts = np.diff(source.offsets())
        rows += [(segment["name"], row, int(counts[row])) for row in live_rows(store, segment["name"])]
    written: list[SegmentFile] = []
    remap = []
    for group in _groups(rows):
        segment_file, group_remap = _write_group(store, group)
        written.append(segment_file)
        remap += group_remap
    replace_segments(store, written, remap, [s["name"] for s in chosen])
    result.segments_written = len(written)
    result.rows_kept = len(rows)
    result.bytes_after = sum(s.bytes for s in written)
    return result


def _groups(rows: list[tuple[str, int, int]]):
    """Consecutive runs of rows of at most TARGET_SEGMENT_TOKENS token states (at least one row)."""
    group, tokens = [], 0
    for row in rows:
        if group and tokens + row[2] > TARGET_SEGMENT_TOKENS:
            yield group
            group, tokens = [], 0
        group.append(row)
        tokens += row[2]
    if group:
        yield group


def _write_group(store: Store, group: list[tuple[str, int, int]]) -> tuple[SegmentFile, list]:
    """Copy ``group``'s rows, as stored, into one new segment; return it and the row mapping."""
    counts = np.array([n for _, _, n in group], dtype=np.int64)
    by_source: dict[str, list[tuple[int, int]]] = {}  # source segment -> [(new row, old row)]
    for new_row, (name, old_row, _) in enumerate(group):
        by_source.setdefault(name, []).append((new_row, old_row))
    with contextlib.ExitStack() as stack, new_segment(store) as new:
        sources = [(stack.enter_context(store.open_segment(source)), pairs) for source, pairs in by_source.items()]
        copy_rows(new.h5, sources, counts)
    name = new.name
    remap = [(source, old_row, name, new_row) for new_row, (source, old_row, _) in enumerate(group)]
    return new.record(len(group), int(counts.sum()), store.segment_path(name).stat().st_size), remap
