"""A store written by schema 1 (English sentences in items.note) is upgraded in place on open."""

import shutil
import sqlite3
from pathlib import Path

import pytest

from smartcli import Index, Note
from smartcli.store.catalog import Store, reads
from smartcli.store.catalog.schema import SCHEMA_VERSION
from smartcli.store.notes import schema1_note

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "schema1"
FIXTURE_ROOT = "/tmp/fx/corpus"  # where the fixture's corpus was when it was indexed


def schema1_copy(tmp_path) -> tuple[Path, Path]:
    """The fixture store and its corpus, copied, with the store's paths pointed at the copy."""
    store, corpus = tmp_path / "store", tmp_path / "corpus"
    shutil.copytree(FIXTURE / "store", store)
    shutil.copytree(FIXTURE / "corpus", corpus)
    with sqlite3.connect(store / "catalog.sqlite") as conn:
        for file_id, path in conn.execute("SELECT id, path FROM files").fetchall():
            new = bytes(path).replace(FIXTURE_ROOT.encode(), str(corpus).encode())
            conn.execute("UPDATE files SET path = ? WHERE id = ?", (new, file_id))
        conn.execute("UPDATE meta SET value = ? WHERE key = 'roots'", (f'["{corpus}"]',))
    return store, corpus


def catalog_rows(store: Path, sql: str):
    with sqlite3.connect(store / "catalog.sqlite") as conn:
        return conn.execute(sql).fetchall()


def test_the_fixture_is_a_schema_1_store_with_sentences(tmp_path):
    store, _ = schema1_copy(tmp_path)
    assert catalog_rows(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]
    notes = {row[0] for row in catalog_rows(store, "SELECT note FROM items WHERE note IS NOT NULL")}
    assert notes == {"image: no text for a text model", "page has no text layer"}


def test_opening_for_reading_migrates_notes_to_codes_and_keeps_everything_else(tmp_path):
    store, _ = schema1_copy(tmp_path)
    before = catalog_rows(store, "SELECT file_id, page, segment, row, n_tokens, text FROM items ORDER BY id")
    index = Index.open(store)
    status = index.status()
    assert status.not_encoded == {Note.IMAGE_WITHOUT_TEXT.value: 1, Note.NO_TEXT_LAYER.value: 1}
    assert status.healthy and status.encoded_items == 3
    hits = index.search("repotting ferns", k=1)
    assert hits[0].path.endswith("with-blank-page.pdf") and hits[0].page == 1
    assert catalog_rows(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert catalog_rows(store, "SELECT file_id, page, segment, row, n_tokens, text FROM items ORDER BY id") == before
    assert {r[0] for r in catalog_rows(store, "SELECT note FROM items WHERE note IS NOT NULL")} == {
        Note.IMAGE_WITHOUT_TEXT.value,
        Note.NO_TEXT_LAYER.value,
    }


def test_an_index_run_on_a_migrated_store_encodes_nothing_again(tmp_path):
    store, corpus = schema1_copy(tmp_path)
    summary = Index.open(store).update([corpus], ocr="never")
    assert (summary.added, summary.updated, summary.pages_encoded, summary.unchanged) == (0, 0, 0, 3)
    with Store.open(store) as opened:
        # Files whose text-less pages OCR could read are found by the notes' codes.
        assert reads.paths_awaiting_ocr(opened, [Note.IMAGE_WITHOUT_TEXT, Note.NO_TEXT_LAYER]) == {
            str(corpus / "sunset.png"),
            str(corpus / "with-blank-page.pdf"),
        }


@pytest.mark.parametrize(
    "sentence, code, detail",
    [
        ("image: no text for a text model", Note.IMAGE_WITHOUT_TEXT, None),
        ("page has no text layer", Note.NO_TEXT_LAYER, None),
        ("OCR language data missing", Note.OCR_MISSING_LANGUAGE, None),
        ("OCR found no text", Note.OCR_NO_TEXT, None),
        ("OCR failed: tesseract crashed", Note.OCR_FAILED, "tesseract crashed"),
        ("cannot extract text: broken stream", Note.PAGE_UNREADABLE, "broken stream"),
        ("cannot render page 3: bad xref", Note.PAGE_UNREADABLE, "cannot render page 3: bad xref"),
    ],
)
def test_every_schema_1_sentence_has_a_code(sentence, code, detail):
    assert schema1_note(sentence) == (code, detail)
