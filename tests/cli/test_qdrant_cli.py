"""`smart index --qdrant`, `smart search --qdrant` and `smart sync` in process, on Qdrant's embedded engine."""

import json
import shutil

import pytest

pytest.importorskip("qdrant_client")

from tests.conftest import SAMPLE_CORPUS, run_smart  # noqa: E402


def test_index_search_and_sync_through_qdrant(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS / "hobbies", corpus)
    store, db = tmp_path / "store", tmp_path / "db"
    indexed = run_smart(
        "index", corpus, "--store", store, "--ocr", "never", "--token-dtype", "float16", "--qdrant", db, "--collection", "c", "--json"
    )
    assert indexed.returncode == 0, indexed.stderr
    summary = json.loads(indexed.stdout)
    assert summary["qdrant"]["upserted"] == summary["pages_encoded"] > 0
    for extra in ([], ["--mode", "late"], ["--glob", "*.pdf", "-k", "3"]):
        local = json.loads(run_smart("search", "tyre pressure", "--store", store, "--json", *extra, check=True).stdout)
        remote = json.loads(run_smart("search", "tyre pressure", "--qdrant", db, "--collection", "c", "--json", *extra, check=True).stdout)
        assert [(r["path"], r["page"], r["snippet"]) for r in local["results"]] == [
            (r["path"], r["page"], r["snippet"]) for r in remote["results"]
        ]
        assert all(abs(a["score"] - b["score"]) < 1e-3 for a, b in zip(local["results"], remote["results"]))
    # A removed file leaves the collection with the next `smart index --qdrant`.
    gone = sorted(corpus.glob("*.pdf"))[0]
    gone.unlink()
    again = json.loads(
        run_smart("index", corpus, "--store", store, "--ocr", "never", "--qdrant", db, "--collection", "c", "--json", check=True).stdout
    )
    assert again["removed"] == 1 and again["qdrant"]["deleted"] > 0 and again["qdrant"]["upserted"] == 0
    files = run_smart("search", "tyre pressure", "--qdrant", db, "--collection", "c", "-l", "-k", "20", check=True).stdout
    assert str(gone) not in files
    synced = json.loads(run_smart("sync", "--store", store, "--qdrant", db, "--collection", "c", "--json", check=True).stdout)
    assert synced["upserted"] == synced["deleted"] == 0


def test_sync_needs_a_location_and_a_missing_collection_is_exit_4(tmp_path, monkeypatch):
    monkeypatch.delenv("SMART_QDRANT_URL", raising=False)
    result = run_smart("sync", "--store", tmp_path / "store")
    assert result.returncode == 2 and "--qdrant" in result.stderr
    result = run_smart("search", "anything", "--qdrant", tmp_path / "db", "--collection", "nope")
    assert result.returncode == 4 and "no Qdrant collection 'nope'" in result.stderr


@pytest.mark.parametrize("command", [["sync"], ["search", "tyre pressure"], ["index"]])
def test_without_qdrant_client_installed_the_cli_says_what_to_install(command, sample_store, tmp_path):
    """The qdrant extra is optional: with qdrant-client absent (None in sys.modules is how Python
    spells "not importable"), each Qdrant command says what to install, in one line, exit 1."""
    import subprocess
    import sys

    store, corpus = sample_store
    program = (
        "import sys; sys.modules['qdrant_client'] = None; from smartcli.cli import main; "
        f"sys.argv = ['smart', *{command!r}, '--store', {str(store)!r}, '--qdrant', {str(tmp_path / 'db')!r}]; main()"
    )
    if command == ["index"]:
        program = program.replace("'--store'", f"{str(corpus)!r}, '--store'")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "pip install qdrant-client" in result.stderr
    assert "Traceback" not in result.stderr and "ModuleNotFoundError" not in result.stderr
