"""The table shows the other paths of a hit shared by copies (issue 14.4), escaped like any file name."""

import shutil

from tests.conftest import run_smart
from tests.corpus import make_pdf


def test_the_table_lists_the_copies_of_a_hit_under_its_path(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    (docs / "backup").mkdir(parents=True)
    make_pdf(docs / "boat.pdf", ["the anchor of the boat holds in the harbor"])
    shutil.copy(docs / "boat.pdf", docs / "backup" / "boat.pdf")
    shutil.copy(docs / "boat.pdf", docs / "backup" / "odd\nname.pdf")  # a newline in a file name
    make_pdf(docs / "other.pdf", ["an orchard of pepper trees in the valley"])
    store = tmp_path / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    monkeypatch.chdir(docs)
    out = run_smart("search", "anchor in the harbor", "--store", store, "-k", "2", env={"COLUMNS": "300"}, check=True).stdout
    lines = out.splitlines()
    (at,) = [i for i, line in enumerate(lines) if "+2 copies: " in line]
    # The hit's path, and under it "+2 copies: ..." with the other two (the newline escaped: one line).
    shown = lines[at - 1] + lines[at]
    for name in ("boat.pdf", "backup/boat.pdf", "backup/odd\\nname.pdf"):
        assert name in shown, out
    assert "odd\nname" not in out  # no raw newline splits the name
    assert "copy:" not in out and out.count("copies:") == 1, out  # other.pdf has no copy

    # Where the table does not fit (80 columns), the copies are the line under path:page.
    out = run_smart("search", "anchor in the harbor", "--store", store, "-k", "2", env={"COLUMNS": "80"}, check=True).stdout
    lines = out.splitlines()
    (at,) = [i for i, line in enumerate(lines) if "+2 copies: " in line]
    assert "boat.pdf:1" in lines[at - 1] and "odd\\nname.pdf" in lines[at] + lines[at - 1], out
