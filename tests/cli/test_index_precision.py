"""`smart index --precision`: a store records how its pages were encoded, says so, and keeps it."""

import json
import shutil

from tests.conftest import SAMPLE_CORPUS, run_smart


def test_an_int8_store_is_indexed_reported_searched_and_kept(tmp_path):
    corpus, store = tmp_path / "corpus", tmp_path / "store"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    run_smart("index", corpus, "--store", store, "--ocr", "never", "--precision", "int8", check=True)

    status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    assert status["precision"] == "int8"
    assert "pages in int8" in run_smart("status", "--store", store, check=True).stdout

    hits = json.loads(run_smart("search", "which channel avoids wifi interference", "--store", store, "--json", check=True).stdout)
    assert hits["results"][0]["file"] == "home-network.pdf"

    refused = run_smart("index", corpus, "--store", store, "--precision", "fp32")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "smart: this store was indexed with --precision int8; use that, or `smart index --rebuild` to change it"
    ]
    rebuilt = run_smart("index", corpus, "--store", store, "--ocr", "never", "--precision", "fp32", "--rebuild", check=True)
    assert rebuilt.returncode == 0
    assert json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)["precision"] == "fp32"


def test_int8_is_refused_for_a_model_that_reads_pixels(tmp_path, tiny_checkpoints):
    image_model = next(path for name, path in tiny_checkpoints.items() if "clip" in name)
    refused = run_smart("index", SAMPLE_CORPUS / "photos", "--store", tmp_path / "store", "--model", image_model, "--precision", "int8")
    assert refused.returncode == 2
    assert "int8 is for text models" in refused.stderr and not (tmp_path / "store").exists()


def test_a_new_store_is_fp32_auto_is_int8_on_the_cpu_and_a_store_keeps_what_it_has(tmp_path):
    new, auto = tmp_path / "new", tmp_path / "auto"
    run_smart("index", SAMPLE_CORPUS / "manuals", "--store", new, "--ocr", "never", check=True)
    assert json.loads(run_smart("status", "--store", new, "--json", check=True).stdout)["precision"] == "fp32"
    run_smart("index", SAMPLE_CORPUS / "manuals", "--store", auto, "--ocr", "never", "--device", "cpu", "--precision", "auto", check=True)
    assert json.loads(run_smart("status", "--store", auto, "--json", check=True).stdout)["precision"] == "int8"
    # Later runs without --precision (or with auto) encode new pages as the store's first run did.
    for store, kept in ((new, "fp32"), (auto, "int8")):
        run_smart("index", SAMPLE_CORPUS / "manuals", SAMPLE_CORPUS / "hobbies", "--store", store, "--ocr", "never", check=True)
        status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
        assert status["precision"] == kept and status["files"] == {"pdf": 4}
