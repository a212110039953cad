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


def test_pictures_without_text_are_named_once_at_the_end_with_how_to_search_them(tmp_path):
    """Issue 23 item 5: photos were silently unsearchable with the default (text) model."""
    from tests.cli.test_ocr import needs_language_data

    photos = tmp_path / "photos"
    shutil.copytree(SAMPLE_CORPUS / "photos", photos)
    never = run_smart("index", photos, "--store", tmp_path / "never", "--ocr", "never", "--json")
    assert never.returncode == 0, never.stderr
    assert json.loads(never.stdout)["pictures_without_text"] == 2
    hints = [line for line in never.stderr.splitlines() if "without text cannot be found by the text model" in line]
    assert len(hints) == 1, never.stderr
    assert hints[0].startswith("smart: 2 pictures without text cannot be found by the text model")
    assert "`hf download openai/clip-vit-base-patch32`" in hints[0]
    assert f"`smart index {photos} --model openai/clip-vit-base-patch32 --store {tmp_path / 'never'}-images`" in hints[0]
    if not needs_language_data.args[0]:  # with OCR, the note's words are read: only the sunset is without text
        auto = run_smart("index", photos, "--store", tmp_path / "auto", "--json")
        assert json.loads(auto.stdout)["pictures_without_text"] == 1
        assert "smart: 1 picture without text cannot be found by the text model: to search it," in auto.stderr
    # Nothing is said when every picture has text, or on a run that adds none.
    again = run_smart("index", photos, "--store", tmp_path / "never", "--ocr", "never")
    assert "cannot be found by the text model" not in again.stderr


def test_a_model_that_is_not_on_disk_is_got_with_hf_download():
    """huggingface-hub 2.x ships `hf`; `huggingface-cli download` is gone."""
    from smartcli.models.base import not_on_disk
    from tests.conftest import ROOT

    assert "`hf download openai/clip-vit-base-patch32`" in str(not_on_disk("openai/clip-vit-base-patch32"))
    shipped = [p for pattern in ("smartcli/**/*.py", "docs/**/*.md", "*.md") for p in ROOT.glob(pattern)]
    assert [p for p in shipped if "huggingface-cli" in p.read_text(encoding="utf-8")] == []
