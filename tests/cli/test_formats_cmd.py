"""`smart index` over documents beside PDF, and over folders holding nothing it can index."""

import json

from smartcli import defaults
from tests.conftest import run_smart
from tests.formats import write_cbz, write_epub, write_fb2, write_gzip_bomb, write_mobi, write_pdf_gz, write_svg, write_xps

TEXTS = {
    "book.epub": "A lighthouse keeper trims the lamp wick every evening.",
    "report.xps": "Quarterly figures of the orchard harvest of apples and pears.",
    "story.fb2": "A fisherman mends his torn nets at dawn on the pier.",
    "novel.mobi": "The clockmaker repairs a broken grandfather clock pendulum.",
    "diagram.svg": "Network topology of routers switches and firewalls.",
    "manual.pdf.gz": "Install the gearbox before fitting the drive shaft.",
}
WRITERS = {
    "book.epub": lambda p, t: write_epub(p, [t, "An appendix of nautical terms."]),
    "report.xps": lambda p, t: write_xps(p, [t, "Second page of the report."]),
    "story.fb2": lambda p, t: write_fb2(p, [t]),
    "novel.mobi": lambda p, t: write_mobi(p, [t]),
    "diagram.svg": write_svg,
    "manual.pdf.gz": lambda p, t: write_pdf_gz(p, [t, "Torque settings for the bolts."]),
}


def test_every_document_type_is_indexed_and_found_and_other_files_are_counted(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in TEXTS.items():
        WRITERS[name](docs / name, text)
    write_cbz(docs / "comic.cbz", 2)
    for name in ("todo.txt", "notes.txt", "README.md"):
        (docs / name).write_text("plain text is not indexed")
    store = tmp_path / "store"
    result = run_smart("index", docs, "--store", store, "--ocr", "never", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["added"] == len(TEXTS) + 1 and summary["skipped"] == []
    assert summary["not_indexable"] == {".txt": 2, ".md": 1}
    assert [line for line in result.stderr.splitlines() if "not indexable" in line] == ["smart: not indexable: 2 .txt, 1 .md"]
    # 2 + 2 + 1 + 1 + 1 + 2 text pages, and the comic's 2 pages without a text layer.
    assert summary["pages_encoded"] == 9 and summary["not_encoded"] == {"no_text_layer": 2}
    for name, text in TEXTS.items():
        found = json.loads(run_smart("search", text, "--store", store, "-k", "1", "--json", check=True).stdout)["results"]
        assert (found[0]["file"], found[0]["page"]) == (name, 1), (name, found)
    status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    assert status["items"] == 11

    # The plan says the same, and an unchanged run reads nothing again.
    plan = json.loads(run_smart("index", docs, "--store", store, "--dry-run", "--ocr", "never", "--json", check=True).stdout)
    assert plan["not_indexable"] == {".txt": 2, ".md": 1} and plan["unchanged"] == len(TEXTS) + 1
    again = json.loads(run_smart("index", docs, "--store", store, "--ocr", "never", "--json", check=True).stdout)
    assert again["unchanged"] == len(TEXTS) + 1 and again["pages_encoded"] == 0


def test_a_folder_of_files_that_cannot_be_indexed_is_an_error_with_a_hint_and_leaves_nothing(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    for name in ("a.txt", "b.txt", "c.md", "d.md", "e.md"):
        (notes / name).write_text("some notes")
    store = tmp_path / "store"
    result = run_smart("index", notes, "--store", store)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"smart: no indexable files under {notes} (not indexable: 3 .md, 2 .txt)")
    assert "EPUB" in line and ".pdf.gz" in line
    assert not store.exists()

    # Beside an indexable folder, such a folder is only counted.
    docs = tmp_path / "docs"
    docs.mkdir()
    write_epub(docs / "book.epub", [TEXTS["book.epub"]])
    both = run_smart("index", docs, notes, "--store", store, "--ocr", "never", "--json")
    assert both.returncode == 0, both.stderr
    assert json.loads(both.stdout)["not_indexable"] == {".md": 3, ".txt": 2}
    # A store that holds files under a folder removes them when only unindexable files are left.
    (docs / "book.epub").unlink()
    (docs / "left.txt").write_text("x")
    gone = run_smart("index", docs, "--store", store, "--json")
    assert gone.returncode == 0, gone.stderr
    assert json.loads(gone.stdout)["removed"] == 1


def test_a_gzip_bomb_is_skipped_with_its_reason_and_the_run_goes_on(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_gzip_bomb(docs / "bomb.pdf.gz", defaults.MAX_DECOMPRESSED_BYTES + (1 << 20))
    write_pdf_gz(docs / "manual.pdf.gz", [TEXTS["manual.pdf.gz"]])
    result = run_smart("index", docs, "--store", tmp_path / "store", "--ocr", "never", "--json")
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)
    assert summary["added"] == 1
    [skipped] = summary["skipped"]
    assert skipped["path"].endswith("bomb.pdf.gz")
    assert (
        skipped["reason"]
        == f"decompresses to more than {defaults.MAX_DECOMPRESSED_BYTES >> 20} MB (refused as a possible decompression bomb)"
    )
    assert sum("bomb.pdf.gz" in line for line in result.stderr.splitlines()) == 1
