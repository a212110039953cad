"""Safe access to source files: every read of a PDF or an image goes through here.

A file can be swapped for a named pipe after discovery; a plain open() would then wait
forever for a writer, so files are opened without blocking and checked to be regular.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat

from smartcli.errors import first_line


class UnreadableFile(Exception):
    """A source file that cannot be read at all; ``str(exc)`` is the reason."""


def os_reason(exc: OSError) -> str:
    """A short, lower-case reason for an OS error (no path, no errno number)."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (too many levels of symbolic links)"
    return exc.strerror.lower() if exc.strerror else str(exc)


def file_type(mode: int) -> str:
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


def stat_refusal(kind: str, st: os.stat_result) -> str | None:
    """Why a file of ``kind`` is not to be opened at all, judged by its ``stat`` alone (None: it may be)."""
    from smartcli import defaults

    limit = defaults.MAX_FILE_BYTES.get(kind, defaults.MAX_OTHER_FILE_BYTES)
    size = st.st_size
    allocated = getattr(st, "st_blocks", None)
    if allocated is not None and size >= defaults.SPARSE_MIN_BYTES and allocated * 512 * defaults.SPARSE_RATIO < size:
        return f"sparse file ({_size(size)} long, {_size(allocated * 512)} of it on disk): mostly holes, not a document; not read"
    if size > limit:
        return f"file of {_size(size)}, over the {_size(limit)} limit for a {kind} file; not read"
    return None


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def open_regular(path: str) -> int:
    """Open ``path`` for reading without ever blocking, and only if it is a regular file.

    A file can be swapped for a named pipe after discovery; a plain open() would then
    wait forever for a writer.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"not a regular file ({file_type(mode)})")
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


# Paged documents PyMuPDF opens, by suffix -> (MuPDF file type, the name a reason uses).
# "<suffix>.gz" (Debian ships manuals as .pdf.gz) is decompressed in memory first, at most
# defaults.MAX_DECOMPRESSED_BYTES of it.
DOCUMENT_TYPES = {
    ".pdf": ("pdf", "PDF"),
    ".epub": ("epub", "EPUB"),
    ".xps": ("xps", "XPS"),
    ".oxps": ("xps", "XPS"),
    ".cbz": ("cbz", "CBZ"),
    ".fb2": ("fb2", "FB2"),
    ".mobi": ("mobi", "MOBI"),
    ".svg": ("svg", "SVG"),
}
GZIP_SUFFIX = ".gz"


def document_suffix(path: str) -> str | None:
    """The document suffix of ``path`` (``.pdf``, ``.epub``, ``.pdf.gz`` ...), or None."""
    name = os.path.basename(path).lower()
    inner = name[: -len(GZIP_SUFFIX)] if name.endswith(GZIP_SUFFIX) else name
    suffix = os.path.splitext(inner)[1]
    if suffix not in DOCUMENT_TYPES:
        return None
    return suffix + (GZIP_SUFFIX if inner != name else "")


def _decompressed(f) -> bytes:
    """The content of the gzip file ``f``, refused past defaults.MAX_DECOMPRESSED_BYTES (a bomb guard)."""
    import gzip
    import zlib

    from smartcli import defaults

    limit = defaults.MAX_DECOMPRESSED_BYTES
    try:
        with gzip.GzipFile(fileobj=f, mode="rb") as z:
            data = z.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise UnreadableFile(f"not a readable gzip file ({first_line(exc)})") from None
    if len(data) > limit:
        raise UnreadableFile(f"decompresses to more than {limit >> 20} MB (refused as a possible decompression bomb)")
    if not data:
        raise UnreadableFile("empty file (once decompressed)")
    return data


def open_pdf(path: str):
    """Open a paged document (a PDF, or another type of DOCUMENT_TYPES, gzipped or not) with
    PyMuPDF, raising :class:`UnreadableFile` with a short reason."""
    pymupdf = _quiet_pymupdf()
    suffix = document_suffix(path) or ".pdf"
    filetype, label = DOCUMENT_TYPES[suffix.removesuffix(GZIP_SUFFIX)]
    with open_content(path) as f:
        data = _decompressed(f) if suffix.endswith(GZIP_SUFFIX) else None
        try:
            doc = pymupdf.open(stream=data, filetype=filetype) if data is not None else _open_with_pymupdf(pymupdf, f, filetype)
        except OSError:
            raise
        except Exception as exc:  # PyMuPDF raises several types for broken files
            message = str(exc)
            if message.startswith("Failed to open"):  # the message repeats the path; say what it means
                if label == "PDF":
                    raise UnreadableFile("not a readable PDF (no PDF structure could be found or repaired)") from None
                raise UnreadableFile(f"not a readable {label} file") from None
            raise UnreadableFile(f"not a readable {label} ({first_line(exc)})") from None
    if doc.needs_pass:
        doc.close()
        raise UnreadableFile(f"encrypted {label} (a password is required)")
    if doc.page_count == 0:
        doc.close()
        raise UnreadableFile(f"{label} has no pages")
    return doc


def _open_with_pymupdf(pymupdf, f, filetype: str = "pdf"):
    """Open the already-checked file ``f``: through /proc (the very same file, an ASCII name
    MuPDF accepts even when the real one is not UTF-8), else from memory."""
    by_descriptor = f"/proc/self/fd/{f.fileno()}"
    if os.path.exists(by_descriptor):
        return pymupdf.open(by_descriptor, filetype=filetype)
    return pymupdf.open(stream=f.read(), filetype=filetype)
