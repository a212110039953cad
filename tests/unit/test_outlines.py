"""Pair mining from PDF outlines (real PDFs written with PyMuPDF, real get_toc)."""

import pymupdf
import pytest

from smartcli.ingest.outlines import clean_heading, mine_outlines, outline_pairs


def outlined_pdf(path, pages, toc):
    doc = pymupdf.open()
    for n in range(pages):
        doc.new_page().insert_text((72, 90), f"page {n + 1}")
    doc.set_toc(toc)
    doc.save(path)
    doc.close()
    return str(path)


def test_an_entry_covers_its_pages_up_to_the_next_entry_at_its_level_or_higher():
    entries = [(1, "Installing R", 1), (2, "Linux", 2), (2, "Windows", 4), (1, "Using R", 6), (1, "Appendix tables", 9)]
    pairs = outline_pairs(entries, "/x.pdf", max_pages=4)
    assert [(p.query, p.pages) for p in pairs] == [
        ("Installing R", [1, 2, 3, 4]),  # to the next level-1 entry (page 6), capped at 4 pages
        ("Linux", [2, 3]),  # to "Windows"
        ("Windows", [4, 5]),  # to "Using R", a higher level
        ("Using R", [6, 7, 8]),
        ("Appendix tables", [9]),  # the last entry runs to the end: its own page only
    ]
    # Two entries on one page: the first still names its page.
    assert outline_pairs([(1, "A one", 3), (1, "B two", 3)], "/x.pdf")[0].pages == [3]


def test_the_heading_path_joins_the_parents_headings():
    entries = [(1, "3 Installing R", 1), (2, "3.1 Linux", 2), (3, "Debian", 2), (2, "Windows", 3)]
    queries = [p.query for p in outline_pairs(entries, "/x.pdf", heading_path=True)]
    assert queries == ["Installing R", "Installing R > Linux", "Installing R > Linux > Debian", "Installing R > Windows"]


@pytest.mark.parametrize(
    "title, cleaned",
    [
        ("2 A Brief Introduction", "A Brief Introduction"),
        ("A Brief Introduction", "A Brief Introduction"),
        ("1.2.3 Installing  R", "Installing R"),
        ("A.1 Exit status", "Exit status"),
        ("Chapter 4: Networking", "Networking"),
        ("IV. Results", "Results"),
        ("42", "42"),
    ],
)
def test_leading_numbering_is_stripped(title, cleaned):
    assert clean_heading(title) == cleaned


def test_uninformative_entries_are_dropped_and_counted(tmp_path):
    first = outlined_pdf(
        tmp_path / "a.pdf",
        8,
        [
            [1, "Contents", 1],
            [1, "1 Getting started", 2],
            [2, "Examples", 3],
            [1, "2.1", 4],
            [1, "Configuring the network", 5],
            [1, "Function Index", 8],
        ],
    )
    second = outlined_pdf(tmp_path / "b.pdf", 3, [[1, "Examples", 1], [1, "Printing a page", 2]])
    bare = outlined_pdf(tmp_path / "c.pdf", 2, [])
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    pairs, report = mine_outlines([first, second, bare, str(tmp_path / "broken.pdf")])
    assert sorted(p.query for p in pairs) == ["Configuring the network", "Getting started", "Printing a page"]
    assert report.files == 4 and report.with_outline == 2 and report.entries == 8 and report.pairs == 3
    assert report.dropped == {"front_or_back_matter": 2, "no_words": 1, "duplicated_heading": 2}
    assert [path for path, _ in report.unreadable] == [str(tmp_path / "broken.pdf")]
    getting_started = next(p for p in pairs if p.query == "Getting started")
    assert getting_started.path == first and getting_started.pages == [2, 3]
