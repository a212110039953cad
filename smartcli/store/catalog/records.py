"""What goes into the catalog and what comes out of it: file and page records to commit,
catalog-only changes, live items read back; and how paths and page texts are stored."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field

from smartcli.models.base import Encoded
from smartcli.store.notes import Note
from smartcli.store.pageroles import BODY


@dataclass
class PageRecord:
    """One page (or image) of a file, ready to be committed."""

    page: int
    text: str | None
    encoded: Encoded | None
    note: Note | None = None  # why the page has no vectors
    detail: str | None = None  # a library's message about the note, if any
    ocr: str | None = None  # OCR language when ``text`` came from OCR
    role: str | None = None  # store/pageroles.py: what the outline says; else judged from ``text`` on commit
    # (segment name, row, token count) once the page's vectors were written to a segment ahead of
    # its file's commit (a long file is encoded and written in bounded batches; see indexer.py).
    stored: tuple[str, int, int] | None = None
    pictured: bool | None = None  # a short-text page shows something OCR could read (None: not looked)


@dataclass
class FileRecord:
    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str | None
    pages: list[PageRecord]
    status: str = "indexed"
    reason: str | None = None


@dataclass
class FileCopy:
    """A file whose content (``sha256``) an indexed file already has."""

    path: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass
class CatalogChanges:
    """Catalog-only changes of a re-index: nothing to read or encode."""

    moves: list[tuple[str, str, int, int]] = field(default_factory=list)  # (old path, new path, size, mtime_ns)
    copies: list[FileCopy] = field(default_factory=list)
    touches: list[tuple[str, int, int]] = field(default_factory=list)  # (path, size, mtime_ns): same content
    removals: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.moves or self.copies or self.touches or self.removals)


@dataclass
class LiveItem:
    item_id: int
    path: str
    page: int
    kind: str
    segment: str
    row: int
    n_tokens: int
    text: str
    role: str = BODY  # store/pageroles.py
    # What is wrong with the stored text (None: nothing): it differs from what was committed, or
    # is not UTF-8 any more. The page keeps its vectors; ``text`` has replacement characters.
    text_problem: str | None = None


def fs_path(path: bytes | str) -> str:
    return os.fsdecode(path)


def db_path(path: str) -> bytes:
    # Paths are stored as bytes so that names that are not valid UTF-8 survive.
    return os.fsencode(path)


def text_crc(text: str | None) -> int | None:
    """CRC-32 of a page's text as stored (UTF-8); None for no text."""
    return None if text is None else zlib.crc32(text.encode("utf-8", "surrogatepass"))


def checked_text(raw: bytes | None, crc: int | None) -> tuple[str, str | None]:
    """A page's stored text (bytes) decoded, and what is wrong with it (None: nothing)."""
    raw = raw or b""
    if crc is not None and zlib.crc32(raw) != crc:
        problem = "its text differs from what was committed (CRC-32)"
    else:
        problem = None
    try:
        return raw.decode("utf-8"), problem
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), problem or "its text is not UTF-8 any more"
