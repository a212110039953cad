"""Bring a store up to date with the files under some paths.

The run plans first (planning.py: what is new, changed, moved, copied, gone, unchanged), applies the
catalog-only changes (moves, copies, removals) in one transaction, then reads and
encodes the rest in batches, committing each batch atomically so an interrupted run
keeps what it finished and the next run resumes where it stopped.

A file's identity is its path; its content's identity is its SHA-256. Size and mtime
decide cheaply that a file is unchanged; only files that differ are hashed. Content
already in the index (a moved, renamed or copied file) is never encoded again.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from smartcli import defaults
from smartcli.ingest.discovery import Skipped, SourceFile, UnreadableFile
from smartcli.ingest.pictures import encode_pictures, pages_per_batch, reads_pixels
from smartcli.ingest.planning import Plan
from smartcli.ingest.sandbox import SandboxedReader
from smartcli.models.base import Encoder
from smartcli.store.catalog import CatalogChanges, FileCopy, FileRecord, PageRecord, Store, writes
from smartcli.store.notes import Note

DEFAULT_BATCH_PAGES = defaults.BATCH_PAGES
READ_AHEAD_FILES = 2  # files read in the background while the current batch is encoded
REASON_RACE = "changed or deleted while being indexed (left for the next run)"
# Why an image has no vectors when a text model indexed it: it shows no text a text model can read.
PICTURE_WITHOUT_TEXT = frozenset({Note.IMAGE_WITHOUT_TEXT, Note.OCR_NO_TEXT, Note.OCR_UNREADABLE})


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    removed: int = 0
    moved: int = 0
    copied: int = 0
    unchanged: int = 0
    pages_encoded: int = 0
    tokens_encoded: int = 0
    not_encoded: Counter = field(default_factory=Counter)  # Note -> pages
    skipped: list[Skipped] = field(default_factory=list)
    partly_indexed: list[Skipped] = field(default_factory=list)  # damaged files whose readable pages were indexed
    bytes_written: int = 0
    compaction: dict | None = None  # what the automatic compaction did, if it ran
    store: str = ""
    ocr: dict | None = None  # OcrStats.as_json() of the run
    renormalized: int = 0  # files read again because an older text normalization produced their text
    not_indexable: Counter = field(default_factory=Counter)  # suffix -> files under the paths of no indexable type
    pictures_without_text: int = 0  # images recorded without vectors: no text to read (an image model would see them)

    @property
    def bytes_per_page(self) -> float:
        return self.bytes_written / self.pages_encoded if self.pages_encoded else 0.0

    @property
    def complete(self) -> bool:
        """True when every file was read whole (exit code 0 rather than 3)."""
        return not self.skipped and not self.partly_indexed

    def as_json(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "moved": self.moved,
            "copied": self.copied,
            "unchanged": self.unchanged,
            "pages_encoded": self.pages_encoded,
            "tokens_encoded": self.tokens_encoded,
            "not_encoded": {str(note): n for note, n in self.not_encoded.items()},
            "skipped": [s.as_json() for s in self.skipped],
            "partly_indexed": [s.as_json() for s in self.partly_indexed],
            "bytes_written": self.bytes_written,
            "compaction": self.compaction,
            "store": self.store,
            "bytes_per_page": round(self.bytes_per_page),
            "ocr": self.ocr,
            "renormalized": self.renormalized,
            "not_indexable": dict(self.not_indexable.most_common()),
            "pictures_without_text": self.pictures_without_text,
        }


class Indexer:
    def __init__(
        self,
        store: Store,
        encoder: Encoder,
        batch_pages: int = DEFAULT_BATCH_PAGES,
        encode_batch_size: int = defaults.TEXT_BATCH_SIZE,
        report: Callable[[str], None] = lambda message: None,
        ocr=None,
        read_timeout: float = defaults.READ_TIMEOUT_SECONDS,
        read_memory: int = defaults.READ_MEMORY_BYTES,
    ):
        self.store = store
        self.reader = SandboxedReader(read_timeout, read_memory)
        # Pages pictured for a pixel model are rendered by a worker of their own (the reader's
        # is busy reading ahead on another thread), under the same limits.
        self.render_sandbox = SandboxedReader(read_timeout, read_memory)
        self.encoder = encoder
        self.batch_pages = pages_per_batch(encoder, batch_pages, store.token_dtype)
        self.encode_batch_size = encode_batch_size
        self.pixels = reads_pixels(encoder)  # pages become pictures; text-less pages and images are encoded
        self.report = report
        # An ocr.OcrRunner, or None: pages without a text layer stay text-less.
        self.ocr = ocr if not self.pixels else None
        self._progress: Callable[[int], None] = lambda n: None
        # Called after each batch is committed with the batch's records and those committed (a CommitCounter).
        self.on_commit: Callable[[list[FileRecord], list[FileRecord]], None] = lambda batch, committed: None
        # Called with the number of pages of each slice once it is encoded, before its files commit.
        self.on_encoded: Callable[[int], None] = lambda n: None
        self._refused: dict[str, str] = {}  # path -> why the reader refused it while counting its pages
        # SHA-256 -> why a file of that content was skipped in this run: its copies are skipped alike,
        # unread (10,000 copies of a file that hangs the reader must not cost 10,000 deadlines).
        self._skipped_content: dict[str, str] = {}

    def count_pages(self, sources: Iterable[SourceFile]) -> dict[str, int]:
        """The pages each source will yield (an estimate for some: discovery.count_pages), counted
        in the reader's worker. A file the worker refuses (past its deadline or memory limit, or
        crashing it) counts 1 and is skipped with that reason when its turn comes, unread."""
        from smartcli.ingest.sandbox import is_refusal

        counts = {}
        for source in sources:
            try:
                counts[source.path] = self.reader.count(source)
            except UnreadableFile as exc:
                counts[source.path] = 1
                if is_refusal(str(exc)):
                    self._refused[source.path] = str(exc)
        return counts

    def run(self, plan: Plan, hashes: dict[str, str], progress: Callable[[int], None] = lambda n: None) -> IndexSummary:
        self._progress = progress
        summary = IndexSummary(unchanged=len(plan.unchanged) + len(plan.touched))
        for skipped in plan.skipped:
            self._skip(summary, skipped)
        with self.reader, self.render_sandbox:
            orphan_copies = self._apply_catalog_changes(plan, hashes, summary, progress)
            self._encode_all(orphan_copies + plan.to_encode, hashes, plan, summary, progress)
            self._copy_duplicates(plan, hashes, summary, progress)
        return summary

    def _apply_catalog_changes(self, plan, hashes, summary, progress) -> list[SourceFile]:
        """Moves, copies, touches and removals in one transaction. Returns the copies that must be encoded
        after all (no indexed file holds their content any more)."""
        fresh_copies, changed = _partition_changed(plan.copied)
        changes = CatalogChanges(
            moves=[(old, s.path, s.size, s.mtime_ns) for old, s in plan.moved],
            copies=[FileCopy(s.path, s.size, s.mtime_ns, hashes[s.path]) for s in fresh_copies],
            touches=[(s.path, s.size, s.mtime_ns) for s in plan.touched],
            removals=plan.removed,
        )
        not_copied = set(writes.apply_changes(self.store, changes))
        summary.removed, summary.moved = len(plan.removed), len(plan.moved)
        for source in changed:
            self._skip(summary, Skipped(source.path, REASON_RACE))
        copied = [s for s in fresh_copies if s.path not in not_copied]
        self._count_copies(summary, copied, plan)
        progress(len(copied))
        return [s for s in fresh_copies if s.path in not_copied]

    def _encode_all(self, sources, hashes, plan, summary, progress) -> None:
        batch: list[FileRecord] = []
        size = 0  # pages in the batch; a file without pages (skipped) counts one, so that it commits too
        for record in self._read_ahead(sources, hashes):
            waiting_for_ocr = self.ocr.claim(record) if self.ocr else 0
            progress((len(record.pages) or 1) - waiting_for_ocr)
            batch.append(record)
            size += len(record.pages) or 1
            if size >= self.batch_pages:
                self._commit(batch, summary, plan)
                batch, size = [], 0
        if batch:
            self._commit(batch, summary, plan)

    def _read_ahead(self, sources: list[SourceFile], hashes: dict[str, str]):
        """Yield each source's FileRecord in order, reading the next files on a background thread.

        PDF parsing then overlaps the model's forward passes, which release the GIL.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="smart-read") as pool:
            queue = deque()
            remaining = iter(sources)
            for source in itertools.islice(remaining, READ_AHEAD_FILES):
                queue.append(pool.submit(self._read, source, hashes.get(source.path)))
            while queue:
                record = queue.popleft().result()
                following = next(remaining, None)
                if following is not None:
                    queue.append(pool.submit(self._read, following, hashes.get(following.path)))
                yield record

    def _copy_duplicates(self, plan, hashes, summary, progress) -> None:
        """Files whose content another file of this run has: share its freshly committed rows."""
        if not plan.duplicates:
            return
        fresh, changed = _partition_changed(plan.duplicates)
        for source in changed:
            self._skip(summary, Skipped(source.path, REASON_RACE))
        copies = [FileCopy(s.path, s.size, s.mtime_ns, hashes[s.path]) for s in fresh]
        not_copied = set(writes.apply_changes(self.store, CatalogChanges(copies=copies)))
        self._count_copies(summary, [s for s in fresh if s.path not in not_copied], plan)
        progress(len(fresh))
        # The first file with this content could not be indexed (unreadable, changed): try this one.
        self._encode_all([s for s in fresh if s.path in not_copied], hashes, plan, summary, lambda n: None)

    @staticmethod
    def _count_copies(summary: IndexSummary, sources: list[SourceFile], plan: Plan) -> None:
        for source in sources:
            if source.path in plan.previously_indexed:
                summary.updated += 1
            else:
                summary.copied += 1

    def _skip(self, summary: IndexSummary, skipped: Skipped) -> None:
        summary.skipped.append(skipped)
        self.report(f"skipped {skipped.path}: {skipped.reason}")

    def _read(self, source: SourceFile, sha256: str | None) -> FileRecord:
        record = FileRecord(source.path, source.kind, source.size, source.mtime_ns, sha256, pages=[])
        refused = self._refused.get(source.path) or self._skipped_content.get(sha256)
        if refused:  # refused while its pages were counted, or its very content was skipped already
            record.status, record.reason = "skipped", refused
            return record
        try:
            document = self.reader.read(source)  # an image is decoded whole there, under the limits
        except UnreadableFile as exc:
            record.status, record.reason = "skipped", str(exc)
            return record
        for page in document.pages:
            if page.error:
                note = Note.PAGE_UNREADABLE
            elif self.pixels:
                note = None
            elif source.kind == "image":
                note = Note.IMAGE_WITHOUT_TEXT
            elif not page.text:
                note = Note.BLANK_PAGE if page.pictured is False else Note.NO_TEXT_LAYER
            else:
                note = None
            record.pages.append(
                PageRecord(
                    page.page, page.text or None, None, note, detail=page.error, role=document.roles.get(page.page), pictured=page.pictured
                )
            )
            if page.cut_from:
                self.report(
                    f"page {page.page} of {source.path}: text cut to its first {defaults.MAX_PAGE_CHARS:,} of {page.cut_from:,} characters"
                )
        for warning in document.warnings:  # what a library printed while reading it
            self.report(f"{source.path}: {warning}")
        record.reason = document.damage  # reported once the file is committed
        return record

    def _commit(self, batch: list[FileRecord], summary: IndexSummary, plan: Plan) -> None:
        """Encode the batch's pages and commit its files in one transaction.

        Pages are encoded ``batch_pages`` at a time (the last slice up to half a batch more), so a long
        file never holds more token states than one such slice: each slice but the last is written
        to a segment of its own at once
        (``written_ahead``), and no catalog row names those segments until the files are committed
        whole with the last slice. An interrupted run thus commits a file whole or not at all;
        the segments it wrote ahead are unreferenced and removed by the next run, which encodes
        the file again (nothing lost, nothing twice).
        """
        if self.ocr:
            self.ocr.fill(self._progress)
        todo = [(r, p) for r in batch if r.status == "indexed" for p in r.pages if p.note is None and p.encoded is None]
        step = max(1, self.batch_pages)
        written_ahead = []
        try:
            start = 0
            while start < len(todo):
                # The last slice takes up to half a batch more, so that a batch just over its size
                # (the usual one: whole files up to batch_pages) stays one segment.
                last = len(todo) - start <= step + step // 2
                end = len(todo) if last else start + step
                part = [(r, p) for r, p in todo[start:end] if r.status == "indexed"]
                self._encode(part)
                self.on_encoded(sum(1 for _, p in part if p.encoded is not None))
                if not last:
                    ahead = self._write_ahead(part)
                    if ahead is not None:
                        written_ahead.append(ahead)
                start = end
            # A file that changed after it was hashed and read is left as it was in the catalog.
            intact: list[FileRecord] = []
            for record in batch:
                if _changed_on_disk(record):
                    self._skip(summary, Skipped(record.path, REASON_RACE))
                else:
                    intact.append(record)
            kept = {p.stored[0] for r in intact for p in r.pages if p.stored is not None}
            self._discard([s for s in written_ahead if s.name not in kept])
            written_ahead = [s for s in written_ahead if s.name in kept]
            segment = writes.write_segment(self.store, intact)
            writes.commit_files(self.store, intact, segment, written_ahead=written_ahead)
        except BaseException:
            self._discard(written_ahead)  # nothing names them; the next run would remove them anyway
            raise
        for record in intact:
            self._count(record, summary, plan)
        summary.bytes_written += (segment.bytes if segment else 0) + sum(s.bytes for s in written_ahead)
        self.on_commit(batch, intact)

    def _encode(self, part: list[tuple[FileRecord, PageRecord]]) -> None:
        """Set ``encoded`` (or a note) on each page of ``part``."""
        if self.pixels:
            pictured = [(r.path, r.kind, p) for r, p in part]
            refused = encode_pictures(
                self.encoder, pictured, self.encode_batch_size, self.report, self.store.token_dtype, self.render_sandbox
            )
            for record, _ in part:
                if record.path in refused:  # remembered like a file the reader refused (planning.py)
                    record.status, record.reason, record.pages = "skipped", refused[record.path], []
            return
        wordless = [p for _, p in part if not any(ch.isalnum() for ch in p.text or "")]
        for page in wordless:  # a lone "~" or bullet: nothing for the model (it holds no token)
            page.note = Note.BLANK_PAGE if page.pictured is False else Note.NO_TEXT_LAYER
        part = [(r, p) for r, p in part if p.note is None]
        texts = [p.text for _, p in part]
        for (record, page), encoded in zip(part, self.encoder.encode_documents(texts, self.encode_batch_size) if texts else []):
            if encoded.tokens.shape[0] == 0:
                # Nothing for the model in its text layer; OCR (if it ran) found nothing better.
                page.note = Note.BLANK_PAGE if page.pictured is False else Note.NO_TEXT_LAYER
            else:
                page.encoded = _capped(encoded, record.path, page, self.report)

    def _write_ahead(self, part: list[tuple[FileRecord, PageRecord]]):
        """Write the encoded pages of ``part`` to a segment now and let their token states go."""
        pages = [p for _, p in part if p.encoded is not None]
        segment = writes.write_segment(self.store, [FileRecord(r.path, r.kind, 0, 0, None, [p]) for r, p in part if p.encoded is not None])
        if segment is None:
            return None
        for row, page in enumerate(pages):
            page.stored = (segment.name, row, int(page.encoded.tokens.shape[0]))
            page.encoded = None
        return segment

    def _discard(self, segments) -> None:
        for segment in segments:
            self.store.segment_path(segment.name).unlink(missing_ok=True)

    def _count(self, record: FileRecord, summary: IndexSummary, plan: Plan) -> None:
        if record.status != "indexed":
            self._skip(summary, Skipped(record.path, record.reason))
            if record.sha256 and record.reason and record.reason != REASON_RACE:
                self._skipped_content.setdefault(record.sha256, record.reason)
            return
        if record.reason:
            summary.partly_indexed.append(Skipped(record.path, record.reason))
            self.report(f"partly indexed {record.path}: {record.reason}")
        if record.path in plan.previously_indexed:
            summary.updated += 1
        else:
            summary.added += 1
        for page in record.pages:
            if page.stored is not None:
                summary.pages_encoded += 1
                summary.tokens_encoded += page.stored[2]
            elif page.encoded is not None:
                summary.pages_encoded += 1
                summary.tokens_encoded += page.encoded.tokens.shape[0]
            else:
                summary.not_encoded[page.note] += 1
        if record.kind == "image" and record.pages and all(p.note in PICTURE_WITHOUT_TEXT for p in record.pages):
            summary.pictures_without_text += 1


class CommitCounter:
    """Counts what a run has committed, for an honest progress display: an ``Indexer.on_commit``.

    ``estimates`` maps each file to encode to the pages it was expected to yield; as files
    are committed (or turn out unreadable) the total is corrected to the pages they really
    yielded. After each batch ``report(files, pages, encoded, total)`` gets the counts so far.
    """

    def __init__(self, estimates: dict[str, int], report: Callable[[int, int, int, int], None]):
        self.estimates = dict(estimates)
        self.total = sum(self.estimates.values())
        self.files = self.pages = self.encoded = 0
        self.report = report

    def __call__(self, batch: list[FileRecord], committed: list[FileRecord]) -> None:
        kept = {id(r) for r in committed}
        for record in batch:
            indexed = record.status == "indexed" and id(record) in kept
            pages = len(record.pages) if indexed else 0
            self.total += pages - self.estimates.pop(record.path, 0)
            if indexed:
                self.files += 1
                self.pages += pages
                self.encoded += sum(1 for p in record.pages if p.encoded is not None or p.stored is not None)
        self.report(self.files, self.pages, self.encoded, self.total)


def _capped(encoded, path, page, report):
    """At most MAX_PAGE_TOKENS token states per page (the first ones), with a warning naming the page."""
    from dataclasses import replace

    cap = defaults.MAX_PAGE_TOKENS
    n = encoded.tokens.shape[0]
    if n <= cap:
        return encoded
    report(f"page {page.page} of {path}: {n:,} token states, only the first {cap:,} kept")
    return replace(encoded, tokens=encoded.tokens[:cap], token_ids=encoded.token_ids[:cap], spans=encoded.spans[:cap])


def _partition_changed(sources: list[SourceFile]) -> tuple[list[SourceFile], list[SourceFile]]:
    """``sources`` split into those as planned and those changed on disk since."""
    fresh, changed = [], []
    for source in sources:
        (changed if _changed_on_disk(source) else fresh).append(source)
    return fresh, changed


def _changed_on_disk(source: SourceFile | FileRecord) -> bool:
    try:
        st = os.stat(source.path)
    except OSError:
        return True
    return (st.st_size, st.st_mtime_ns) != (source.size, source.mtime_ns)
