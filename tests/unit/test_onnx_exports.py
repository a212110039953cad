"""The cached ONNX exports: checked against the manifest written when they were made, made again
(once, atomically, with one line) when damaged, and ONNX Runtime's own files kept out of the
user's cache folder."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from smartcli.models import onnx_text
from smartcli.models.base import FP32, INT8, default_model_path, fingerprint_model_dir
from smartcli.models.onnx_export import check_export, exported_model_path, file_digest, manifest_path, read_manifest
from smartcli.models.onnx_text import ensure_export, load_onnx_encoder
from tests.conftest import ROOT
from tests.onnx_damage import KINDS, damage

TEXTS = ["how do I change the default terminal", "wifi channel interference", "long " * 400]


@pytest.fixture(scope="module")
def whole_exports():
    """The default model's float32 and int8 exports in the user's cache (made once per machine)."""
    model = default_model_path()
    fingerprint = fingerprint_model_dir(model)
    return {precision: ensure_export(model, fingerprint, precision)[0] for precision in (FP32, INT8)}


@pytest.fixture()
def cache(tmp_path, monkeypatch, whole_exports):
    """A fresh cache folder holding copies of the whole exports and their manifests."""
    monkeypatch.setenv("SMART_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "onnx").mkdir(parents=True)
    for precision, export in whole_exports.items():
        copy = exported_model_path(fingerprint_model_dir(default_model_path()), precision)
        shutil.copyfile(export, copy)
        shutil.copyfile(manifest_path(export), manifest_path(copy))
    return tmp_path / "cache" / "onnx"


def load(precision=INT8):
    said = []
    encoder, reason = load_onnx_encoder(default_model_path(), "default", "m", precision, on_export=lambda t, d: said.append((t, d)))
    return encoder, reason, said


def clean_encodings(whole_exports, precision):
    encoder = onnx_text.OnnxTextEncoder(default_model_path(), whole_exports[precision], "default", "m", precision=precision)
    return encoder.encode_documents(TEXTS)


def test_a_whole_export_is_checked_by_one_stat_once_its_identity_is_recorded(cache):
    export = exported_model_path(fingerprint_model_dir(default_model_path()), FP32)
    first = check_export(export)  # a copy: another inode, so its digest decides, then is remembered
    again = check_export(export)
    assert (first.damage, first.hashed) == (None, True)
    assert (again.damage, again.hashed) == (None, False)


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_int8_export_is_made_again_before_it_answers(kind, cache, whole_exports):
    """Truncated, 2,000 weights' exponent bits flipped, another model's export, not ONNX at all,
    or the manifest gone: one line says so, the export is made again, and the answers are those
    of the whole export."""
    export = exported_model_path(fingerprint_model_dir(default_model_path()), INT8)
    damage(export, kind, seed=7, foreign=whole_exports[FP32])
    assert check_export(export).damage is not None
    encoder, reason, said = load(INT8)
    assert reason is None and len(said) == 1
    assert said[0][0] == export and said[0][1]  # the damage is named
    assert file_digest(export) == read_manifest(export)["sha256"]
    for fresh, clean in zip(encoder.encode_documents(TEXTS), clean_encodings(whole_exports, INT8)):
        np.testing.assert_array_equal(fresh.tokens, clean.tokens)
    assert load(INT8)[2] == []  # made once: the next process uses it as it is


def test_bit_flips_in_the_float32_export_are_caught_and_it_is_exported_again(cache, whole_exports):
    export = exported_model_path(fingerprint_model_dir(default_model_path()), FP32)
    damage(export, "bit flips", seed=3)
    encoder, reason, said = load(FP32)
    assert reason is None and [d for _, d in said] == ["its SHA-256 differs from the one recorded when it was made"]
    for fresh, clean in zip(encoder.encode_documents(TEXTS), clean_encodings(whole_exports, FP32)):
        assert np.abs(fresh.tokens - clean.tokens).max() < 1e-5


def test_an_export_onnx_runtime_refuses_is_made_again_once(cache, whole_exports):
    """An export that matches its manifest but does not load (it was already broken when made):
    made again, once, instead of falling back to torch on every run."""
    from smartcli.models.onnx_export import write_export

    export = exported_model_path(fingerprint_model_dir(default_model_path()), INT8)
    write_export(export, lambda tmp: tmp.write_bytes(b"\x08\x07broken"), INT8, "x")
    encoder, reason, said = load(INT8)
    assert reason is None and len(said) == 1 and said[0][1].startswith("the ONNX model could not be loaded")
    assert load(INT8)[2] == []


def test_a_fresh_export_onnx_runtime_refuses_is_not_made_on_every_run(cache, monkeypatch):
    """When even a freshly made export does not load, that is remembered (for this ONNX Runtime):
    later runs say why at once, without making it again."""
    made = []

    def broken(source, tmp):
        made.append(tmp)
        tmp.write_bytes(b"\x08\x07broken")

    export = exported_model_path(fingerprint_model_dir(default_model_path()), INT8)
    export.unlink()
    monkeypatch.setattr(onnx_text, "export_int8", broken)
    first = load(INT8)
    second = load(INT8)
    assert first[0] is None and first[1].startswith("the ONNX model could not be loaded")
    assert second[0] is None and second[1] == first[1] and second[2] == [] and len(made) == 1


def test_a_cold_search_leaves_nothing_of_onnx_runtime_in_the_cache_folder(tmp_path, sample_store, whole_exports):
    """ONNX Runtime's telemetry client wrote $XDG_CACHE_HOME/Microsoft/DeveloperTools/ at import."""
    store, _ = sample_store
    xdg = tmp_path / "xdg-cache"
    xdg.mkdir()
    env = dict(os.environ, XDG_CACHE_HOME=str(xdg), SMART_CACHE_DIR=str(whole_exports[FP32].parent.parent))
    env.pop("ORT_DISABLE_TELEMETRY", None)
    ran = subprocess.run(
        [sys.executable, "-m", "smartcli", "search", "tyre pressure", "--store", str(store), "--files-only"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr == ""
    assert sorted(p.name for p in xdg.iterdir()) == []


def test_a_whole_export_in_a_folder_this_user_may_not_write_is_used(cache, tmp_path):
    """A copied cache on a read-only folder: checked by its digest (its identity cannot be
    recorded there) and used, neither refused nor made again."""
    from tests.corpus import permissions_can_hide_a_file

    if not permissions_can_hide_a_file(tmp_path):
        pytest.skip("permission bits do not apply to this user here")
    cache.chmod(0o555)
    try:
        encoder, reason, said = load(FP32)
    finally:
        cache.chmod(0o755)
    assert reason is None and encoder is not None and said == []
