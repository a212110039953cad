"""Pictures of pages and where their words are: word boxes lined up with the stored text
(text layers, OCR), patch grids of pixel models."""

import pymupdf
import pytest

from smartcli.ingest.discovery import normalize_text
from smartcli.ingest.ocr import OcrJob, OcrSettings, find_tessdata, recognize
from smartcli.ingest.pageview import align_words, boxes_of_span, page_words, patch_grid, render_png
from tests.conftest import SAMPLE_CORPUS

TESSDATA = find_tessdata(["eng"])


def text_pdf(path, lines, rotate=0):
    with pymupdf.open() as doc:
        page = doc.new_page(width=400, height=300)
        for i, line in enumerate(lines):
            page.insert_text((40, 60 + 40 * i), line, fontsize=14)
        page.set_rotation(rotate)
        doc.save(path)
    with pymupdf.open(path) as doc:
        return normalize_text(doc[0].get_text("text"))


def box_of(words, text, word):
    start = text.index(word)
    (box,) = boxes_of_span(words, (start, start + 2))  # a sub-word token boxes its whole word
    return box


def holds(path, box, word, page=0):
    with pymupdf.open(path) as doc:
        p = doc[page]
        if p.rotation:
            return None
        r = p.rect
        return p.get_textbox(pymupdf.Rect(box[0] * r.width, box[1] * r.height, box[2] * r.width, box[3] * r.height)).strip() == word


def test_words_of_the_stored_text_get_the_boxes_of_the_page_words(tmp_path):
    path = tmp_path / "page.pdf"
    text = text_pdf(path, ["Water the fern weekly,", "and mist its fronds in summer."])
    words = page_words(str(path), "pdf", 1, text)
    assert [text[w.start : w.end] for w in words] == text.split()
    for word in ("fern", "fronds", "summer."):
        assert holds(path, box_of(words, text, word), word)
    assert box_of(words, text, "fern")[3] < box_of(words, text, "fronds")[1]  # first line above the second


def test_a_rotated_page_gets_boxes_in_the_picture_it_is_drawn_as(tmp_path):
    path = tmp_path / "rotated.pdf"
    text = text_pdf(path, ["Water the fern weekly"], rotate=90)
    (x0, y0, x1, y1) = box_of(page_words(str(path), "pdf", 1, text), text, "weekly")
    assert 300 * (x1 - x0) < 400 * (y1 - y0)  # the line runs down the drawn page...
    assert 0.75 < x0 < 0.85  # ...at 300 - 60 points from its left edge (the baseline was 60 from the top)
    png, width, height = render_png(str(path), "pdf", 1, 300)
    assert (width, height) == (300, 400)


def test_alignment_survives_soft_hyphens_and_words_the_two_readings_do_not_share():
    raw = [("inter\u00ad", (0, 0, 10, 10)), ("national", (0, 10, 10, 20)), ("ghost", (0, 20, 10, 30)), ("end", (0, 30, 10, 40))]
    text = "inter national end"
    words = align_words(text, raw, 10, 40)
    assert [(text[w.start : w.end], w.box) for w in words] == [
        ("inter", (0, 0, 1, 0.25)),
        ("national", (0, 0.25, 1, 0.5)),
        ("end", (0, 0.75, 1, 1)),
    ]
    assert boxes_of_span(words, (2, 9)) == [(0, 0, 1, 0.25), (0, 0.25, 1, 0.5)]  # a span across two words boxes both


@pytest.mark.skipif(not OcrSettings(tessdata=TESSDATA).available, reason="Tesseract's English language data is not installed")
def test_a_picture_of_text_gets_the_ocr_word_boxes():
    note = str(SAMPLE_CORPUS / "photos" / "note.jpg")  # two lines of text on a 400 x 160 picture
    text = recognize(OcrJob(note, "image", 1, "eng", TESSDATA)).text
    words = page_words(note, "image", 1, text, ocr_language="eng")
    assert len(words) == len(text.split())
    flour, bike = box_of(words, text, "flour"), box_of(words, text, "bike")
    assert flour[3] < bike[1] and 30 / 160 - 0.05 < flour[1] < 30 / 160 + 0.1 and 70 / 160 - 0.05 < bike[1] < 70 / 160 + 0.1


def test_patch_grids_follow_each_family_s_preprocessing():
    # CLIP resizes the shorter side and crops the middle square.
    assert patch_grid("clip", 49, 200, 100) == {"rows": 7, "cols": 7, "region": [0.25, 0.0, 0.75, 1.0]}
    assert patch_grid("clip", 48, 200, 100) is None
    # SigLIP squashes the whole picture into its square.
    assert patch_grid("siglip", 16, 300, 100) == {"rows": 4, "cols": 4, "region": [0.0, 0.0, 1.0, 1.0]}
    # Qwen-VL and NaFlex keep the aspect: the factor pair nearest to it.
    assert patch_grid("qwen3_vl", 24, 600, 400) == {"rows": 4, "cols": 6, "region": [0.0, 0.0, 1.0, 1.0]}
    assert patch_grid("siglip2", 12, 100, 300) == {"rows": 6, "cols": 2, "region": [0.0, 0.0, 1.0, 1.0]}
