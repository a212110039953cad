"""Looking at indexed pages: pictures of them, and where on them the matched words are.

A page is drawn from its file (PyMuPDF for PDF pages, Pillow for images) at a given width.
Matched tokens are character spans in the page text the store holds (the normalized text
layer, or the OCR text); :func:`page_words` reads the same page's words with their boxes
(PyMuPDF's ``get_text("words")``, or the OCR engine's words for a page whose text came from
OCR) and lines them up with that text, so that each span maps to the boxes of its words.
Boxes are fractions of the page's width and height (``[x0, y0, x1, y1]`` in 0..1), so they
fit a picture of any size.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from smartcli.ingest.files import UnreadableFile, open_pdf
from smartcli.ingest.render import load_image

# The largest picture of a page drawn for viewing, in pixels (a page view is far smaller).
MAX_VIEW_PIXELS = 16_000_000
# PDFs kept open between views: opening a large manual costs far more than drawing a page of it.
OPEN_DOCUMENTS = 8
_open_documents: OrderedDict = OrderedDict()  # (path, size, mtime_ns) -> document
_documents_lock = threading.RLock()


@contextlib.contextmanager
def _pdf(path: str):
    """The PDF at ``path``, from the few kept open while the file is unchanged (MuPDF documents
    are used by one thread at a time: the lock is held while the caller reads it)."""
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    with _documents_lock:
        doc = _open_documents.pop(key, None)
        if doc is None:
            doc = open_pdf(path)
        _open_documents[key] = doc
        while len(_open_documents) > OPEN_DOCUMENTS:
            _, old = _open_documents.popitem(last=False)
            old.close()
        yield doc


@dataclass(frozen=True)
class WordBox:
    """A word of the page text (``start``..``end`` in it) and its box as fractions of the page."""

    start: int
    end: int
    box: tuple[float, float, float, float]


def render_png(path: str, kind: str, page: int, width: int) -> tuple[bytes, int, int]:
    """Page ``page`` of the PDF (or the image) at ``path`` drawn ``width`` pixels wide, as PNG.

    Returns the PNG bytes and the picture's width and height. Raises :class:`UnreadableFile`.
    """
    from PIL import Image

    if kind == "pdf":
        import pymupdf

        with _pdf(path) as doc:
            if not 1 <= page <= doc.page_count:
                raise UnreadableFile(f"the file has no page {page} any more")
            rect = doc[page - 1].rect
            zoom = width / max(rect.width, 1e-6)
            zoom = min(zoom, (MAX_VIEW_PIXELS / max(rect.width * rect.height, 1e-6)) ** 0.5)
            try:
                pixmap = doc[page - 1].get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
            except Exception as exc:  # MuPDF raises several types for broken pages
                raise UnreadableFile(f"cannot render page {page}: {exc}") from None
            image = Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
    else:
        image = load_image(path, MAX_VIEW_PIXELS)
    if image.width != width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue(), image.width, image.height


def picture_size(path: str, kind: str, page: int) -> tuple[float, float]:
    """The page's width and height (points for a PDF page, pixels upright for an image)."""
    if kind == "pdf":
        with _pdf(path) as doc:
            rect = doc[page - 1].rect
            return rect.width, rect.height
    image = load_image(path, MAX_VIEW_PIXELS)
    return float(image.width), float(image.height)


def page_words(path: str, kind: str, page: int, text: str, ocr_language: str | None = None, tessdata: str | None = None) -> list[WordBox]:
    """The words of ``text`` (the page text the store holds) with their boxes on the page.

    ``ocr_language`` set: the text came from OCR, and the page is read again by the OCR engine
    (as indexing read it) for its word boxes. Words the layout and the text do not share
    (rare: a text layer that changed its mind between two readings) get no box.
    """
    if not text:
        return []
    if ocr_language is not None:
        raw, width, height = _ocr_words(path, kind, page, ocr_language, tessdata)
    elif kind == "pdf":
        raw, width, height = _pdf_words(path, page)
    else:
        return []
    return align_words(text, raw, width, height)


def _pdf_words(path: str, page: int):
    with _pdf(path) as doc:
        pdf_page = doc[page - 1]
        words = pdf_page.get_text("words")
        rect = pdf_page.rect
        rotation = pdf_page.rotation_matrix if pdf_page.rotation else None
        raw = []
        for x0, y0, x1, y1, word, *_ in words:
            box = (x0, y0, x1, y1)
            if rotation is not None:
                import pymupdf

                r = pymupdf.Rect(box) * rotation
                box = (r.x0, r.y0, r.x1, r.y1)
            raw.append((word, box))
        return raw, rect.width, rect.height


def _ocr_words(path: str, kind: str, page: int, language: str, tessdata: str | None):
    """The OCR engine's words of the page, read as indexing read it (same pictures, same engine)."""
    import pymupdf

    from smartcli.ingest.ocr import OcrJob, _image_pixmap, _pdf_page_pixmap, find_tessdata

    tessdata = tessdata or find_tessdata(language.split("+"))
    if tessdata is None:
        return [], 1.0, 1.0
    if kind == "pdf":
        pixmap = _pdf_page_pixmap(OcrJob(path=path, kind=kind, page=page, language=language, tessdata=tessdata, only_if_pictured=False))
    else:
        pixmap = _image_pixmap(path)
    data = pixmap.pdfocr_tobytes(compress=False, language=language, tessdata=tessdata)
    with pymupdf.open("pdf", data) as doc:
        rect = doc[0].rect
        return [(w[4], tuple(w[:4])) for w in doc[0].get_text("words")], rect.width, rect.height


_WORD = re.compile(r"\S+")


def align_words(text: str, raw: list, width: float, height: float) -> list[WordBox]:
    """Line up the layout's words ``raw`` (``(word, (x0, y0, x1, y1))``) with the words of
    ``text`` and give each its box. The layout's words are cleaned as the store normalizes
    text layers (soft hyphens dropped, split on any whitespace)."""
    width, height = max(width, 1e-6), max(height, 1e-6)
    layout = []
    for word, box in raw:
        cleaned = word.replace("\u00ad", "")
        for piece in cleaned.split():
            layout.append((piece, box))
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    boxes = []
    left = [w for _, _, w in words]
    right = [w for w, _ in layout]
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            start, end, _ = words[block.a + offset]
            x0, y0, x1, y1 = layout[block.b + offset][1]
            boxes.append(WordBox(start, end, _fraction(x0, y0, x1, y1, width, height)))
    return boxes


def _fraction(x0, y0, x1, y1, width, height) -> tuple[float, float, float, float]:
    clip = lambda v: min(1.0, max(0.0, v))  # noqa: E731
    return (round(clip(x0 / width), 5), round(clip(y0 / height), 5), round(clip(x1 / width), 5), round(clip(y1 / height), 5))


def boxes_of_span(words: list[WordBox], span: tuple[int, int]) -> list[tuple[float, float, float, float]]:
    """Boxes of the words the character span ``span`` touches (a sub-word token boxes its word)."""
    start, end = span
    if end <= start:
        end = start + 1
    return [w.box for w in words if w.start < end and start < w.end]


def patch_grid(family: str, n_patches: int, width: float, height: float) -> dict | None:
    """Where a pixel model's patches lie on a picture ``width`` x ``height``.

    Returns ``rows``, ``cols`` (row-major patch order) and ``region``, the part of the
    picture the grid covers as fractions: CLIP centre-crops a square after resizing the
    shorter side; SigLIP squashes the whole picture into its square; Qwen-VL and SigLIP 2
    NaFlex keep the aspect ratio, so the grid is the factor pair of ``n_patches`` closest to it.
    None when no grid fits.
    """
    if n_patches <= 0 or width <= 0 or height <= 0:
        return None
    side = int(round(n_patches**0.5))
    if family in ("clip", "siglip"):
        if side * side != n_patches:
            return None
        if family == "clip":
            short = min(width, height)
            fx, fy = short / width, short / height
            region = ((1 - fx) / 2, (1 - fy) / 2, (1 + fx) / 2, (1 + fy) / 2)
        else:
            region = (0.0, 0.0, 1.0, 1.0)
        return {"rows": side, "cols": side, "region": [round(v, 5) for v in region]}
    aspect = height / width
    best = None
    for rows in range(1, n_patches + 1):
        if n_patches % rows:
            continue
        cols = n_patches // rows
        error = abs(_log(rows / cols) - _log(aspect))
        if best is None or error < best[0]:
            best = (error, rows, cols)
    return {"rows": best[1], "cols": best[2], "region": [0.0, 0.0, 1.0, 1.0]}


def _log(x: float) -> float:
    import math

    return math.log(max(x, 1e-9))
