import os

import pymupdf

from smartcli.ingest.discovery import discover, read_document


def make_pdf(path, pages):
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        if text:
            page.insert_text((72, 72), text)
    doc.save(path)


def test_walks_recursively_and_classifies(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    make_pdf(tmp_path / "a" / "b" / "doc.PDF", ["one", "two"])
    for name in ("p.png", "q.JPG", "r.webp", "s.tiff", "t.bmp", "u.gif", "v.jpeg", "w.tif"):
        (tmp_path / "a" / name).write_bytes(b"x")
    (tmp_path / "a" / "readme.txt").write_text("ignored")
    (tmp_path / ".hidden").mkdir()
    make_pdf(tmp_path / ".hidden" / "x.pdf", ["hidden"])
    files, skipped = discover([tmp_path])
    kinds = {os.path.basename(f.path): f.kind for f in files}
    assert kinds["doc.PDF"] == "pdf"
    assert sorted(k for k, v in kinds.items() if v == "image") == sorted(
        ["p.png", "q.JPG", "r.webp", "s.tiff", "t.bmp", "u.gif", "v.jpeg", "w.tif"]
    )
    assert "readme.txt" not in kinds and "x.pdf" not in kinds
    assert skipped == []
    assert all(os.path.isabs(f.path) and f.size > 0 and f.mtime_ns > 0 for f in files)


def test_symlink_loops_are_cut(tmp_path):
    (tmp_path / "d").mkdir()
    make_pdf(tmp_path / "d" / "doc.pdf", ["x"])
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    files, _ = discover([tmp_path])
    assert [os.path.basename(f.path) for f in files] == ["doc.pdf"]


def test_pages_are_numbered_from_one_and_blank_pages_have_no_text(tmp_path):
    make_pdf(tmp_path / "doc.pdf", ["first page", "", "third   page\n\nhere"])
    files, _ = discover([tmp_path / "doc.pdf"])
    pages = read_document(files[0]).pages
    assert [(p.page, p.text) for p in pages] == [(1, "first page"), (2, ""), (3, "third page here")]


def test_missing_path_is_reported(tmp_path):
    files, skipped = discover([tmp_path / "nope"])
    assert files == [] and skipped[0].reason == "no such file or directory"
