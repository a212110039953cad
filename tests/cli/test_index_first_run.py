"""Issue 23 item 8: what a first `smart index` leaves behind and says, on the README's main job,
a dry run and an empty folder."""

import json
import os
import shutil

from tests.conftest import SAMPLE_CORPUS, run_smart


def test_a_dry_run_on_a_new_store_leaves_nothing_behind(tmp_path):
    store = tmp_path / "new-store"
    plan = json.loads(run_smart("index", SAMPLE_CORPUS, "--store", store, "--dry-run", "--json", check=True).stdout)
    assert len(plan["add"]) == 7
    assert not store.exists()
    # The default store too, and the folders above it.
    data_home = tmp_path / "xdg-fresh"
    run_smart("index", SAMPLE_CORPUS, "--dry-run", env={"XDG_DATA_HOME": str(data_home)}, check=True)
    assert not data_home.exists()
    # A folder that holds other things is still refused as it is (nothing in it changed).
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("milk")
    refused = run_smart("index", SAMPLE_CORPUS, "--store", tmp_path / "notes", "--dry-run")
    assert refused.returncode == 10, refused.stderr
    assert os.listdir(tmp_path / "notes") == ["todo.txt"]


def test_an_empty_folder_is_the_same_clear_error_as_a_folder_of_text_files_and_is_not_recorded(tmp_path):
    store = tmp_path / "store"
    (tmp_path / "empty").mkdir()
    empty = run_smart("index", tmp_path / "empty", "--store", store)
    assert empty.returncode == 2, empty.stderr
    assert f"no indexable files under {tmp_path / 'empty'} (no files at all); nothing was indexed" in empty.stderr
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("words")
    texts = run_smart("index", tmp_path / "texts", "--store", store)
    assert texts.returncode == 2 and "no indexable files under" in texts.stderr
    assert not store.exists()  # nothing recorded: no store made for it
    # Once the store holds files, an empty folder is still no indexable file.
    run_smart("index", SAMPLE_CORPUS / "manuals", "--store", store, "--ocr", "never", check=True)
    again = run_smart("index", tmp_path / "empty", "--store", store, "--json")
    assert again.returncode == 2, again.stdout
    from smartcli.store.catalog import Store

    with Store.open(store) as opened:
        assert opened.roots == [str(SAMPLE_CORPUS / "manuals")]


def test_the_readme_main_job_indexes_the_sample_corpus_without_a_warning(tmp_path):
    """The sample's generator lived in the corpus: the first run warned `not indexable: 1 .py`."""
    corpus = tmp_path / "sample_corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)  # as it is in the repository, nothing left out
    result = run_smart("index", corpus, "--store", tmp_path / "store", "--ocr", "never")
    assert result.returncode == 0, result.stderr
    assert "not indexable" not in result.stderr, result.stderr
    assert result.stdout.startswith("7 added"), result.stdout
