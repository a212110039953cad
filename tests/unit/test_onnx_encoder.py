"""The torch-free query encoder (tokenizers + ONNX Runtime) against the torch encoder of the same model."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from smartcli.models import registry
from smartcli.models.base import default_model_path
from smartcli.models.onnx_text import OnnxTextQueryEncoder, load_onnx_query_encoder
from tests.conftest import ROOT

TEXTS = [
    "how do I change the default terminal",
    "wifi",
    "Tyre pressure (front) — 2.3 bar?  Ünïcödé, naïve café [UNK] C++ e-mail: x@y.org",
    "long " * 600,  # three windows
]


@pytest.fixture(scope="module")
def onnx_encoder():
    encoder = registry.load_query_encoder("default", "cpu")
    assert isinstance(encoder, OnnxTextQueryEncoder)
    return encoder


def test_token_states_and_pooled_vectors_equal_the_torch_encoder(onnx_encoder, encoder):
    assert onnx_encoder.info == encoder.info  # same fingerprint: a store accepts either
    for fast, slow in zip(onnx_encoder.encode_queries(TEXTS), encoder.encode_queries(TEXTS)):
        np.testing.assert_array_equal(fast.token_ids, slow.token_ids)
        np.testing.assert_array_equal(fast.spans, slow.spans)
        assert np.abs(fast.tokens - slow.tokens).max() < 1e-5
        assert np.abs(fast.pooled - slow.pooled).max() < 1e-5
        np.testing.assert_allclose(np.linalg.norm(fast.tokens, axis=1), 1.0, atol=1e-5)


def test_same_ranking_as_the_torch_encoder(onnx_encoder, encoder, sample_store):
    from smartcli import Index, Weights
    from smartcli.search.searcher import Searcher
    from smartcli.store.catalog import Store

    store, _ = sample_store
    index = Index.open(store, device="cpu")
    queries = ["how do I change the default terminal", "which channel avoids wifi interference", "tyre pressure", "vpn setup"]
    fast = index.search_many(queries, k=10)
    assert index._session.encoder is onnx_encoder  # the query session encodes without torch
    with Store.open(store) as opened:
        slow = Searcher(opened, encoder, device="cpu").search(queries, Weights(), k=10)
    for a, b in zip(fast, slow):
        assert [(h.path, h.page) for h in a] == [(h.path, h.page) for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-4)


def test_a_cold_search_imports_neither_torch_nor_transformers(sample_store, onnx_encoder):
    store, _ = sample_store
    code = (
        "import sys; from smartcli import Index; "
        f"hits = Index.open({str(store)!r}).search('change the default terminal', k=3); "
        "assert hits, 'no hits'; "
        "print(sorted(m for m in ('torch', 'transformers', 'numba') if m in sys.modules))"
    )
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_export_impossible_falls_back_to_torch_with_one_line(tmp_path, caplog):
    """A checkpoint without tokenizer.json: the ONNX encoder cannot be had; one warning names the
    model and the reason, and the torch encoder answers."""
    model = tmp_path / "no-tokenizer-json"
    shutil.copytree(default_model_path(), model, ignore=shutil.ignore_patterns("tokenizer.json"))
    encoder, reason = load_onnx_query_encoder(model, str(model), str(model))
    assert encoder is None and reason == "the checkpoint has no tokenizer.json"
    with caplog.at_level("WARNING", logger="smartcli"):
        fallback = registry.load_query_encoder(str(model), "cpu")
        again = registry.load_query_encoder(str(model), "cpu")
    assert not isinstance(fallback, OnnxTextQueryEncoder) and again is fallback
    lines = [r.getMessage() for r in caplog.records if "torch encoder" in r.getMessage()]
    assert lines == [f"smart: queries of {model} use the torch encoder: the checkpoint has no tokenizer.json"]
    np.testing.assert_allclose(fallback.encode_queries(["wifi"])[0].pooled.shape, (384,))


def test_a_file_in_the_exports_place_is_replaced_not_used(tmp_path, monkeypatch):
    """Not an ONNX model where the export should be (and no manifest): exported again, once,
    with one line, instead of falling back to torch on every run (tests/unit/test_onnx_exports.py
    has the other kinds of damage)."""
    monkeypatch.setenv("SMART_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model"
    shutil.copytree(default_model_path(), model)
    from smartcli.models.base import fingerprint_model_dir
    from smartcli.models.onnx_export import exported_model_path, file_digest, read_manifest

    target = exported_model_path(fingerprint_model_dir(model))
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not an onnx file")
    said = []
    encoder, reason = load_onnx_query_encoder(model, "m", "m", on_export=lambda t, damage: said.append((t, damage)))
    assert reason is None and isinstance(encoder, OnnxTextQueryEncoder)
    assert said == [(target, "no digest was recorded for it")]
    assert file_digest(target) == read_manifest(target)["sha256"]
    json.dumps(said[0][1])  # one plain line
    assert "\n" not in said[0][1]


@pytest.mark.parametrize("locked", ["folder", "file"])
def test_an_unreadable_cached_export_falls_back_to_torch_with_one_line(locked, sample_store, tmp_path):
    """A cache this user may not read (another user's, or chmod 000): the torch encoder answers,
    one line says why, and the results are those of the torch path."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.corpus import drop_read_override, permissions_can_hide_a_file

    if not permissions_can_hide_a_file(tmp_path):
        pytest.skip("permission bits do not apply to this user here")
    store, _ = sample_store
    cache = tmp_path / "cache"
    env = dict(os.environ, SMART_CACHE_DIR=str(cache))
    search = [sys.executable, "-m", "smartcli", "search", "tyre pressure", "--store", str(store), "-k", "3", "--files-only"]
    first = subprocess.run(search, env=env, cwd=ROOT, capture_output=True, text=True, check=True)  # makes the export
    (exported,) = (cache / "onnx").glob("*.onnx")
    (cache / "onnx" if locked == "folder" else exported).chmod(0)
    try:
        again = subprocess.run(search, env=env, cwd=ROOT, capture_output=True, text=True, preexec_fn=drop_read_override)
    finally:
        (cache / "onnx").chmod(0o755)
        exported.chmod(0o644)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    warned = [line for line in again.stderr.splitlines() if "use the torch encoder" in line]
    assert len(warned) == 1 and "unexpected error" not in again.stderr, again.stderr
