"""Issue 13, items 6-8: document text cannot drive the terminal; bad query lines and options get clear answers."""

from __future__ import annotations

import json

import pytest

from smartcli import defaults
from tests.attacks import escape_sequences_pdf, text_page
from tests.conftest import run_smart


@pytest.fixture(scope="module")
def escapes_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("escapes")
    docs = root / "docs"
    docs.mkdir()
    escape_sequences_pdf(docs / "title.pdf")
    text_page(docs / "bread.pdf", "sourdough starter feeding schedule")
    store = root / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    return store


def test_escape_sequences_in_page_text_never_reach_the_terminal_and_json_keeps_them(escapes_store):
    shown = run_smart("search", "ferry timetable", "--store", escapes_store, "--explain", "-k", "1")
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout
    assert "\u241b]2;PWNED-TITLE" in shown.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    exact = run_smart("search", "ferry timetable", "--store", escapes_store, "--json", "-k", "1")
    assert "\x1b]2;PWNED-TITLE\x1b\\ ferry \x1b[2J timetable" in json.loads(exact.stdout)["results"][0]["snippet"]


def test_terminal_safe_keeps_the_length_so_highlights_still_fit():
    from smartcli.cli.present import highlighted, terminal_safe

    text = "a\x1b[2Jb\u202ec\x9bd"
    assert terminal_safe(text) == "a\u241b[2Jb\ufffdc\ufffdd" and len(terminal_safe(text)) == len(text)
    assert highlighted(text, [(6, 7)]).plain == terminal_safe(text)


def test_each_bad_queries_line_gets_its_error_object_and_the_rest_are_answered(escapes_store):
    lines = (
        b"tyre\n"
        b"\xff\n"
        b'{"query":"sourdough"}\n'
        b'{"query":"\\ud800"}\n'
        + b'{"query": '
        + b"[" * 100_000
        + b"\n"
        + b'{"query":' * 100_000
        + b"\n"
        + b"x" * (defaults.MAX_QUERY_LINE_BYTES + 10)
        + b"\n"
        + b'{"qid": "last", "query": "starter"}\n'
    )
    result = run_smart("search", "--queries", "-", "--store", escapes_store, "-k", "1", input=lines)
    assert result.returncode == 2  # some lines were bad
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 8
    assert [a["query"] for a in answers[:3:2]] == ["tyre", "sourdough"] and answers[-1]["qid"] == "last"
    assert answers[-1]["results"][0]["file"] == "bread.pdf"
    errors = [a.get("error") for a in answers]
    assert errors[1] == "stdin:2: not UTF-8 text (invalid start byte at byte 1)"
    assert "unpaired surrogate" in errors[3]
    assert errors[4] and errors[5]
    assert errors[6] == f"stdin:7: line longer than {defaults.MAX_QUERY_LINE_BYTES:,} bytes"
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr


def test_a_huge_query_is_cut_to_the_token_cap_with_a_warning(escapes_store):
    result = run_smart("search", "sourdough " * 10_000, "--store", escapes_store, "--json", "-k", "1")
    assert result.returncode == 0, result.stderr
    assert f"smart: query cut to its first {defaults.MAX_QUERY_TOKENS} tokens" in result.stderr
    assert json.loads(result.stdout)["results"][0]["file"] == "bread.pdf"


@pytest.mark.parametrize(
    "option, value", [("--lambda-late", "nan"), ("--lambda-late", "inf"), ("--lambda-anchor", "-inf"), ("--min-score", "nan")]
)
def test_nan_and_infinite_weights_are_refused(escapes_store, option, value):
    result = run_smart("search", "sourdough", "--store", escapes_store, option, value)
    assert result.returncode == 2
    assert result.stderr.startswith(f"smart: {option}: must be a")


def test_a_query_that_is_not_utf8_in_argv_is_a_usage_error(escapes_store):
    result = run_smart("search", "caf\udce9", "--store", escapes_store)
    assert result.returncode == 2
    assert "not valid UTF-8" in result.stderr
