"""Issue 23, item 9: what `status`, `search`, `eval` and `--help` say is true and tidy: a touched
file is not "modified", OCR is counted as `index` counts it, piped output has no trailing blanks,
a folder of documents passed as --store is called that, `--explain` leaves out stop words and
punctuation, `index --help` shows `[PATH]...`, and `eval --per-query` keeps a query to one line."""

from __future__ import annotations

import json
import os
import re
import shutil

from tests.attacks import text_page
from tests.cli.test_ocr import write_png
from tests.conftest import SAMPLE_CORPUS, run_smart


def test_a_touched_file_is_not_called_modified(sample_store, tmp_path):
    _, corpus = sample_store
    docs = tmp_path / "docs"
    shutil.copytree(corpus, docs)
    store = tmp_path / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    touched, changed = docs / "houseplants.pdf", docs / "hobbies" / "sourdough.pdf"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    data = bytearray(changed.read_bytes())
    assert data[9:10] == b"%"
    data[10] ^= 1  # in the header's comment line: the same size, another content, still a good PDF
    changed.write_bytes(bytes(data))

    status = run_smart("status", "--store", store, "--json", check=True)
    assert json.loads(status.stdout)["changed_on_disk"] == {"modified": 1, "missing": 0, "new": 0, "touched": 1}
    shown = run_smart("status", "--store", store, env={"COLUMNS": "200"}, check=True).stdout
    assert "1 modified (1 more with a new date, the same content), 0 missing, 0 new" in shown
    indexed = run_smart("index", docs, "--store", store, "--ocr", "never", "--json", check=True)
    assert json.loads(indexed.stdout)["updated"] == 1  # what status called modified, index read again


def test_status_counts_ocr_as_index_does(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    write_png(docs / "note.png", "Water the fern twice a week")
    shutil.copy(sorted((SAMPLE_CORPUS / "photos").iterdir())[0], docs)
    text_page(docs / "text.pdf", "a page with a text layer")
    store = tmp_path / "store"
    indexed = run_smart("index", docs, "--store", store, "--ocr", "auto", env={"COLUMNS": "200"})
    assert indexed.returncode in (0, 3), indexed.stderr
    counted = re.search(r"(\d+) pages through OCR \((\w+)\), text from (\d+)", indexed.stdout)
    assert counted, indexed.stdout
    status = run_smart("status", "--store", store, env={"COLUMNS": "200"}, check=True).stdout
    assert f"{counted[1]} pages through OCR ({counted[2]}), text from {counted[3]}" in status
    assert json.loads(run_smart("status", "--store", store, "--json").stdout)["ocr"]["attempted"] == int(counted[1])


def test_piped_output_has_no_trailing_blanks(sample_store):
    store, _ = sample_store
    for args in (
        ("search", "how do I change the default terminal", "-k", "3"),
        ("search", "how do I change the default terminal", "-k", "1", "--explain"),
        ("status",),
        ("status", "--verify"),
    ):
        result = run_smart(*args, "--store", store, env={"COLUMNS": "200"})
        assert result.returncode == 0, result.stderr
        padded = [line for line in result.stdout.splitlines() if line != line.rstrip()]
        assert padded == [], (args, padded)


def test_a_folder_of_documents_given_as_the_store_is_called_that(sample_store):
    _, corpus = sample_store
    result = run_smart("search", "terminal", "--store", corpus)
    assert result.returncode == 4
    assert result.stderr.startswith(f"smart: no index at {corpus}: that folder holds documents, not a store; index them with `smart index")
    plain = run_smart("search", "terminal", "--store", corpus / "not-there")
    assert plain.returncode == 4 and "holds documents" not in plain.stderr


def test_explain_leaves_out_stop_words_and_punctuation_and_names_them(sample_store):
    store, _ = sample_store
    result = run_smart("search", "how do I change the default terminal?", "--store", store, "-k", "1", "--explain", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    table = result.stdout[result.stdout.index("query token") :]
    tokens = [line.split()[0] for line in table.splitlines()[1:] if line.strip() and not line.startswith("also")]
    assert tokens == ["change", "default", "terminal"]
    assert "also in the late score: how do I the ? (stop words and punctuation)" in table
    as_json = run_smart("search", "how do I change the default terminal?", "--store", store, "-k", "1", "--explain", "--json")
    assert [m["query_token"] for m in json.loads(as_json.stdout)["results"][0]["matches"]][:3] == ["how", "do", "I"]


def test_index_help_shows_the_paths_once(sample_store):
    result = run_smart("index", "--help", env={"COLUMNS": "120"})
    assert "[PATH]..." in result.stdout and "[PATH...]" not in result.stdout


def test_eval_per_query_keeps_each_query_on_one_line_at_80_columns(sample_store, tmp_path):
    store, _ = sample_store
    queries = [
        ("q1", "how do I change the default terminal emulator on my Debian machine when several are installed", "terminal-guide.pdf"),
        ("q2", "when should I water my houseplants in winter and how much water do they really need", "houseplants.pdf"),
        ("q3", "tyre pressure", "bicycle-maintenance.pdf"),
    ]
    judged = tmp_path / "judged.jsonl"
    judged.write_text("".join(json.dumps({"qid": q, "query": text, "relevant": [{"file": f, "page": 1}]}) + "\n" for q, text, f in queries))
    result = run_smart("eval", "--queries", judged, "--store", store, "--per-query", env={"COLUMNS": "80"}, check=True)
    rows = [line for line in result.stdout.splitlines() if re.match(r"q\d ", line)]
    assert [row.split()[0] for row in rows] == ["q1", "q2", "q3"]
    assert all(len(row) <= 80 for row in rows) and rows[0].endswith("…") and rows[2].endswith("tyre pressure")
