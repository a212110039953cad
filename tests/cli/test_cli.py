import json
import shutil

import pymupdf
import pytest

from smartcli.search.scoring import DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE
from tests.conftest import SAMPLE_CORPUS, run_smart


def test_search_finds_the_page_that_answers_the_query(sample_store):
    store, corpus = sample_store
    result = run_smart("search", "how do I change the default terminal", "--store", store, "--json", check=True)
    (line,) = result.stdout.splitlines()
    answer = json.loads(line)
    top = answer["results"][0]
    assert top["file"] == "terminal-guide.pdf" and top["page"] == 1
    assert top["path"] == str(corpus / "manuals" / "terminal-guide.pdf")
    assert set(top) >= {"rank", "path", "page", "kind", "score", "anchor", "late"}
    assert top["score"] == pytest.approx(DEFAULT_LAMBDA_ANCHOR * top["anchor"] + DEFAULT_LAMBDA_LATE * top["late"], abs=1e-5)
    assert "update-alternatives" in top["snippet"]


def test_table_output_for_people(sample_store):
    store, _ = sample_store
    result = run_smart("search", "wifi keeps disconnecting", "--store", store, "-k", "3", env={"COLUMNS": "160"}, check=True)
    assert "home-network.pdf" in result.stdout
    assert "score" in result.stdout and "anchor" in result.stdout and "late" in result.stdout
    assert result.stderr == ""


def test_batch_queries_from_stdin_come_back_in_order_as_json_lines(sample_store):
    store, _ = sample_store
    queries = "\n".join(
        [
            json.dumps({"qid": "bread", "query": "how long do I bake the loaf"}),
            "my chain is dirty",
            "",
            json.dumps({"qid": "plants", "query": "when should I water my plants"}),
        ]
    )
    result = run_smart("search", "--queries", "-", "--store", store, "-k", "2", input=queries, check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["qid"] for line in lines] == ["bread", None, "plants"]
    assert [line["results"][0]["file"] for line in lines] == ["sourdough.pdf", "bicycle-maintenance.pdf", "houseplants.pdf"]
    assert all(len(line["results"]) == 2 for line in lines)


def test_modes_rank_with_their_own_scores(sample_store):
    store, _ = sample_store
    pooled = json.loads(run_smart("search", "tyre pressure", "--store", store, "--mode", "pooled", "--json", check=True).stdout)
    top = pooled["results"][0]
    assert top["late"] is None and top["score"] == top["anchor"]
    late = json.loads(run_smart("search", "tyre pressure", "--store", store, "--mode", "late", "--json", check=True).stdout)
    assert late["results"][0]["score"] == late["results"][0]["late"]


def test_images_are_recorded_but_not_encoded_and_said_once(sample_store, tmp_path):
    store, _ = sample_store
    status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    assert status["files"] == {"pdf": 5, "image": 2}
    assert status["encoded_items"] == 13 and status["items"] == 15
    assert status["not_encoded"] == {"image_without_text": 2}  # a stable code; the presenter words it
    assert status["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert status["changed_on_disk"] == {"modified": 0, "missing": 0, "new": 0, "touched": 0}


def test_bad_pdf_does_not_stop_the_run(tmp_path):
    corpus = tmp_path / "docs"
    shutil.copytree(SAMPLE_CORPUS / "hobbies", corpus)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4\n this is not really a pdf")
    (corpus / "notes.pdf").write_text("plain text with a pdf name")
    (corpus / "empty.pdf").write_bytes(b"")
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret text")
    doc.save(corpus / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="pw")
    store = tmp_path / "store"
    result = run_smart("index", corpus, "--store", store, "--json")
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)
    assert summary["added"] == 2
    reasons = {s["path"].rsplit("/", 1)[1]: s["reason"] for s in summary["skipped"]}
    assert set(reasons) == {"broken.pdf", "notes.pdf", "empty.pdf", "locked.pdf"}
    assert reasons["empty.pdf"] == "empty file"
    assert "encrypted" in reasons["locked.pdf"]
    for name in reasons:
        assert sum(name in line for line in result.stderr.splitlines()) == 1, result.stderr
    found = json.loads(run_smart("search", "how much salt goes in the dough", "--store", store, "--json", check=True).stdout)
    assert found["results"][0]["file"] == "sourdough.pdf"


def test_search_before_any_index_is_a_clear_error(tmp_path):
    result = run_smart("search", "anything", "--store", tmp_path / "none")
    assert result.returncode == 4
    assert "smart index" in result.stderr and "Traceback" not in result.stderr


def test_empty_query_is_a_usage_error(sample_store):
    store, _ = sample_store
    result = run_smart("search", "   ", "--store", store)
    assert result.returncode == 2 and "empty" in result.stderr and "Traceback" not in result.stderr


def test_store_from_environment_variable(sample_store):
    store, _ = sample_store
    result = run_smart("search", "repot a plant", "--json", env={"SMART_STORE": str(store)}, check=True)
    assert json.loads(result.stdout)["results"][0]["file"] == "houseplants.pdf"


def test_reindexing_unchanged_files_encodes_nothing(sample_store):
    store, corpus = sample_store
    result = run_smart("index", corpus, "--store", store, "--json", "--ocr", "never", check=True)
    summary = json.loads(result.stdout)
    assert summary["unchanged"] == 7 and summary["pages_encoded"] == 0 and summary["added"] == 0


def test_help_explains_every_command():
    result = run_smart("--help", check=True)
    for command in ("index", "search", "status"):
        assert command in result.stdout
    for flag in ("--mode", "--lambda-anchor", "--lambda-late", "--top-k", "--chunk-size", "--device", "--queries", "--json"):
        assert flag in run_smart("search", "--help", env={"COLUMNS": "200"}, check=True).stdout
