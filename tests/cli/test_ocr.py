"""OCR through PyMuPDF's built-in Tesseract: real language data, real worker processes."""

import json

import pymupdf
import pytest

from smartcli.errors import OptionError
from smartcli.ingest.ocr import OcrJob, OcrRunner, OcrSettings, find_tessdata, recognize, resolve_settings
from smartcli.store.catalog import FileRecord, PageRecord
from smartcli.store.notes import Note
from tests.conftest import run_smart

TESSDATA = find_tessdata(["eng"])
needs_language_data = pytest.mark.skipif(
    not OcrSettings(tessdata=TESSDATA).available,
    reason="Tesseract's English language data is not installed (apt-get install tesseract-ocr-eng)",
)

SCANNED = "The lighthouse keeper writes every passing freighter into a leather notebook."
PICTURED = "Quarterly budget meeting moved to Thursday afternoon in room nine."


def text_pixmap(text, alpha=False, size=(420, 150)):
    """A 150 dpi picture of ``text`` (transparent background when ``alpha``)."""
    doc = pymupdf.open()
    page = doc.new_page(width=size[0], height=size[1])
    page.insert_textbox(pymupdf.Rect(20, 20, size[0] - 20, size[1] - 20), text, fontsize=15, fontname="helv")
    return page.get_pixmap(dpi=150, alpha=alpha)


def write_image_only_pdf(path, texts, size=(420, 150)):
    """A PDF whose pages are pictures of ``texts``: no text layer at all."""
    doc = pymupdf.open()
    for text in texts:
        page = doc.new_page(width=size[0], height=size[1])
        page.insert_image(page.rect, pixmap=text_pixmap(text, size=size))
    doc.save(path)
    assert all(not p.get_text().strip() for p in pymupdf.open(path))


def write_png(path, text, alpha=False):
    text_pixmap(text, alpha=alpha).save(path)


@pytest.fixture()
def scans(tmp_path):
    corpus = tmp_path / "scans"
    corpus.mkdir()
    write_image_only_pdf(corpus / "scanned-letter.pdf", [SCANNED])
    write_png(corpus / "whiteboard.png", PICTURED, alpha=True)
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "A born-digital page about sourdough starters, flour and water, fed once a day.")
    doc.save(corpus / "digital.pdf")
    return corpus


def search_top_files(store, queries):
    lines = "\n".join(json.dumps({"qid": str(i), "query": q}) for i, q in enumerate(queries))
    result = run_smart("search", "--queries", "-", "--store", store, "-k", "1", input=lines, check=True)
    return [(r["results"][0]["file"], r["results"][0]["page"]) for r in map(json.loads, result.stdout.splitlines())]


@needs_language_data
def test_scanned_page_and_picture_of_text_are_found_by_their_words(scans, tmp_path):
    (scans / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    store = tmp_path / "store"
    result = run_smart("index", scans, "--store", store, "--json")
    assert result.returncode == 3, result.stderr  # the broken image is skipped, the rest indexed
    summary = json.loads(result.stdout)
    assert summary["added"] == 3 and summary["pages_encoded"] == 3
    assert summary["ocr"]["attempted"] == 2 and summary["ocr"]["pages"] == 2  # the born-digital page is not OCR'd
    (skipped,) = summary["skipped"]
    assert skipped["path"].endswith("broken.jpg")
    assert [line for line in result.stderr.splitlines() if "broken.jpg" in line] == [
        f"smart: skipped {skipped['path']}: {skipped['reason']}"
    ]
    assert "Traceback" not in result.stderr

    assert search_top_files(store, ["lighthouse keeper freighter notebook", "when is the budget meeting"]) == [
        ("scanned-letter.pdf", 1),
        ("whiteboard.png", 1),
    ]
    status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    assert status["ocr"] == {
        "pages": 2,
        "by_language": {"eng": 2},
        "missing_language_data": 0,
        "nothing_found": 0,
        "unreadable": 0,
        "attempted": 2,
    }

    again = json.loads(run_smart("index", scans, "--store", store, "--json").stdout)
    assert again["unchanged"] == 3 and again["ocr"]["attempted"] == 0  # OCR text is kept, not redone


@needs_language_data
def test_missing_language_data_is_said_once_and_pages_wait_for_it(scans, tmp_path):
    empty = tmp_path / "no-tessdata"
    empty.mkdir()
    store = tmp_path / "store"
    result = run_smart("index", scans, "--store", store, "--json", env={"TESSDATA_PREFIX": str(empty)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    hint = [line for line in result.stderr.splitlines() if "language data" in line]
    assert len(hint) == 1 and "tesseract-ocr-eng" in hint[0] and str(empty) in hint[0], result.stderr
    summary = json.loads(result.stdout)
    assert summary["added"] == 3 and summary["pages_encoded"] == 1
    assert summary["not_encoded"] == {Note.OCR_MISSING_LANGUAGE.value: 2}
    status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    assert status["ocr"]["missing_language_data"] == 2 and status["ocr"]["pages"] == 0

    # Once the data is there, the next run reads the waiting pages without being told to.
    fixed = json.loads(run_smart("index", scans, "--store", store, "--json", check=True).stdout)
    assert fixed["updated"] == 2 and fixed["unchanged"] == 1 and fixed["ocr"]["pages"] == 2
    assert fixed["pages_encoded"] == 2 and fixed["not_encoded"] == {}


@needs_language_data
def test_auto_reads_only_pages_without_a_usable_text_layer_and_always_reads_all(tmp_path):
    path = tmp_path / "mixed.pdf"
    layers = ["A page with a real text layer. " * 4, "p. 2", "Chapter 3 Arrays"]
    doc = pymupdf.open()
    page = doc.new_page(width=420, height=300)
    page.insert_textbox(pymupdf.Rect(20, 20, 400, 280), layers[0], fontsize=12)
    page = doc.new_page(width=420, height=150)
    page.insert_image(page.rect, pixmap=text_pixmap(SCANNED))
    page.insert_text((380, 145), layers[1], fontsize=6)  # a stamp on a scan: text layer nearly empty
    doc.new_page(width=420, height=150).insert_text((20, 40), layers[2], fontsize=14)  # a title page: short, no picture
    doc.save(path)

    def record():
        return FileRecord(str(path), "pdf", 1, 1, None, [PageRecord(i + 1, text, None) for i, text in enumerate(layers)])

    auto, always, never = record(), record(), record()
    with OcrRunner(OcrSettings("auto", tessdata=TESSDATA, workers=1)) as runner:
        assert runner.claim(auto) == 2  # the scan, and the title page to check for a picture
        runner.fill()
    assert runner.stats.attempted == 1 and runner.stats.pages == 1
    assert [p.ocr for p in auto.pages] == [None, "eng", None] and [p.note for p in auto.pages] == [None, None, None]
    assert "lighthouse keeper" in auto.pages[1].text and auto.pages[2].text == layers[2]
    with OcrRunner(OcrSettings("always", tessdata=TESSDATA, workers=2)) as runner:
        assert runner.claim(always) == 3
        runner.fill()
    assert [p.ocr for p in always.pages] == ["eng"] * 3 and "real text layer" in always.pages[0].text
    with OcrRunner(OcrSettings("never", tessdata=TESSDATA)) as runner:
        assert runner.claim(never) == 0
    assert [p.note for p in never.pages] == [None, None, None]


def test_an_image_broken_after_the_check_is_an_error_not_a_crash(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n and then nothing")
    result = recognize(OcrJob(str(tmp_path / "broken.png"), "image", 1, "eng", TESSDATA or str(tmp_path)))
    assert result.text == "" and result.error.startswith("not a readable image")


@needs_language_data
def test_images_on_transparent_backgrounds_are_read(tmp_path):
    # Dropping the alpha channel of black text on transparent black would leave a black picture.
    write_png(tmp_path / "sticker.png", PICTURED, alpha=True)
    result = recognize(OcrJob(str(tmp_path / "sticker.png"), "image", 1, "eng", TESSDATA))
    assert result.error is None and "budget meeting" in result.text


def test_textless_pages_wait_when_language_data_is_missing(tmp_path):
    record = FileRecord("/x/photo.png", "image", 1, 1, None, [PageRecord(1, None, None, Note.IMAGE_WITHOUT_TEXT)])
    scan = FileRecord("/x/scan.pdf", "pdf", 1, 1, None, [PageRecord(1, None, None, Note.NO_TEXT_LAYER), PageRecord(2, "short", None)])
    settings = OcrSettings("auto", tessdata=str(tmp_path))
    assert settings.missing_languages == ["eng"] and not settings.available
    with OcrRunner(settings) as runner:
        assert runner.claim(record) == 0 and runner.claim(scan) == 0
    assert [p.note for p in record.pages + scan.pages] == [Note.OCR_MISSING_LANGUAGE, Note.OCR_MISSING_LANGUAGE, None]
    assert runner.stats.missing_data == 2


def test_options_are_checked_and_tessdata_prefix_wins(tmp_path, monkeypatch):
    assert resolve_settings("auto", "eng+deu").language == "eng+deu"
    with pytest.raises(OptionError, match="must be one of") as bad_mode:
        resolve_settings("sometimes", "eng")
    assert bad_mode.value.option == "ocr"
    with pytest.raises(OptionError, match="Tesseract language codes") as bad_language:
        resolve_settings("auto", "eng; rm -rf")
    assert bad_language.value.option == "ocr_lang"
    monkeypatch.setenv("TESSDATA_PREFIX", str(tmp_path))
    assert find_tessdata(["eng"]) == str(tmp_path)
