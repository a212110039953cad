"""The front door, used as a Python user would: smartcli.Index and the types it returns."""

import json
import os
import re
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from io import StringIO

import pytest

from smartcli import ErrorKind, Index, Scope, SmartError, StoreMissing
from tests.conftest import ROOT, SAMPLE_CORPUS, run_smart


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "the README's Python example is marked <!-- api-example -->"
    return match.group(1)


def test_the_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(SAMPLE_CORPUS, tmp_path / "papers", ignore=shutil.ignore_patterns("*.py"))
    out = StringIO()
    with redirect_stdout(out):
        exec(compile(readme_example(), "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0] == "7 files added, 14 pages encoded"  # OCR reads the photo of a note
    assert any("terminal-guide.pdf" in line for line in lines[1:6]), lines
    assert lines[-1] == "14 pages indexed"
    assert (tmp_path / "papers.smart" / "catalog.sqlite").exists()


def indexed_pages(store) -> dict[str, tuple]:
    """File name -> (status, pages, pages encoded, skip reason) of a store's catalog."""
    import sqlite3

    with sqlite3.connect(store / "catalog.sqlite") as conn:
        rows = conn.execute(
            "SELECT f.path, f.status, COUNT(i.id), COUNT(i.segment), f.reason FROM files f LEFT JOIN items i ON i.file_id = f.id GROUP BY f.id"
        ).fetchall()
    return {os.path.basename(os.fsdecode(path)): rest for path, *rest in rows}


@pytest.mark.parametrize("how", ["script", "stdin"])
def test_the_readme_example_as_a_script_without_a_guard_indexes_what_the_cli_indexes(tmp_path, how):
    """Issue 23 item 1: workers (the reader, OCR) start from the library's own entry point. Spawned
    from the caller's script, they ran it again (a second writer: StoreBusy) or could not find it
    (stdin: FileNotFoundError '<stdin>'), and both images were recorded as crashing the reader."""
    from tests.cli.test_ocr import needs_language_data

    if needs_language_data.args[0]:
        pytest.skip(needs_language_data.kwargs["reason"])
    home = tmp_path / "home"
    shutil.copytree(SAMPLE_CORPUS, home / "papers", ignore=shutil.ignore_patterns("*.py"))
    script = tmp_path / "api.py"
    script.write_text(readme_example())  # as a user saves it: no `if __name__ == "__main__":`
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if how == "script":
        ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path)
    else:
        ran = subprocess.run([sys.executable, "-"], input=script.read_text(), capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.stdout.splitlines()[0] == "7 files added, 14 pages encoded", ran.stdout

    cli_store = tmp_path / "cli-store"
    run_smart("index", home / "papers", "--store", cli_store, check=True)
    by_library, by_cli = indexed_pages(home / "papers.smart"), indexed_pages(cli_store)
    assert by_library == by_cli
    assert all(status == "indexed" for status, *_ in by_library.values()), by_library
    assert by_library["note.jpg"][2] == 1  # the photo of a note is OCR'd and encoded


def test_a_worker_that_cannot_start_stops_the_run_and_marks_no_file(tmp_path, monkeypatch):
    """A worker failing to start is no file's fault: the run ends with WORKER_FAILED and the
    next run reads every file (before, the file at hand was recorded as crashing the reader)."""
    from smartcli.ingest import sandbox

    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_CORPUS / "manuals", docs)
    index = Index.open(tmp_path / "store", create=True)
    monkeypatch.setattr(sandbox, "python_executable", lambda: "/bin/false")  # an interpreter that exits at once
    with pytest.raises(SmartError) as failed:
        index.update([docs], ocr="never")
    assert failed.value.kind is ErrorKind.WORKER_FAILED
    assert "could not start" in str(failed.value)
    monkeypatch.undo()
    summary = Index.open(tmp_path / "store", create=True).update([docs], ocr="never")
    assert (summary.added, summary.skipped) == (2, [])


def test_workers_start_when_python_is_embedded_in_another_program(tmp_path, monkeypatch):
    """In an application that embeds Python, sys.executable names the application (or nothing):
    the workers still start on this interpreter."""
    import sys as system

    monkeypatch.setattr(system, "executable", "")
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE_CORPUS / "manuals", docs)
    summary = Index.open(tmp_path / "store", create=True).update([docs], ocr="never")
    assert (summary.added, summary.skipped) == (2, [])


def test_opening_a_missing_store_is_a_typed_error(tmp_path):
    with pytest.raises(StoreMissing) as raised:
        Index.open(tmp_path / "nowhere")
    assert raised.value.kind is ErrorKind.STORE_MISSING
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(SmartError) as empty:
        Index.open(tmp_path / "new", create=True).search("anything")
    assert empty.value.kind is ErrorKind.STORE_EMPTY


def test_search_like_status_and_compact_agree_with_the_cli(sample_store):
    store, corpus = sample_store
    index = Index.open(store)
    hits = index.search("tyre pressure", k=3)
    cli = json.loads(run_smart("search", "tyre pressure", "--store", store, "-k", "3", "--json", check=True).stdout)
    assert [(h.path, h.page, round(h.score, 6), h.snippet) for h in hits] == [
        (r["path"], r["page"], r["score"], r["snippet"]) for r in cli["results"]
    ]
    assert hits[0].score == pytest.approx(1.0 * hits[0].anchor + 5.0 * hits[0].late, abs=1e-5)

    assert [h.kind for h in index.search("tyre pressure", k=10, scope=Scope(kinds=("image",)))] == []
    pooled = index.search("tyre pressure", k=3, mode="pooled")
    assert all(h.late is None and h.score == h.anchor for h in pooled)

    like = index.like(hits[0].path, page=hits[0].page, k=3)
    assert (hits[0].path, hits[0].page) not in {(h.path, h.page) for h in like}
    with pytest.raises(SmartError) as missing:
        index.like(hits[0].path, page=99)
    assert missing.value.kind is ErrorKind.NOT_FOUND and missing.value.details["pages"]

    status = index.status()
    assert status.encoded_items == len(index) == 13 and status.healthy
    assert status.as_json() == json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    result = index.compact()
    assert result.segments_rewritten == 0 and result.segments == 1


def test_late_mode_scores_every_page_and_has_no_nan(sample_store):
    """MaxSim only means MaxSim over every page, whatever the shortlist; 0 * -inf never happens."""
    store, _ = sample_store
    tiny_shortlist = Index.open(store, candidates=1)
    exhaustive = Index.open(store, candidates=None)
    late = tiny_shortlist.search("tyre pressure", k=20, mode="late")
    assert len(late) == 13
    assert [(h.path, h.page, h.score) for h in late] == [
        (h.path, h.page, h.score) for h in exhaustive.search("tyre pressure", k=20, mode="late")
    ]
    smart = tiny_shortlist.search_many(["tyre pressure", "repot a plant"], k=20)
    assert [len(hits) for hits in smart] == [1, 1]  # each query keeps its own shortlist of one
    assert all(h.score == h.score for hits in smart for h in hits)  # no NaN


def test_importing_the_front_door_loads_no_model_code():
    program = "import sys, smartcli; smartcli.Index; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
    assert result.stdout.strip() == "[]", result.stderr
