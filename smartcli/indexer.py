"""Bring a store up to date with the files under some paths.

The run plans first (what is new, changed, moved, gone, unchanged), applies the cheap
catalog-only changes (removals, moves), then reads and encodes the rest in batches,
committing each batch atomically so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

from smartcli.discovery import SourceFile, Skipped, UnreadableFile, count_pages, discover, read_pages
from smartcli.encoders import Encoder
from smartcli.pixel_indexing import check_image_file, encode_pictures, pages_per_batch, reads_pixels
from smartcli.store import FileRecord, PageRecord, Store

DEFAULT_BATCH_PAGES = 128
NOTE_IMAGE = "image: no text for a text model"
NOTE_NO_TEXT = "page has no text layer"


@dataclass
class Plan:
    new: list[SourceFile] = field(default_factory=list)
    changed: list[SourceFile] = field(default_factory=list)
    moved: list[tuple[str, SourceFile]] = field(default_factory=list)  # (old path, new file)
    touched: list[SourceFile] = field(default_factory=list)  # same content, new mtime
    unchanged: list[SourceFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def to_encode(self) -> list[SourceFile]:
        return self.new + self.changed


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    removed: int = 0
    moved: int = 0
    unchanged: int = 0
    pages_encoded: int = 0
    tokens_encoded: int = 0
    not_encoded: Counter = field(default_factory=Counter)  # note -> pages
    skipped: list[Skipped] = field(default_factory=list)
    bytes_written: int = 0

    def as_json(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "moved": self.moved,
            "unchanged": self.unchanged,
            "pages_encoded": self.pages_encoded,
            "tokens_encoded": self.tokens_encoded,
            "not_encoded": dict(self.not_encoded),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "bytes_written": self.bytes_written,
        }


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def plan_changes(store: Store, roots: list[str]) -> tuple[Plan, dict[str, str]]:
    """Compare the files under ``roots`` with the catalog. Returns the plan and new files' hashes."""
    sources, skipped = discover(roots)
    plan = Plan(skipped=list(skipped))
    known = {f["path"]: f for f in store.files()}
    present = {s.path for s in sources}
    abs_roots = [os.path.abspath(r) for r in roots]
    gone = {p: f for p, f in known.items() if _under(p, abs_roots) and p not in present}
    gone_by_hash = {f["sha256"]: p for p, f in gone.items() if f["sha256"] and f["status"] == "indexed"}
    hashes: dict[str, str] = {}
    for source in sources:
        old = known.get(source.path)
        if old and old["status"] == "indexed" and (old["size"], old["mtime_ns"]) == (source.size, source.mtime_ns):
            plan.unchanged.append(source)
            continue
        try:
            digest = file_sha256(source.path)
        except OSError as exc:
            plan.skipped.append(Skipped(source.path, exc.strerror.lower() if exc.strerror else str(exc)))
            continue
        hashes[source.path] = digest
        if old and old["status"] == "indexed" and old["sha256"] == digest:
            plan.touched.append(source)
        elif old is None and digest in gone_by_hash:
            plan.moved.append((gone_by_hash.pop(digest), source))
        elif old is not None:
            plan.changed.append(source)
        else:
            plan.new.append(source)
    moved_from = {old for old, _ in plan.moved}
    plan.removed = sorted(p for p in gone if p not in moved_from)
    return plan, hashes


class Indexer:
    def __init__(
        self,
        store: Store,
        encoder: Encoder,
        batch_pages: int = DEFAULT_BATCH_PAGES,
        encode_batch_size: int = 32,
        report: Callable[[str], None] = lambda message: None,
    ):
        self.store = store
        self.encoder = encoder
        self.batch_pages = pages_per_batch(encoder, batch_pages, store.token_dtype)
        self.encode_batch_size = encode_batch_size
        self.pixels = reads_pixels(encoder)  # pages become pictures; text-less pages and images are encoded
        self.report = report

    def run(self, plan: Plan, hashes: dict[str, str], progress: Callable[[int], None] = lambda n: None) -> IndexSummary:
        summary = IndexSummary(unchanged=len(plan.unchanged) + len(plan.touched), skipped=list(plan.skipped))
        for skipped in plan.skipped:
            self.report(f"skipped {skipped.path}: {skipped.reason}")
        if plan.removed:
            self.store.remove_paths(plan.removed)
            summary.removed = len(plan.removed)
        for old, source in plan.moved:
            self.store.move_file(old, source.path, source.size, source.mtime_ns)
            summary.moved += 1
        for source in plan.touched:
            self.store.touch_file(source.path, source.size, source.mtime_ns)
        changed_paths = {s.path for s in plan.changed}
        batch: list[FileRecord] = []
        for source in plan.to_encode:
            record = self._read(source, hashes.get(source.path))
            progress(len(record.pages) or 1)
            batch.append(record)
            if sum(len(r.pages) for r in batch) >= self.batch_pages:
                self._commit(batch, summary, changed_paths)
                batch = []
        if batch:
            self._commit(batch, summary, changed_paths)
        return summary

    def _read(self, source: SourceFile, sha256: str | None) -> FileRecord:
        record = FileRecord(source.path, source.kind, source.size, source.mtime_ns, sha256, pages=[])
        try:
            if self.pixels and source.kind == "image":
                check_image_file(source.path)
            for page in read_pages(source):
                if page.error:
                    self.report(f"page {page.page} of {source.path} not encoded: {page.error}")
                    note = page.error
                elif self.pixels:
                    note = None
                elif source.kind == "image":
                    note = NOTE_IMAGE
                elif not page.text:
                    note = NOTE_NO_TEXT
                else:
                    note = None
                record.pages.append(PageRecord(page.page, page.text or None, None, note))
        except UnreadableFile as exc:
            record.status, record.reason, record.pages = "skipped", str(exc), []
        return record

    def _commit(self, batch: list[FileRecord], summary: IndexSummary, changed_paths: set[str]) -> None:
        if self.pixels:
            pictured = [(r.path, r.kind, p) for r in batch if r.status == "indexed" for p in r.pages if p.note is None]
            encode_pictures(self.encoder, pictured, self.encode_batch_size, self.report, self.store.token_dtype)
        pages = [p for r in batch if r.status == "indexed" for p in r.pages if p.note is None and p.encoded is None]
        for page, encoded in zip(pages, self.encoder.encode([p.text for p in pages], self.encode_batch_size)):
            if encoded.tokens.shape[0] == 0:
                page.note = NOTE_NO_TEXT
            else:
                page.encoded = encoded
        for record in batch:
            if record.status == "indexed" and _changed_on_disk(record):
                record.status, record.reason, record.pages = "skipped", "changed or deleted while being indexed", []
        for record in batch:
            if record.status == "skipped":
                summary.skipped.append(Skipped(record.path, record.reason))
                self.report(f"skipped {record.path}: {record.reason}")
        segment = self.store.write_segment(batch)
        self.store.commit_files(batch, segment)
        for record in batch:
            if record.status != "indexed":
                continue
            if record.path in changed_paths:
                summary.updated += 1
            else:
                summary.added += 1
            for page in record.pages:
                if page.encoded is not None:
                    summary.pages_encoded += 1
                    summary.tokens_encoded += page.encoded.tokens.shape[0]
                else:
                    summary.not_encoded[page.note] += 1
        summary.bytes_written += segment.bytes if segment else 0


def _changed_on_disk(record: FileRecord) -> bool:
    try:
        st = os.stat(record.path)
    except OSError:
        return True
    return (st.st_size, st.st_mtime_ns) != (record.size, record.mtime_ns)


def total_pages(files: Iterable[SourceFile]) -> int:
    return sum(count_pages(f) for f in files)
