"""Documents beside PDF (EPUB, XPS, CBZ, FB2, MOBI, SVG, gzipped ones), read as the indexer reads
them: in the sandboxed reader's worker process, from real files written in the test."""

import gzip
import random
from collections import Counter

import pytest

from smartcli import defaults
from smartcli.ingest import discovery
from smartcli.ingest.discovery import SourceFile, discover, kind_of, read_document, suffix_of
from smartcli.ingest.files import UnreadableFile, document_suffix
from smartcli.ingest.sandbox import SandboxedReader
from tests.formats import write_cbz, write_epub, write_fb2, write_gzip_bomb, write_mobi, write_pdf_gz, write_svg, write_xps

LIGHTHOUSE = "A lighthouse keeper trims the lamp wick every evening."
FOG = "The fog horn sounds twice across the harbour."


def _source(path):
    st = path.stat()
    return SourceFile(str(path), kind_of(str(path)), st.st_size, st.st_mtime_ns)


@pytest.fixture(scope="module")
def reader():
    with SandboxedReader() as r:
        yield r


WRITERS = {
    "book.epub": lambda p: write_epub(p, [LIGHTHOUSE, FOG]),
    "report.xps": lambda p: write_xps(p, [LIGHTHOUSE, FOG]),
    "story.fb2": lambda p: write_fb2(p, [LIGHTHOUSE, FOG]),
    "novel.mobi": lambda p: write_mobi(p, [LIGHTHOUSE, FOG]),
    "drawing.svg": lambda p: write_svg(p, LIGHTHOUSE),
    "manual.pdf.gz": lambda p: write_pdf_gz(p, [LIGHTHOUSE, FOG]),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_each_document_type_is_read_in_the_sandbox_with_its_text(tmp_path, reader, name):
    path = WRITERS[name](tmp_path / name)
    assert kind_of(str(path)) == "pdf"  # a paged document
    document = reader.read(_source(path))
    text = " ".join(page.text for page in document.pages)
    assert "lighthouse keeper trims the lamp wick" in text
    assert [p.page for p in document.pages] == list(range(1, len(document.pages) + 1))
    if name in ("report.xps", "manual.pdf.gz"):  # fixed pages: one per page written
        assert len(document.pages) == 2 and "fog horn" in document.pages[1].text
    assert document.damage is None


def test_a_comic_book_archive_has_one_text_less_page_per_picture(tmp_path, reader):
    document = reader.read(_source(write_cbz(tmp_path / "comic.cbz", 3)))
    assert [(p.page, p.text) for p in document.pages] == [(1, ""), (2, ""), (3, "")]


def test_a_gzipped_document_past_the_decompressed_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(defaults, "MAX_DECOMPRESSED_BYTES", 2 << 20)
    bomb = write_gzip_bomb(tmp_path / "bomb.pdf.gz", 3 << 20)
    assert bomb.stat().st_size < 20_000
    with pytest.raises(UnreadableFile, match="decompresses to more than 2 MB"):
        read_document(_source(bomb))
    fine = write_pdf_gz(tmp_path / "fine.pdf.gz", [LIGHTHOUSE])
    assert "lighthouse" in read_document(_source(fine)).pages[0].text


def test_broken_documents_are_unreadable_with_their_type_named(tmp_path, reader):
    (tmp_path / "broken.epub").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "broken.pdf.gz").write_bytes(b"not gzip at all")
    truncated = gzip.compress(b"%PDF-1.7\n" + random.Random(7).randbytes(10_000))[:2_000]
    (tmp_path / "cut.pdf.gz").write_bytes(truncated)
    with pytest.raises(UnreadableFile, match="EPUB"):
        reader.read(_source(tmp_path / "broken.epub"))
    with pytest.raises(UnreadableFile, match="not a readable gzip file"):
        reader.read(_source(tmp_path / "broken.pdf.gz"))
    with pytest.raises(UnreadableFile, match="not a readable gzip file"):
        reader.read(_source(tmp_path / "cut.pdf.gz"))


def test_suffixes_decide_the_type_and_other_files_are_counted_by_suffix(tmp_path):
    assert document_suffix("/a/Manual.PDF.GZ") == ".pdf.gz"
    assert document_suffix("/a/b.epub") == ".epub" and document_suffix("/a/b.tar.gz") is None
    assert kind_of("/a/b.txt") is None and kind_of("/a/b.png") == "image"
    assert suffix_of("notes.TXT") == ".txt" and suffix_of("x.tar.gz") == ".tar.gz" and suffix_of("README") == ""
    write_epub(tmp_path / "book.epub", [LIGHTHOUSE])
    for name in ("a.txt", "b.txt", "c.md", "README", "d.tar.gz", ".hidden.txt"):
        (tmp_path / name).write_text("x")
    counts = Counter()
    found, skipped = discover([tmp_path], not_indexable=counts)
    assert [f.path for f in found] == [str(tmp_path / "book.epub")] and skipped == []
    assert counts == Counter({".txt": 2, ".md": 1, "": 1, ".tar.gz": 1})  # hidden files are not looked at
    assert discovery.describe_suffixes(counts).startswith("2 .txt, ")
