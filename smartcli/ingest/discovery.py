"""Find indexable files under the given paths and read their pages.

A *source file* is a paged document (a PDF, or an EPUB, XPS, CBZ, FB2, MOBI or SVG file,
any of them possibly gzipped: files.DOCUMENT_TYPES; kind "pdf") or an image on disk. Each
source file yields one or more *pages*: every document page is one (1-based numbering), an
image is a single page 1. Other files under a folder are counted by suffix (not indexable).
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from smartcli import defaults
from smartcli.errors import first_line
from smartcli.ingest.files import UnreadableFile, document_suffix, file_type, open_pdf, os_reason, stat_refusal
from smartcli.ingest.render import validate_image
from smartcli.models.base import normalize_text as normalize_model_text
from smartcli.store.pageroles import outline_roles
from smartcli.store.skips import skip_code

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})

# A page whose text layer has fewer visible characters than this is treated as text-less.
MIN_TEXT_CHARS = 1
# Pages with fewer letters and digits than this are looked at for pictures during the text pass:
# the short text layers OCR in auto mode may replace.
SHORT_TEXT_CHARS = defaults.OCR_SHORT_TEXT_CHARS


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
    unlisted: bool = False  # a directory whose contents could not be listed

    @property
    def code(self) -> str:
        """The reason's stable code (store/skips.py), as the catalog stores it."""
        return str(skip_code(self.reason)[0])

    @property
    def detail(self) -> str | None:
        return skip_code(self.reason)[1]

    def as_json(self) -> dict:
        return {"path": self.path, "code": self.code, "detail": self.detail, "reason": self.reason}


@dataclass
class PageText:
    page: int  # 1-based
    text: str  # stripped text layer ("" when the page has none)
    error: str | None = None  # why the page's text could not be read
    cut_from: int | None = None  # characters the page held when its text was cut to MAX_PAGE_CHARS
    # For a page with little text (fewer than SHORT_TEXT_CHARS letters and digits): whether it
    # shows anything OCR could read (an image, vector paths); None: it has text enough, not looked.
    pictured: bool | None = None


@dataclass
class Document:
    """What could be read of a source file."""

    pages: list[PageText] = field(default_factory=list)
    damage: str | None = None  # why the file was only partly readable
    roles: dict[int, str] = field(default_factory=dict)  # page -> contents/index, as the outline names them
    warnings: list[str] = field(default_factory=list)  # what the libraries printed while reading it (sandbox.py)


def kind_of(path: str) -> str | None:
    if document_suffix(path):
        return "pdf"
    suffix = os.path.splitext(path)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def discover(
    roots: Iterable[str | Path], mounts: dict[str, int] | None = None, not_indexable: Counter | None = None
) -> tuple[list[SourceFile], list[Skipped]]:
    """Walk ``roots`` recursively and return the indexable files, sorted by path.

    Directory symlinks are followed once (loops are cut); unreadable entries are
    reported as skipped rather than raised; directories deeper than
    ``defaults.MAX_DIRECTORY_DEPTH`` below a root are skipped with a reason. ``mounts``, when
    given, receives every directory that is on another device than its parent (a mount
    point), with its device number. ``not_indexable``, when given, counts the files found in
    folders that are neither documents nor images, by suffix (:func:`suffix_of`).
    """
    found: dict[str, SourceFile] = {}
    skipped: list[Skipped] = []
    seen_dirs: set[tuple[int, int]] = set()
    for root in roots:
        root = os.path.abspath(os.fspath(root))
        try:
            is_dir = stat.S_ISDIR(os.stat(root).st_mode)
        except OSError as exc:
            # A missing root's files are gone; an unreachable one's may still be there.
            skipped.append(Skipped(root, _stat_reason(root, exc), unlisted=exc.errno not in (errno.ENOENT, errno.ELOOP)))
            continue
        if is_dir:
            _walk(root, found, skipped, seen_dirs, {} if mounts is None else mounts, Counter() if not_indexable is None else not_indexable)
        else:
            _add_file(root, found, skipped, explicit=True)
    return [found[p] for p in sorted(found)], skipped


def _walk(top: str, found: dict, skipped: list, seen_dirs: set, mounts: dict, not_indexable: Counter) -> None:
    """Depth first, with a stack of its own (a folder thousands of levels deep must not
    exhaust Python's recursion limit)."""
    stack = [(top, 0, None)]  # (directory, depth below top, its parent's device)
    while stack:
        directory, depth, parent_dev = stack.pop()
        try:
            st = os.stat(directory)
        except OSError as exc:
            skipped.append(Skipped(directory, os_reason(exc), unlisted=exc.errno not in (errno.ENOENT, errno.ELOOP)))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            continue  # a symlink loop or a directory reached twice
        seen_dirs.add(key)
        if parent_dev is not None and st.st_dev != parent_dev:
            mounts[directory] = st.st_dev
        if depth > defaults.MAX_DIRECTORY_DEPTH:
            skipped.append(Skipped(directory, f"more than {defaults.MAX_DIRECTORY_DEPTH} folders deep; not searched", unlisted=True))
            continue
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(directory, f"directory cannot be listed ({os_reason(exc)})", unlisted=True))
            continue
        subdirectories = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError as exc:
                unlisted = exc.errno not in (errno.ELOOP, errno.ENOENT)
                skipped.append(Skipped(entry.path, os_reason(exc), unlisted=unlisted))
                continue
            if is_dir:
                subdirectories.append((entry.path, depth + 1, st.st_dev))
            elif not _add_file(entry.path, found, skipped, explicit=False):
                not_indexable[suffix_of(entry.name)] += 1
        stack.extend(reversed(subdirectories))


def suffix_of(name: str) -> str:
    """How a file that is not indexable is counted: its suffix, lower case (``.txt``, ``.tar.gz``), or "" for none."""
    name = name.lower()
    stem, suffix = os.path.splitext(name)
    if suffix == ".gz" and os.path.splitext(stem)[1]:
        suffix = os.path.splitext(stem)[1] + suffix
    return suffix


def describe_suffixes(counts: Counter) -> str:
    """``12 .txt, 3 .md, 1 without a suffix``: files that are not indexable, by suffix, most first."""
    return ", ".join(f"{n} {suffix or 'without a suffix'}" for suffix, n in counts.most_common())


def _add_file(path: str, found: dict, skipped: list, explicit: bool) -> bool:
    """Record ``path`` as found (or skipped with a reason); False when it is not of an indexable type."""
    kind = kind_of(path)
    if kind is None:
        if explicit:
            skipped.append(Skipped(path, "not a PDF, another supported document type or a supported image type"))
        return False
    try:
        st = os.stat(path)
    except OSError as exc:
        skipped.append(Skipped(path, _stat_reason(path, exc)))
        return True
    if not stat.S_ISREG(st.st_mode):
        skipped.append(Skipped(path, f"not a regular file ({file_type(st.st_mode)})"))
        return True
    refusal = stat_refusal(kind, st)
    if refusal:
        skipped.append(Skipped(path, refusal))
        return True
    found[path] = SourceFile(path=path, kind=kind, size=st.st_size, mtime_ns=st.st_mtime_ns)
    return True


def _stat_reason(path: str, exc: OSError) -> str:
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return "dangling symbolic link (its target does not exist)"
    return os_reason(exc)


# Reflowable documents get their pages from a layout of the whole text: counting them costs a
# full read, so a progress total counts them as 1 until read.
_LAID_OUT = (".epub", ".fb2", ".mobi")


def count_pages(source: SourceFile) -> int:
    """Number of pages an item will yield; 1 for images, for unreadable PDFs and (an estimate,
    until read) for reflowable documents. It opens the file: run it in the sandbox's worker
    (``SandboxedReader.count``), never in the indexing process."""
    if source.kind != "pdf" or (document_suffix(source.path) or "").removesuffix(".gz") in _LAID_OUT:
        return 1
    try:
        with open_pdf(source.path) as doc:
            return doc.page_count
    except (UnreadableFile, OSError):
        return 1


def read_document(source: SourceFile) -> Document:
    """Read the text layer of each page of ``source`` (images: validate, one text-less page).

    Raises :class:`UnreadableFile` when the file cannot be read at all. A file that is
    only partly readable (a PDF MuPDF had to repair, pages whose text cannot be
    extracted) comes back with ``damage`` saying so.
    """
    try:
        if source.kind == "image":
            validate_image(source.path)
            return Document(pages=[PageText(page=1, text="")])
        return _read_pdf(source.path)
    except OSError as exc:
        raise UnreadableFile(os_reason(exc)) from None


def _read_pdf(path: str) -> Document:
    document = Document()
    with open_pdf(path) as doc:
        for index in range(doc.page_count):
            try:
                page = doc[index]
                text = page.get_text("text")
                text = normalize_text(text)
                pictured = shows_picture(page) if sum(ch.isalnum() for ch in text) < SHORT_TEXT_CHARS else None
            except Exception as exc:  # MuPDF raises several types for broken pages
                document.pages.append(PageText(page=index + 1, text="", error=first_line(exc)))
                continue
            cut_from = None
            if len(text) > defaults.MAX_PAGE_CHARS:
                cut_from, text = len(text), text[: defaults.MAX_PAGE_CHARS]
            document.pages.append(PageText(page=index + 1, text=text, cut_from=cut_from, pictured=pictured))
            del text
        repaired = doc.is_repaired
        document.roles = _outline_roles(doc)
    broken = [p.page for p in document.pages if p.error]
    if repaired or broken:
        with_text = sum(1 for p in document.pages if p.text)
        what = "damaged PDF, repaired on reading" if repaired else "damaged PDF"
        detail = f"; text of page(s) {_page_list(broken)} could not be read" if broken else ""
        document.damage = f"{what}{detail}; indexed what was readable ({with_text} of {len(document.pages)} pages have text)"
    return document


def _outline_roles(doc) -> dict[int, str]:
    """Pages the PDF's outline names as contents or index (nothing when it has no readable outline)."""
    try:
        return outline_roles(doc.get_toc(simple=True), doc.page_count)
    except Exception:  # a broken outline says nothing about the pages
        return {}


def shows_picture(page) -> bool:
    """Whether a PDF page draws something besides its text layer that OCR could read: an image
    (inline ones included) or vector paths (text drawn as outlines, glyphs as boxes). Decided in
    the text pass, so that OCR never renders a page that shows nothing (issue 13: 20,000 tiny
    pages took 1,424 s to be rendered and probed, and none of them was OCR'd)."""
    if page.parent.is_pdf:  # other documents (EPUB, XPS, SVG, ...) have no PDF resources or content streams
        if page.get_images():  # the page's resources: no content is run
            return True
        if not page.get_contents():
            return False  # nothing drawn at all
    return bool(page.get_image_info()) or bool(page.get_cdrawings())


def _page_list(pages: list[int], shown: int = 5) -> str:
    head = ", ".join(map(str, pages[:shown]))
    return head + (f" and {len(pages) - shown} more" if len(pages) > shown else "")


def normalize_text(text: str) -> str:
    """A text layer or OCR text as stored and encoded: ligatures expanded, invisible characters
    dropped, layout whitespace collapsed (``models.base.normalize_text``)."""
    text = normalize_model_text(text)
    return text if len(text) >= MIN_TEXT_CHARS else ""
