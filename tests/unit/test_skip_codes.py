"""Issue 13: why a file was skipped is stored as a code (store/skips.py), not a sentence."""

from __future__ import annotations

import json
import os
import sqlite3

import pymupdf

from smartcli.store.catalog import Store, reads
from smartcli.store.skips import Skip, skip_code, skip_words
from tests.conftest import copy_store, run_smart
from tests.corpus import make_pdf

# Reasons the readers give today (each path that skips a file), and the code each is stored as.
REASONS = {
    "took longer than 60 s to read": Skip.READ_TIMEOUT,
    "took longer than 2 s to render page 1": Skip.RENDER_TIMEOUT,
    "took longer than 5 s to OCR page 1": Skip.OCR_TIMEOUT,
    "needs more than 2048 MB of memory to read": Skip.READ_MEMORY,
    "crashed the reader (SIGSEGV)": Skip.READER_CRASHED,
    "crashed the reader (exit status 1)": Skip.READER_CRASHED,
    "not a readable PDF (no PDF structure could be found or repaired)": Skip.DAMAGED_PDF,
    "not a readable EPUB file": Skip.DAMAGED_PDF,
    "encrypted PDF (a password is required)": Skip.ENCRYPTED,
    "PDF has no pages": Skip.NO_PAGES,
    "damaged image (image file is truncated)": Skip.DAMAGED_IMAGE,
    "not a readable image (unknown or damaged format)": Skip.UNREADABLE_IMAGE,
    "image is 10000x10000 (100 megapixels), over the 89 megapixel safety limit against decompression bombs": Skip.IMAGE_TOO_LARGE,
    "image larger than the 89 megapixel safety limit against decompression bombs": Skip.IMAGE_TOO_LARGE,
    "decompresses to more than 512 MB (refused as a possible decompression bomb)": Skip.GZIP_BOMB,
    "not a readable gzip file (Not a gzipped file (b'%P'))": Skip.NOT_GZIP,
    "empty file": Skip.EMPTY_FILE,
    "empty file (once decompressed)": Skip.EMPTY_FILE,
    "sparse file (20.0 GB long, 0 bytes of it on disk): mostly holes, not a document; not read": Skip.SPARSE_FILE,
    "file of 2.0 GB, over the 1.0 GB limit for a pdf file; not read": Skip.TOO_LARGE,
    "not a regular file (a named pipe)": Skip.NOT_REGULAR,
    "cannot render page 3: broken stream": Skip.RENDER_FAILED,
    "damaged PDF, repaired on reading; indexed what was readable (1 of 2 pages have text)": Skip.PARTLY_READABLE,
    "was a mounted file system when indexed and that file system is not mounted there now; its files stay in the index": Skip.NOT_MOUNTED,
    "symbolic link loop (too many levels of symbolic links)": Skip.LINK_LOOP,
    "more than 256 folders deep; not searched": Skip.TOO_DEEP,
    "directory cannot be listed (permission denied)": Skip.UNLISTED_FOLDER,
    "permission denied": Skip.UNREADABLE,
}


def test_every_reason_has_a_code_and_its_words_are_the_same_line():
    for reason, code in REASONS.items():
        found, detail = skip_code(reason)
        assert found == code, reason
        assert skip_words(str(found), detail) == reason
    assert skip_code(None) == (None, None)
    assert skip_words("a_code_of_a_later_version", None) == "a_code_of_a_later_version"


def _codes(store) -> dict[str, tuple]:
    with sqlite3.connect(store / "catalog.sqlite") as conn:
        rows = conn.execute("SELECT path, status, reason, reason_detail FROM files").fetchall()
    return {os.path.basename(os.fsdecode(p)): (s, r, d) for p, s, r, d in rows}


def test_each_skipped_file_is_stored_as_a_code_and_worded_as_before(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "good.pdf", ["sourdough starter feeding schedule"])
    (docs / "empty.pdf").write_bytes(b"")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\n this is not really a pdf")
    (docs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (docs / "plain.pdf.gz").write_bytes(b"%PDF-1.4 not gzip at all")
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret text")
    doc.save(docs / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="pw")
    store = tmp_path / "store"
    result = run_smart("index", docs, "--store", store, "--ocr", "never", "--json")
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)
    expected = {
        "empty.pdf": Skip.EMPTY_FILE,
        "broken.pdf": Skip.DAMAGED_PDF,
        "broken.png": Skip.UNREADABLE_IMAGE,  # "not a readable image (unknown or damaged format)"
        "plain.pdf.gz": Skip.NOT_GZIP,
        "locked.pdf": Skip.ENCRYPTED,
    }
    shown = {os.path.basename(s["path"]): s for s in summary["skipped"]}
    assert {name: s["code"] for name, s in shown.items()} == {name: str(code) for name, code in expected.items()}
    stored = _codes(store)
    assert stored["good.pdf"] == ("indexed", None, None)
    for name, code in expected.items():
        status, reason, detail = stored[name]
        assert (status, reason) == ("skipped", str(code)), name
        assert skip_words(reason, detail) == shown[name]["reason"]  # the line users read, unchanged
        assert f"smart: skipped {docs / name}: {shown[name]['reason']}" in result.stderr
    assert shown["empty.pdf"]["reason"] == "empty file" and shown["locked.pdf"]["reason"] == "encrypted PDF (a password is required)"

    status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    assert {os.path.basename(s["path"]): (s["code"], s["reason"]) for s in status["skipped"]} == {
        name: (s["code"], s["reason"]) for name, s in shown.items()
    }


def test_a_store_of_older_sentences_is_given_codes_on_a_writers_open(sample_store, tmp_path):
    store = tmp_path / "store"
    copy_store(sample_store[0], store)
    old = {
        "/old/a-bomb.pdf": "took longer than 10 s to read",
        "/old/bomb.pdf.gz": "decompresses to more than 512 MB (refused as a possible decompression bomb)",
        "/old/empty.pdf": "empty file",
        "/old/odd.pdf": "some sentence no version wrote",
    }
    with sqlite3.connect(store / "catalog.sqlite") as conn:
        conn.execute("ALTER TABLE files DROP COLUMN reason_detail")  # as an older version left it
        for path, sentence in old.items():
            conn.execute(
                "INSERT INTO files(path, kind, size, mtime_ns, sha256, status, reason, indexed_at) VALUES (?, 'pdf', 1, 1, 'x', 'skipped', ?, 0)",
                (path.encode(), sentence),
            )
    # A reader does not write: it words the sentences as they are.
    reader = Store.open(store)
    assert {f["path"]: f["reason"] for f in reads.files(reader) if f["status"] == "skipped"} == old
    reader.close()

    writer = Store.open_for_writing(store)
    words = {f["path"]: (f["code"], f["reason"]) for f in reads.files(writer) if f["status"] == "skipped"}
    writer.close()
    assert words == {
        "/old/a-bomb.pdf": ("read_timeout", old["/old/a-bomb.pdf"]),
        "/old/bomb.pdf.gz": ("gzip_bomb", old["/old/bomb.pdf.gz"]),
        "/old/empty.pdf": ("empty_file", "empty file"),
        "/old/odd.pdf": ("unreadable", "some sentence no version wrote"),
    }
    stored = _codes(store)
    assert stored["a-bomb.pdf"] == ("skipped", "read_timeout", "10 s to read")
    assert stored["empty.pdf"] == ("skipped", "empty_file", None)
    assert stored["odd.pdf"] == ("skipped", "unreadable", "some sentence no version wrote")
    assert all(r is None or r in {s.value for s in Skip} for _, r, _ in stored.values())
    # Opening again changes nothing more (idempotent).
    Store.open_for_writing(store).close()
    assert _codes(store) == stored
