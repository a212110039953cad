"""Why a file was skipped (or only partly indexed): the stable codes stored in ``files.reason``.

The catalog stores a code in ``files.reason`` and, in ``files.reason_detail``, what varies
(a figure, a library's own message). :func:`skip_code` turns a reason the readers raise into
(code, detail); :func:`skip_words` gives back the very line users read. A store written before
codes were kept holds sentences: a writer's open maps them in place (:func:`stored_skip`).
"""

from __future__ import annotations

import enum


class Skip(str, enum.Enum):
    READ_TIMEOUT = "read_timeout"  # the reader ran past its deadline
    RENDER_TIMEOUT = "render_timeout"  # rendering a page ran past the deadline
    OCR_TIMEOUT = "ocr_timeout"  # OCR of a page ran past the deadline
    READ_MEMORY = "read_memory"  # the reader needed more memory than it is allowed
    READER_CRASHED = "reader_crashed"  # the reader process died (or could not start)
    DAMAGED_PDF = "damaged_pdf"  # not a readable PDF (or EPUB, XPS, ...: any paged document)
    ENCRYPTED = "encrypted"  # a password is required
    NO_PAGES = "no_pages"  # a document of no pages
    DAMAGED_IMAGE = "damaged_image"  # Pillow could not decode it
    UNREADABLE_IMAGE = "unreadable_image"  # of no format Pillow knows (or too damaged to tell)
    IMAGE_TOO_LARGE = "image_too_large"  # over the decompression-bomb pixel limit
    GZIP_BOMB = "gzip_bomb"  # decompresses to more than the limit
    NOT_GZIP = "not_gzip"  # a .gz that is not gzip data
    EMPTY_FILE = "empty_file"  # no bytes (or none once decompressed)
    SPARSE_FILE = "sparse_file"  # mostly holes
    TOO_LARGE = "too_large"  # over the size limit of its type
    NOT_REGULAR = "not_regular"  # a pipe, socket, device, ... where a file was
    RENDER_FAILED = "render_failed"  # a page could not be rendered
    NOT_MOUNTED = "not_mounted"  # a folder that was a mount point when indexed, not mounted now
    LINK_LOOP = "link_loop"  # a symbolic link loop
    DANGLING_LINK = "dangling_link"  # a symbolic link to nothing
    TOO_DEEP = "too_deep"  # a folder past defaults.MAX_DIRECTORY_DEPTH
    UNLISTED_FOLDER = "unlisted_folder"  # a folder whose entries cannot be listed
    PARTLY_READABLE = "partly_readable"  # a damaged PDF, indexed as far as readable (status 'indexed')
    UNREADABLE = "unreadable"  # anything else (detail: the sentence)

    def __str__(self) -> str:
        return self.value


# Each code's fixed words and how a reason is recognised: (code, prefix, what the rest holds).
# skip_words(code, detail) == prefix + detail, so the line users read is kept exactly.
_PREFIXES: list[tuple[Skip, str, str | None]] = [
    (Skip.OCR_TIMEOUT, "took longer than ", " to OCR"),
    (Skip.RENDER_TIMEOUT, "took longer than ", " to render"),
    (Skip.READ_TIMEOUT, "took longer than ", None),
    (Skip.READ_MEMORY, "needs more than ", None),
    (Skip.READER_CRASHED, "crashed the reader", None),
    (Skip.UNREADABLE_IMAGE, "not a readable image", None),
    (Skip.DAMAGED_PDF, "not a readable ", None),
    (Skip.ENCRYPTED, "encrypted ", None),
    (Skip.DAMAGED_IMAGE, "damaged image", None),
    (Skip.PARTLY_READABLE, "damaged PDF", None),
    (Skip.IMAGE_TOO_LARGE, "image ", " megapixel safety limit"),
    (Skip.GZIP_BOMB, "decompresses to more than ", None),
    (Skip.EMPTY_FILE, "empty file", None),
    (Skip.SPARSE_FILE, "sparse file ", None),
    (Skip.TOO_LARGE, "file of ", None),
    (Skip.NOT_REGULAR, "not a regular file", None),
    (Skip.RENDER_FAILED, "cannot render page ", None),
    (Skip.NOT_MOUNTED, "was a mounted file system when indexed", None),
    (Skip.LINK_LOOP, "symbolic link loop", None),
    (Skip.DANGLING_LINK, "dangling symbolic link", None),
    (Skip.TOO_DEEP, "more than ", " folders deep"),
    (Skip.UNLISTED_FOLDER, "directory cannot be listed", None),
]
_FIXED = {code: prefix for code, prefix, _ in _PREFIXES}
_FIXED[Skip.NOT_GZIP] = "not a readable gzip file"
_FIXED[Skip.NO_PAGES] = ""
_FIXED[Skip.UNREADABLE] = ""


def skip_code(reason: str | None) -> tuple[Skip | None, str | None]:
    """The code and detail of a reason a reader gave (None, None for no reason)."""
    if not reason:
        return None, None
    if reason.startswith(_FIXED[Skip.NOT_GZIP]):
        return Skip.NOT_GZIP, reason[len(_FIXED[Skip.NOT_GZIP]) :] or None
    if reason.endswith(" has no pages"):
        return Skip.NO_PAGES, reason
    for code, prefix, marker in _PREFIXES:
        if reason.startswith(prefix) and (marker is None or marker in reason):
            return code, reason[len(prefix) :] or None
    return Skip.UNREADABLE, reason


def skip_words(code: str | None, detail: str | None) -> str | None:
    """The line a person reads for a stored code and detail (None when there is no code)."""
    if not code:
        return None
    try:
        fixed = _FIXED[Skip(code)]
    except ValueError:  # a code of a later version: say what is known
        return detail or code
    return fixed + (detail or "")


def stored_skip(value: str | None, detail: str | None) -> tuple[str | None, str | None]:
    """``files.reason``/``reason_detail`` as codes: a sentence an older store wrote is mapped
    (prefix match; an unknown one is ``unreadable`` with the sentence as detail)."""
    if not value:
        return None, None
    if value in Skip._value2member_map_:
        return value, detail
    code, found = skip_code(value)
    return str(code), found
