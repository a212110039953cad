"""Find indexable files under the given paths and read their pages.

A *source file* is a PDF or an image on disk. Each source file yields one or more
*pages*: every PDF page is one (1-based numbering), an image is a single page 1.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

PDF_SUFFIXES = frozenset({".pdf"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})

# A page whose text layer has fewer visible characters than this is treated as text-less.
MIN_TEXT_CHARS = 1


@dataclass(frozen=True)
class SourceFile:
    path: str  # absolute path, symlinks not resolved (the name the user sees)
    kind: str  # "pdf" or "image"
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass
class PageText:
    page: int  # 1-based
    text: str  # stripped text layer ("" when the page has none)
    error: str | None = None  # why the page's text could not be read


def kind_of(path: str) -> str | None:
    suffix = os.path.splitext(path)[1].lower()
    if suffix in PDF_SUFFIXES:
        return "pdf"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def discover(roots: Iterable[str | Path]) -> tuple[list[SourceFile], list[Skipped]]:
    """Walk ``roots`` recursively and return the indexable files, sorted by path.

    Directory symlinks are followed once (loops are cut); unreadable entries are
    reported as skipped rather than raised.
    """
    found: dict[str, SourceFile] = {}
    skipped: list[Skipped] = []
    seen_dirs: set[tuple[int, int]] = set()
    for root in roots:
        root = os.path.abspath(os.fspath(root))
        if not os.path.exists(root):
            skipped.append(Skipped(root, "no such file or directory"))
        elif os.path.isdir(root):
            _walk(root, found, skipped, seen_dirs)
        else:
            _add_file(root, found, skipped, explicit=True)
    return [found[p] for p in sorted(found)], skipped


def _walk(top: str, found: dict, skipped: list, seen_dirs: set) -> None:
    try:
        st = os.stat(top)
    except OSError as exc:
        skipped.append(Skipped(top, _os_reason(exc)))
        return
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:
        return  # a symlink loop or a directory reached twice
    seen_dirs.add(key)
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError as exc:
        skipped.append(Skipped(top, _os_reason(exc)))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks
        except OSError as exc:
            skipped.append(Skipped(entry.path, _os_reason(exc)))
            continue
        if is_dir:
            _walk(entry.path, found, skipped, seen_dirs)
        else:
            _add_file(entry.path, found, skipped, explicit=False)


def _add_file(path: str, found: dict, skipped: list, explicit: bool) -> None:
    kind = kind_of(path)
    if kind is None:
        if explicit:
            skipped.append(Skipped(path, "not a PDF or a supported image type"))
        return
    try:
        st = os.stat(path)
    except OSError as exc:
        skipped.append(Skipped(path, _os_reason(exc)))
        return
    if not stat.S_ISREG(st.st_mode):
        skipped.append(Skipped(path, "not a regular file"))
        return
    found[path] = SourceFile(path=path, kind=kind, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _os_reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)


class UnreadableFile(Exception):
    """A source file that cannot be read at all; ``str(exc)`` is the reason."""


def open_pdf(path: str):
    """Open a PDF with PyMuPDF, raising :class:`UnreadableFile` with a short reason."""
    import pymupdf

    if os.path.getsize(path) == 0:
        raise UnreadableFile("empty file")
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # PyMuPDF raises several types for broken files
        detail = _short(exc).replace(f"'{path}'", "").replace(path, "").replace("  ", " ")
        raise UnreadableFile(f"not a readable PDF ({detail})") from None
    if doc.needs_pass:
        doc.close()
        raise UnreadableFile("encrypted PDF (a password is required)")
    if doc.page_count == 0:
        doc.close()
        raise UnreadableFile("PDF has no pages")
    return doc


def count_pages(source: SourceFile) -> int:
    """Number of pages an item will yield; 1 for images and for unreadable PDFs."""
    if source.kind != "pdf":
        return 1
    try:
        with open_pdf(source.path) as doc:
            return doc.page_count
    except (UnreadableFile, OSError):
        return 1


def read_pages(source: SourceFile) -> Iterator[PageText]:
    """Yield the text layer of each page of ``source``.

    Images yield one text-less page. Raises :class:`UnreadableFile` when the file
    cannot be read at all; a single broken page is yielded with ``error`` set.
    """
    if source.kind == "image":
        yield PageText(page=1, text="")
        return
    try:
        doc = open_pdf(source.path)
    except OSError as exc:
        raise UnreadableFile(_os_reason(exc)) from None
    with doc:
        for index in range(doc.page_count):
            try:
                text = doc[index].get_text("text")
            except Exception as exc:
                yield PageText(page=index + 1, text="", error=f"cannot extract text: {_short(exc)}")
                continue
            yield PageText(page=index + 1, text=normalize_text(text))


def normalize_text(text: str) -> str:
    """Collapse the layout whitespace of a text layer; keep paragraph-ish breaks as spaces."""
    text = text.replace("\u00ad", "")  # soft hyphens split words in PDF text layers
    text = " ".join(text.split())
    return text if len(text) >= MIN_TEXT_CHARS else ""


def _short(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:200]
