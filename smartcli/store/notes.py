"""Why a page has no vectors: the stable codes stored in ``items.note``.

The catalog stores these codes (and, in ``items.note_detail``, a library's own message where
there is one); people read the presenter's wording of them.
"""

from __future__ import annotations

import enum


class Note(str, enum.Enum):
    IMAGE_WITHOUT_TEXT = "image_without_text"  # an image, indexed by a model that reads text
    NO_TEXT_LAYER = "no_text_layer"  # a PDF page with no usable text layer
    BLANK_PAGE = "blank_page"  # no words in its text layer and no picture (image, vector path) for OCR to read
    OCR_PENDING = "ocr_pending"  # queued for OCR; never committed
    OCR_MISSING_LANGUAGE = "ocr_missing_language"  # OCR could not run: language data missing
    OCR_NO_TEXT = "ocr_no_text"  # OCR ran and found no text
    OCR_UNREADABLE = "ocr_unreadable"  # OCR ran and found no readable text (marks on a photo, glyph boxes)
    OCR_FAILED = "ocr_failed"  # OCR failed on the page (detail: why)
    PAGE_UNREADABLE = "page_unreadable"  # the page could not be read or rendered (detail: why)

    def __str__(self) -> str:
        return self.value


# Notes of text-less pages OCR never looked at: their files are read again once OCR can run.
AWAITING_OCR = (Note.IMAGE_WITHOUT_TEXT, Note.NO_TEXT_LAYER, Note.OCR_MISSING_LANGUAGE)

# Schema 1 stored sentences; the migration to schema 2 maps them to codes.
SCHEMA1_NOTES = {
    "image: no text for a text model": Note.IMAGE_WITHOUT_TEXT,
    "page has no text layer": Note.NO_TEXT_LAYER,
    "OCR language data missing": Note.OCR_MISSING_LANGUAGE,
    "OCR found no text": Note.OCR_NO_TEXT,
}
SCHEMA1_PREFIXES = {"OCR failed: ": Note.OCR_FAILED, "cannot extract text: ": Note.PAGE_UNREADABLE}


def schema1_note(sentence: str) -> tuple[Note, str | None]:
    """The code (and detail) of a note a schema-1 store wrote."""
    if sentence in SCHEMA1_NOTES:
        return SCHEMA1_NOTES[sentence], None
    for prefix, note in SCHEMA1_PREFIXES.items():
        if sentence.startswith(prefix):
            return note, sentence[len(prefix) :]
    if sentence == "OCR failed":
        return Note.OCR_FAILED, None
    return Note.PAGE_UNREADABLE, sentence
