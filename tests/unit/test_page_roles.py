"""Contents and index pages (issue 14.3): recognized at index time, ranked below body pages that
match as well, never hidden when they are the best match; old stores judged from stored text."""

import sqlite3

import numpy as np
import pymupdf
import pytest

from smartcli import Index, defaults
from smartcli.models.base import Encoded
from smartcli.search.scoring import Weights
from smartcli.search.searcher import Scored, Searcher
from smartcli.store.catalog import Store, reads
from smartcli.store.pageroles import BODY, CONTENTS, INDEX, outline_role, outline_roles, text_role

CONTENTS_PAGE = "\n".join(
    [
        "Contents",
        "1 Installing packages . . . . . . . . . . . . . . . . . . . . 2",
        "2 Removing and uninstalling packages . . . . . . . . . . . . 3",
        "3 Upgrading the whole system . . . . . . . . . . . . . . . . 4",
        "4 Keeping a greenhouse of orchids . . . . . . . . . . . . . 9",
        "5 Configuring the network . . . . . . . . . . . . . . . . . . 11",
        "6 Printing from the command line . . . . . . . . . . . . . . 14",
    ]
)
BODY_PAGES = [
    "Installing packages. Run apt install followed by the package name; apt fetches the package and what it depends on.",
    "Removing and uninstalling packages. To uninstall a package run apt remove with its name; apt purge also deletes "
    "its configuration files, and apt autoremove removes the packages nothing needs any more.",
    "Upgrading the whole system. Run apt update to refresh the lists, then apt full-upgrade to install the new versions.",
]
INDEX_PAGE = "\n".join(
    [
        "Index",
        "apt autoremove . . . . . . 3",
        "apt install . . . . . . 2",
        "apt purge . . . . . . 3",
        "apt remove . . . . . . 3",
        "full-upgrade . . . . . . 4",
        "network . . . . . . 11",
        "printing . . . . . . 14",
    ]
)


def _manual(path):
    """A manual: contents (dot leaders), three body pages, and an index page that the outline names."""
    doc = pymupdf.open()
    for text in [CONTENTS_PAGE, *BODY_PAGES, INDEX_PAGE]:
        page = doc.new_page()
        page.insert_textbox(pymupdf.Rect(72, 72, 540, 770), text, fontsize=11)
    doc.set_toc([[1, "Installing packages", 2], [1, "Removing packages", 3], [1, "Upgrading", 4], [1, "Index", 5]])
    doc.save(path)
    return path


@pytest.fixture(scope="module")
def manual_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("roles")
    docs = root / "docs"
    docs.mkdir()
    _manual(docs / "apt-manual.pdf")
    index = Index.open(root / "store", create=True)
    index.update([docs], ocr="never")
    return index, root


def test_dot_leaders_and_page_numbers_mark_contents_and_index_pages():
    assert text_role(" ".join(CONTENTS_PAGE.split())) == CONTENTS
    assert text_role(" ".join(INDEX_PAGE.split())) == INDEX
    for body in BODY_PAGES:
        assert text_role(body) == BODY
    # Contents without leaders: headings each followed by a rising page number.
    assert (
        text_role(
            "About this manual 3 Overview of tools 17 Managing a configuration 19 Customizing contents 28 "
            "Customizing run time behaviours 30 Customizing Debian Installer 35 Examples 47"
        )
        == CONTENTS
    )
    # Numbers that are data (a plot's axis), not page numbers; a few ellipses in prose.
    assert text_role("0 32 64 96 128 160 192 224 km 0 32 64 96 128 160 192 224 256 km 10 11 12 13 14 5 10") == BODY
    assert text_role("Wait.... then type the command.... and read the output. " * 3 + "word " * 200) == BODY
    assert text_role("") == BODY and text_role(None) == BODY


def test_the_outline_names_contents_and_index_pages():
    assert outline_role("Contents") == CONTENTS and outline_role("Table of Contents") == CONTENTS
    assert outline_role("Index") == INDEX and outline_role("Function Index") == INDEX and outline_role("VI Index") == INDEX
    assert outline_role("Index, general") == INDEX and outline_role("Index of Commands") == INDEX
    assert outline_role("glp_create_index — create the name index") is None and outline_role("Array indexing") is None
    toc = [[1, "Intro", 1], [1, "Contents", 2], [1, "Body", 4], [2, "Index", 6], [3, "Index", 7], [1, "Index", 9]]
    # From the entry to the next at its level or above; the last to the end; deep "Index" entries are topics.
    assert outline_roles(toc, 11) == {2: CONTENTS, 3: CONTENTS, 6: INDEX, 7: INDEX, 8: INDEX, 9: INDEX, 10: INDEX, 11: INDEX}


def test_pages_are_recorded_with_their_role_at_index_time(manual_index):
    index, root = manual_index
    conn = sqlite3.connect(root / "store" / "catalog.sqlite")
    roles = dict(conn.execute("SELECT page, page_role FROM items ORDER BY page"))
    assert roles == {1: CONTENTS, 2: BODY, 3: BODY, 4: BODY, 5: INDEX}


def test_a_contents_page_ranks_below_a_body_page_that_matches_about_as_well(manual_index):
    index, root = manual_index
    searcher = Searcher(Store.open(root / "store"), None, device="cpu")
    page = {item.page: i for i, item in enumerate(searcher.items)}
    columns = [page[1], page[3]]  # the contents page, a body page
    weights = Weights()
    penalty = defaults.NAVIGATION_PENALTY * (weights.lambda_anchor + weights.lambda_late)
    query = Encoded(np.zeros(384, np.float32), np.zeros((1, 384), np.float32), np.zeros(1, np.int32), np.zeros((1, 2), np.int32))

    def ranked(late_contents, late_body):
        scored = Scored(
            columns, np.array([[0.5, 0.5]], np.float32), np.array([[late_contents, late_body]], np.float32), np.ones((1, 2), bool)
        )
        return [(h.page, round(h.score, 4)) for h in searcher.rank([query], scored, weights, 2, snippets=False)[0]]

    # Fused 0.05 apart (under the penalty): the body page first; 0.5 apart (over it): the contents page stays first.
    assert ranked(0.81, 0.80) == [(3, round(0.5 + 5 * 0.80, 4)), (1, round(0.5 + 5 * 0.81 - penalty, 4))]
    assert [p for p, _ in ranked(0.90, 0.80)] == [1, 3]


def test_search_reports_the_penalty_in_the_score_and_the_role_in_json(manual_index):
    index, _ = manual_index
    hits = index.search("removing and uninstalling packages", k=5)
    pages = [h.page for h in hits]
    assert pages[0] == 3 and 1 in pages, pages  # the contents page ranks lower, it is not hidden
    contents = hits[pages.index(1)]
    weights = defaults.LAMBDA_ANCHOR + defaults.LAMBDA_LATE
    raw = defaults.LAMBDA_ANCHOR * contents.anchor + defaults.LAMBDA_LATE * contents.late
    assert contents.score == pytest.approx(raw - defaults.NAVIGATION_PENALTY * weights, abs=1e-4)
    assert contents.as_json()["page_role"] == "contents" and "page_role" not in hits[0].as_json()


def test_a_contents_page_stays_first_when_it_is_the_best_match(manual_index):
    index, _ = manual_index
    # Only the contents page mentions the orchids chapter (its body is not in the file).
    hits = index.search("keeping a greenhouse of orchids", k=3)
    assert hits[0].page == 1


def test_an_old_store_gets_roles_from_stored_text_without_re_encoding(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    _manual(docs / "apt-manual.pdf")
    store = tmp_path / "store"
    index = Index.open(store, create=True)
    index.update([docs], ocr="never")
    index.close() if hasattr(index, "close") else None
    # A store written before roles were kept: no page_role column.
    conn = sqlite3.connect(store / "catalog.sqlite")
    with conn:
        conn.execute("ALTER TABLE items DROP COLUMN page_role")
    conn.close()
    segments = sorted(p.name for p in (store / "segments").glob("*.h5"))
    # Read as it is: roles are judged from the stored text (the outline is not read again).
    roles = {item.page: item.role for item in reads.live_items(Store.open(store))}
    assert roles == {1: CONTENTS, 2: BODY, 3: BODY, 4: BODY, 5: INDEX}
    # The next writer adds the column and fills it from the stored text; nothing is encoded.
    summary = Index.open(store).update([docs], ocr="never")
    assert summary.pages_encoded == 0 and summary.updated == 0
    assert sorted(p.name for p in (store / "segments").glob("*.h5")) == segments
    conn = sqlite3.connect(store / "catalog.sqlite")
    assert dict(conn.execute("SELECT page, page_role FROM items")) == roles
    conn.close()
