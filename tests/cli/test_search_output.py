"""What `smart search` prints: file lines and JSON for programs, colour only for people who want it."""

import json
import os

from smartcli.store.catalog import LiveItem
from tests.conftest import run_smart


def test_files_only_prints_path_and_page_per_result(sample_store):
    store, corpus = sample_store
    result = run_smart("search", "how do I change the default terminal", "--store", store, "-k", "3", "--files-only", check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    paths_and_pages = [line.rsplit(":", 1) for line in lines]
    assert all(os.path.isfile(path) and page.isdigit() for path, page in paths_and_pages)
    assert lines[0] == f"{corpus / 'manuals' / 'terminal-guide.pdf'}:1"
    assert result.stderr == ""


def test_file_line_is_the_bare_path_for_an_image():
    from smartcli.cli.present import file_line
    from smartcli.search.searcher import Hit

    def hit(kind, page):
        item = LiveItem(1, f"/photos/x.{kind}", page, kind, "seg", 0, 1, "")
        return Hit(rank=1, item=item, score=1.0, anchor=1.0, late=None, snippet="")

    assert file_line(hit("image", 1)) == "/photos/x.image"
    assert file_line(hit("pdf", 7)) == "/photos/x.pdf:7"


def test_json_answer_parses_with_highlights_on_matched_words(sample_store):
    store, _ = sample_store
    result = run_smart("search", "tyre pressure", "--store", store, "-k", "2", "--json", check=True)
    (line,) = result.stdout.splitlines()
    answer = json.loads(line)
    assert answer["query"] == "tyre pressure" and answer["qid"] is None
    top = answer["results"][0]
    assert top["file"] == "bicycle-maintenance.pdf" and top["page"] == 1
    highlighted = {top["snippet"][start:end] for start, end in top["highlights"]}
    assert highlighted == {"tyre", "pressure"}
    assert "matches" not in top  # only with --explain


def test_table_into_a_pipe_has_no_escape_sequences(sample_store):
    store, _ = sample_store
    result = run_smart("search", "tyre pressure", "--store", store, "-k", "1", "--explain", env={"COLUMNS": "400"}, check=True)
    assert "\x1b" not in result.stdout
    assert "bicycle-maintenance.pdf" in result.stdout and "query token" in result.stdout


def test_conflicting_or_bad_arguments_exit_2_before_loading_anything(sample_store):
    store, _ = sample_store
    cases = [
        (["tyre", "--json", "--files-only"], "exclude each other"),
        (["tyre", "--explain", "--files-only"], "--explain"),
        (["tyre", "--kind", "video"], "--kind"),
        (["tyre", "--like", "x.pdf"], "only one of"),
        (["tyre", "--mode", "fancy"], "unknown mode"),
    ]
    for args, message in cases:
        result = run_smart("search", *args, "--store", store)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stdout == "" and "Traceback" not in result.stderr


def test_no_results_is_not_an_error(sample_store):
    store, _ = sample_store
    table = run_smart("search", "tyre pressure", "--store", store, "--kind", "image")
    assert table.returncode == 0 and table.stdout == "" and "no results" in table.stderr
    files = run_smart("search", "tyre pressure", "--store", store, "--min-score", "99", "--files-only")
    assert files.returncode == 0 and files.stdout == ""


# -- the results table laid out for the width there is -------------------------------------------

HIT_LINE = r"^ *\d+ +-?\d+\.\d{3} "


def _unbroken(path: str):
    """A regex for ``path`` shown whole, or folded onto the next line only right after a ``/``."""
    import re

    return re.compile(r"/(?:\n *)?".join(re.escape(part) for part in path.split("/")))


def _hit_heights(output: str) -> list[int]:
    import re

    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(HIT_LINE, line)]
    return [b - a for a, b in zip(starts, starts[1:] + [len(lines)])]


def _rendered(hits, width: int) -> str:
    import io

    from rich.console import Console

    from smartcli.cli.present import print_results

    console = Console(file=io.StringIO(), width=width, color_system=None)
    print_results(console, "tyre pressure", hits)
    return console.file.getvalue()


def test_results_at_80_and_120_columns_never_break_a_path_and_take_few_lines_per_hit(sample_store):
    from smartcli import Index
    from smartcli.cli.present import display_path

    store, _ = sample_store
    with Index.open(store) as index:
        hits = index.search("tyre pressure", k=5)
    paths = {display_path(hit.path) for hit in hits}
    assert max(map(len, paths)) > 60  # absolute paths under the test's temporary folder: they need folding at 80
    for width in (80, 120):
        output = _rendered(hits, width)
        for path in paths:
            assert _unbroken(path).search(output), (width, path, output)
        heights = _hit_heights(output)
        assert len(heights) == len(hits)
        # One line of scores and path (folded once at /), the snippet on at most three below.
        assert max(heights) <= 5, output
        assert all(len(line) <= width for line in output.splitlines()), output
    wide = _rendered(hits, 400)  # room for a table with a snippet column: every hit on its table row
    assert "┃ file" in wide and all(path in wide for path in paths)


def test_fold_path_cuts_only_after_a_slash():
    from smartcli.cli.present import fold_path

    assert fold_path("a/bb/ccc/dddd.pdf:3", 8, 8) == ["a/bb/", "ccc/", "dddd.pdf:3"]
    assert fold_path("short.pdf:1", 40, 40) == ["short.pdf:1"]
    assert fold_path("averyveryverylongname.pdf", 5, 5) == ["averyveryverylongname.pdf"]  # overflows whole


def test_piped_output_at_80_and_120_columns_keeps_paths_whole_and_hits_short(sample_store):
    """A real process whose stdout is a pipe (not a terminal), its width from COLUMNS, run beside
    the corpus as a user would: relative paths fit on the hit's line."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    store, corpus = sample_store
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for columns in ("80", "120"):
        result = subprocess.run(
            [sys.executable, "-m", "smartcli", "search", "tyre pressure", "--store", str(store), "-k", "4"],
            cwd=corpus.parent,
            env=dict(env, COLUMNS=columns),
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert "sample_corpus/hobbies/bicycle-maintenance.pdf:1" in result.stdout
        heights = _hit_heights(result.stdout)
        assert len(heights) == 4 and max(heights) <= 4, result.stdout
        assert all(len(line) <= int(columns) for line in result.stdout.splitlines()), result.stdout
