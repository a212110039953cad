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
