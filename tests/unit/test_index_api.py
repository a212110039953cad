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
