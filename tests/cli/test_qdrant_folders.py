"""Issue 26, items 10, 12 and 13 on Qdrant's embedded mode: a store holding a file name that is not
UTF-8 syncs and is searched through Qdrant as it is locally; `--qdrant DIR` refuses a folder that
holds something and is not a Qdrant folder (exit 10, nothing touched), and a collection whose smart
metadata cannot be read is refused with a line (exit 2), never "unexpected error"."""

from __future__ import annotations

import json
import os
import shutil

import pytest

pytest.importorskip("qdrant_client")

from tests.conftest import SAMPLE_CORPUS, copy_store, run_smart  # noqa: E402

ODD = os.fsdecode(b"plants-\xff\xfe.pdf")  # a Latin-1 name: not UTF-8


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory):
    top = tmp_path_factory.mktemp("odd")
    docs = top / "docs"
    docs.mkdir()
    shutil.copy(SAMPLE_CORPUS / "houseplants.pdf", docs / ODD)
    shutil.copy(SAMPLE_CORPUS / "manuals" / "terminal-guide.pdf", docs / "terminal-guide.pdf")
    store = top / "store"
    run_smart("index", docs, "--store", store, "--ocr", "never", check=True)
    return store, docs


def answers(*args) -> dict:
    result = run_smart("search", *args, "--json", check=True)
    return json.loads(result.stdout)


def test_a_file_name_that_is_not_utf8_syncs_and_is_found_through_qdrant_as_locally(odd_store, tmp_path):
    store, docs = odd_store
    store = copy_store(store, tmp_path / "store")
    folder = tmp_path / "qdrant"
    first = run_smart("sync", "--store", store, "--qdrant", folder, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["upserted"] > 0
    again = run_smart("sync", "--store", store, "--qdrant", folder, "--json")  # every re-run failed the same way
    assert again.returncode == 0 and json.loads(again.stdout)["upserted"] == 0

    odd = os.fspath(docs / ODD)
    for extra in ([], ["--glob", "plants-*"], ["--path-prefix", f"{docs}/"], ["--like", f"{odd}:1"]):
        query = [] if extra[:1] == ["--like"] else ["watering"]
        local = answers(*query, *extra, "--store", store)
        remote = answers(*query, *extra, "--qdrant", folder)
        assert [(r["path"], r["page"]) for r in remote["results"]] == [(r["path"], r["page"]) for r in local["results"]]
        assert odd in [r["path"] for r in remote["results"]]


def test_sync_refuses_a_folder_that_holds_files_and_is_not_qdrants(sample_store, tmp_path):
    store = copy_store(sample_store[0], tmp_path / "store")
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("my own notes")
    result = run_smart("sync", "--store", store, "--qdrant", project)
    assert result.returncode == 10
    assert result.stderr == (
        f"smart: {project} is not a Qdrant folder (it holds files and no meta.json); nothing in it was touched: "
        "pass --qdrant an empty or new folder, or one `smart sync` filled\n"
    )
    assert os.listdir(project) == ["notes.txt"]


@pytest.mark.parametrize(
    "meta", ["{}", '{"name": "my project", "version": 3}', "not json", '{"collections": 5}', "[]", '{"collections": {"smart": 5}}']
)
def test_a_folder_with_a_foreign_meta_json_is_refused_untouched(sample_store, tmp_path, meta):
    store = copy_store(sample_store[0], tmp_path / "store")
    folder = tmp_path / "foreign"
    folder.mkdir()
    (folder / "meta.json").write_text(meta)
    for args in (("sync", "--store", store), ("search", "terminal")):
        result = run_smart(*args, "--qdrant", folder)
        assert result.returncode == 10, result.stderr
        assert result.stderr.startswith(f"smart: {folder} is not a Qdrant folder (its meta.json is ")
        assert os.listdir(folder) == ["meta.json"] and (folder / "meta.json").read_text() == meta


@pytest.mark.parametrize(
    "smart_meta",
    [
        {"layout": 1},
        "x",
        {"model": {"spec": 1}},
        {"model": {"spec": "x", "name": "n", "fingerprint": None, "family": "text", "dims": "384", "pooling": "mean", "max_length": 5}},
    ],
    ids=["no model", "a string", "a model of one field", "a model of wrong types"],
)
def test_a_collection_whose_smart_metadata_cannot_be_read_is_refused(sample_store, tmp_path, smart_meta):
    from qdrant_client import QdrantClient, models

    folder = tmp_path / "qdrant"
    client = QdrantClient(path=str(folder))
    anchor = models.VectorParams(size=4, distance=models.Distance.COSINE)
    client.create_collection("smart", vectors_config={"anchor": anchor}, metadata={"smart": smart_meta})
    client.close()
    store = copy_store(sample_store[0], tmp_path / "store")
    for args in (("sync", "--store", store), ("search", "terminal")):
        result = run_smart(*args, "--qdrant", folder)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("smart: the Qdrant collection 'smart' has smart metadata this version cannot read")
