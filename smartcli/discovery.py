"""Find indexable files under the given paths and read their pages.

A *source file* is a PDF or an image on disk. Each source file yields one or more
*pages*: every PDF page is one (1-based numbering), an image is a single page 1.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

PDF_SUFFIXES = frozenset({".pdf"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"})

# A page whose text layer has fewer visible characters than this is treated as text-less.
MIN_TEXT_CHARS = 1
# Images with more pixels than this are refused before decoding (Pillow's own default
# warning threshold; a real photo is far below it, a decompression bomb far above).
MAX_IMAGE_PIXELS = 89_478_485


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


class UnreadableFile(Exception):
    """A source file that cannot be read at all; ``str(exc)`` is the reason."""


@dataclass
class PageText:
    page: int  # 1-based
    text: str  # stripped text layer ("" when the page has none)
    error: str | None = None  # why the page's text could not be read


@dataclass
class Document:
    """What could be read of a source file."""

    pages: list[PageText] = field(default_factory=list)
    damage: str | None = None  # why the file was only partly readable


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
        try:
            is_dir = stat.S_ISDIR(os.stat(root).st_mode)
        except OSError as exc:
            # A missing root's files are gone; an unreachable one's may still be there.
            skipped.append(Skipped(root, _stat_reason(root, exc), unlisted=exc.errno not in (errno.ENOENT, errno.ELOOP)))
            continue
        if is_dir:
            _walk(root, found, skipped, seen_dirs)
        else:
            _add_file(root, found, skipped, explicit=True)
    return [found[p] for p in sorted(found)], skipped


def _walk(top: str, found: dict, skipped: list, seen_dirs: set) -> None:
    try:
        st = os.stat(top)
    except OSError as exc:
        skipped.append(Skipped(top, os_reason(exc), unlisted=exc.errno not in (errno.ENOENT, errno.ELOOP)))
        return
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:
        return  # a symlink loop or a directory reached twice
    seen_dirs.add(key)
    try:
        with os.scandir(top) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        skipped.append(Skipped(top, f"directory cannot be listed ({os_reason(exc)})", unlisted=True))
        return
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
        skipped.append(Skipped(path, _stat_reason(path, exc)))
        return
    if not stat.S_ISREG(st.st_mode):
        skipped.append(Skipped(path, f"not a regular file ({_file_type(st.st_mode)})"))
        return
    found[path] = SourceFile(path=path, kind=kind, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _stat_reason(path: str, exc: OSError) -> str:
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return "dangling symbolic link (its target does not exist)"
    return os_reason(exc)


def os_reason(exc: OSError) -> str:
    """A short, lower-case reason for an OS error (no path, no errno number)."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    return exc.strerror.lower() if exc.strerror else str(exc)


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "a special file"


def open_regular(path: str) -> int:
    """Open ``path`` for reading without ever blocking, and only if it is a regular file.

    A file can be swapped for a named pipe after discovery; a plain open() would then
    wait forever for a writer.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"not a regular file ({_file_type(mode)})")
    except BaseException:
        os.close(fd)
        raise
    return fd


def file_sha256(path: str) -> str:
    """SHA-256 of a regular file's content. Raises OSError or :class:`UnreadableFile`."""
    digest = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _quiet_pymupdf():
    import pymupdf

    # MuPDF would otherwise print its own diagnostics; we report one line per file instead.
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    return pymupdf


@contextlib.contextmanager
def open_content(path: str):
    """The file at ``path`` as an open binary file, checked to be a regular, non-empty file.

    Everything that reads a source file goes through here, so a file swapped for a named
    pipe after discovery is refused instead of blocking the run.
    """
    with os.fdopen(open_regular(path), "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise UnreadableFile("empty file")
        yield f


def open_pdf(path: str):
    """Open a PDF with PyMuPDF, raising :class:`UnreadableFile` with a short reason."""
    pymupdf = _quiet_pymupdf()
    with open_content(path) as f:
        try:
            doc = _open_with_pymupdf(pymupdf, f)
        except OSError:
            raise
        except Exception as exc:  # PyMuPDF raises several types for broken files
            message = str(exc)
            if message.startswith("Failed to open"):  # the message repeats the path; say what it means
                raise UnreadableFile("not a readable PDF (no PDF structure could be found or repaired)") from None
            raise UnreadableFile(f"not a readable PDF ({_short(exc)})") from None
    if doc.needs_pass:
        doc.close()
        raise UnreadableFile("encrypted PDF (a password is required)")
    if doc.page_count == 0:
        doc.close()
        raise UnreadableFile("PDF has no pages")
    return doc


def _open_with_pymupdf(pymupdf, f):
    """Open the already-checked file ``f``: through /proc (the very same file, an ASCII name
    MuPDF accepts even when the real one is not UTF-8), else from memory."""
    by_descriptor = f"/proc/self/fd/{f.fileno()}"
    if os.path.exists(by_descriptor):
        return pymupdf.open(by_descriptor, filetype="pdf")
    return pymupdf.open(stream=f.read(), filetype="pdf")


def count_pages(source: SourceFile) -> int:
    """Number of pages an item will yield; 1 for images and for unreadable PDFs."""
    if source.kind != "pdf":
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


def read_pages(source: SourceFile) -> Iterator[PageText]:
    """Yield the text layer of each page of ``source`` (see :func:`read_document`)."""
    yield from read_document(source).pages


def _read_pdf(path: str) -> Document:
    document = Document()
    with open_pdf(path) as doc:
        for index in range(doc.page_count):
            try:
                text = doc[index].get_text("text")
            except Exception as exc:  # MuPDF raises several types for broken pages
                document.pages.append(PageText(page=index + 1, text="", error=f"cannot extract text: {_short(exc)}"))
                continue
            document.pages.append(PageText(page=index + 1, text=normalize_text(text)))
        repaired = doc.is_repaired
    broken = [p.page for p in document.pages if p.error]
    if repaired or broken:
        with_text = sum(1 for p in document.pages if p.text)
        what = "damaged PDF, repaired on reading" if repaired else "damaged PDF"
        detail = f"; text of page(s) {_page_list(broken)} could not be read" if broken else ""
        document.damage = f"{what}{detail}; indexed what was readable ({with_text} of {len(document.pages)} pages have text)"
    return document


def _page_list(pages: list[int], shown: int = 5) -> str:
    head = ", ".join(map(str, pages[:shown]))
    return head + (f" and {len(pages) - shown} more" if len(pages) > shown else "")


def validate_image(path: str) -> None:
    """Cheaply check that an image file decodes, refusing decompression bombs.

    Raises :class:`UnreadableFile` with the reason. The header is parsed and the
    pixel count checked before any pixel is decoded; PNG's checksums are verified;
    JPEGs are decoded at reduced scale (draft mode), other formats fully.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with open_content(path) as f, warnings.catch_warnings():
            # Pillow only warns between its two bomb thresholds; _check_pixels refuses those.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(f) as image:
                _check_pixels(image.size)
                image_format = image.format
                image.verify()
            if image_format == "PNG":
                return  # verify() already checked every chunk's CRC and the end of data
            f.seek(0)
            with Image.open(f) as image:
                if image_format == "JPEG":
                    image.draft(image.mode, (image.width // 8 or 1, image.height // 8 or 1))
                image.load()
    except Image.DecompressionBombError:
        raise UnreadableFile("image too large to decode safely (possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise UnreadableFile("not a readable image (unknown or damaged format)") from None
    except UnreadableFile:
        raise
    except OSError as exc:
        if exc.errno is not None:
            raise
        raise UnreadableFile(f"damaged image ({_short(exc)})") from None
    except Exception as exc:  # decoders raise ValueError, SyntaxError, struct.error, ...
        raise UnreadableFile(f"damaged image ({_short(exc)})") from None


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise UnreadableFile(
            f"image too large to decode safely ({width}x{height} pixels, limit {MAX_IMAGE_PIXELS:,}; possible decompression bomb)"
        )


def normalize_text(text: str) -> str:
    """Collapse the layout whitespace of a text layer; keep paragraph-ish breaks as spaces."""
    text = text.replace("\u00ad", "")  # soft hyphens split words in PDF text layers
    text = " ".join(text.split())
    return text if len(text) >= MIN_TEXT_CHARS else ""


def _short(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:200]
