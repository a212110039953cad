"""Issue 26, items 2 and 3: a query with no usable characters, or none the model knows, is a clear
error of its own (exit 2; an error object per bad `--queries` line; 400 from `smart serve`), and
no NaN or Infinity ever reaches an output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smartcli import ErrorKind, Index, QueryError
from tests.conftest import run_smart

NO_CHARACTERS = ["\x01\x02", "\u200b", "\u00ad", "\x7f", "\x1b", "\u2060\ufeff", "\u200d\u200c"]
NOTHING_KNOWN = ["😀😀", "🦜", "a" * 5000, "x" * 101, "\u0301\u0301"]  # the last: no token at all


def strict_json(text: str) -> list:
    """Every line of ``text`` as JSON, refusing NaN and Infinity (which json.dumps writes and no
    other JSON reader takes)."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return [json.loads(line, parse_constant=refuse) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("query", NO_CHARACTERS, ids=ascii)
def test_a_query_of_control_or_invisible_characters_is_a_usage_error(sample_store, query):
    store, _ = sample_store
    result = run_smart("search", query, "--store", store, "--json")
    assert result.returncode == 2, result.stderr
    assert result.stderr == "smart: the query has no characters to search for (only control, invisible or space characters)\n"
    assert result.stdout == ""


@pytest.mark.parametrize("query", NOTHING_KNOWN, ids=lambda q: ascii(q[:8]))
def test_a_query_of_only_unknown_words_is_a_usage_error_not_nan(sample_store, query):
    store, _ = sample_store
    result = run_smart("search", query, "--store", store, "--json")
    assert result.returncode == 2, result.stdout
    assert "the query has no word sentence-transformers/all-MiniLM-L6-v2 knows" in result.stderr
    assert "NaN" not in result.stdout and "RuntimeWarning" not in result.stderr


def test_a_known_word_beside_an_emoji_is_searched(sample_store):
    store, _ = sample_store
    result = run_smart("search", "terminal 😀", "--store", store, "--json", "-k", "2")
    assert result.returncode == 0, result.stderr
    (answer,) = strict_json(result.stdout)
    assert answer["results"][0]["file"] == "terminal-guide.pdf"
    assert all(math.isfinite(r["score"]) for r in answer["results"])


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_each_unusable_queries_line_gets_its_error_object_and_the_rest_are_answered(sample_store, tmp_path, source):
    store, _ = sample_store
    lines = ["terminal", "\x01", '{"qid": 7, "query": "\\u200b"}', "😀", "houseplant watering", '{"qid": "z", "query": "🦜"}', "wifi"]
    text = "\n".join(lines) + "\n"
    if source == "file":
        path = tmp_path / "queries.txt"
        path.write_text(text)
        result = run_smart("search", "--queries", path, "--store", store, "-k", "1")
        name = str(path)
    else:
        result = run_smart("search", "--queries", "-", "--store", store, "-k", "1", input=text)
        name = "stdin"
    assert result.returncode == 2
    answers = strict_json(result.stdout)
    assert len(answers) == len(lines)
    assert [a["query"] for a in answers] == ["terminal", None, None, None, "houseplant watering", None, "wifi"]
    assert [a["qid"] for a in answers] == [None, None, 7, None, None, "z", None]
    assert answers[1]["error"] == f"{name}:2: the query has no characters to search for (only control, invisible or space characters)"
    assert answers[3]["error"].startswith(f"{name}:4: the query has no word ")
    assert answers[0]["results"] and answers[4]["results"] and answers[6]["results"]
    assert result.stderr.count("smart: ") == 4 and "unexpected" not in result.stderr


def test_the_library_raises_a_query_error_naming_which_query(sample_store):
    store, _ = sample_store
    with Index.open(store) as index:
        with pytest.raises(QueryError) as raised:
            index.search_many(["terminal", "wifi", "🦜"])
        assert raised.value.kind is ErrorKind.BAD_INPUT and raised.value.details["index"] == 2
        with pytest.raises(QueryError):
            index.search("\x7f")
        assert index.search("terminal", k=1)[0].item.path.endswith("terminal-guide.pdf")


@pytest.mark.parametrize(
    "option, value", [("--lambda-late", "1e308"), ("--lambda-anchor", "1e39"), ("--lambda-late", "-3e38"), ("--lambda-late", "1000001")]
)
def test_weights_whose_products_overflow_are_refused(sample_store, option, value):
    store, _ = sample_store
    result = run_smart("search", "terminal", option, value, "--store", store, "--json")
    assert result.returncode == 2
    assert result.stderr == f"smart: {option}: must be between -1,000,000 and 1,000,000, not {float(value):g}\n"


def test_the_largest_weight_still_gives_finite_scores(sample_store):
    store, _ = sample_store
    result = run_smart("search", "terminal", "--lambda-late", "1e6", "--lambda-anchor", "-1e6", "--store", store, "--json")
    assert result.returncode == 0, result.stderr
    assert all(math.isfinite(r["score"]) for r in strict_json(result.stdout)[0]["results"])


def test_serve_answers_an_unusable_query_with_400_and_a_message(sample_store, tmp_path):
    from smartcli.cli.web import PictureCache, ViewApp

    store, _ = sample_store
    index = Index.open(store)
    app = ViewApp(index, cache=PictureCache(tmp_path / "pictures"))
    try:
        for target in ("/api/search?q=%01", "/api/search?q=%E2%80%8B", "/api/search?q=%F0%9F%98%80"):
            response = app.handle("GET", target, {"Host": "127.0.0.1:8765"})
            assert response.status == 400, target
            body = json.loads(response.body)
            assert body["kind"] == "bad_input" and body["error"].startswith("the query has no")
        assert app.handle("GET", "/api/search?q=terminal", {"Host": "127.0.0.1:8765"}).status == 200
    finally:
        app.call(index.close)
        app.close()


def test_eval_names_the_judged_query_that_cannot_be_searched(sample_store, tmp_path):
    store, _ = sample_store
    judged = tmp_path / "judged.jsonl"
    judged.write_text(
        json.dumps({"qid": "ok", "query": "terminal", "relevant": [{"file": "terminal-guide.pdf", "page": 1}]})
        + "\n"
        + json.dumps({"qid": "emoji", "query": "🦜🦜", "relevant": [{"file": "terminal-guide.pdf", "page": 1}]})
        + "\n"
    )
    result = run_smart("eval", "--queries", judged, "--store", store)
    assert result.returncode == 2
    assert "query 'emoji': the query has no word" in result.stderr


def test_the_kernel_never_averages_zero_query_tokens_into_nan():
    from smartcli.search.kernel import mean_per_query

    best = np.ones((3, 2), np.float32)
    out = mean_per_query(best, [2, 0])
    assert np.isfinite(out).all() and out[0].tolist() == [1.0] * 3 and out[1].tolist() == [0.0] * 3
