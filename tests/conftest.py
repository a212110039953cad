import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = ROOT / "sample_corpus"


@pytest.fixture(scope="session")
def encoder():
    from smartcli.encoders import load_encoder

    return load_encoder("default", device="cpu")


@pytest.fixture(autouse=True)
def _isolated_store_env(monkeypatch, tmp_path):
    # Never touch the user's real default store from a test.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))  # the prompt's history
    monkeypatch.delenv("SMART_STORE", raising=False)


def run_smart(*args, input=None, env=None, check=False):
    """Run the real `smart` entry point in a subprocess."""
    full_env = dict(os.environ, **(env or {}))
    result = subprocess.run(
        [sys.executable, "-m", "smartcli", *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"smart {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory):
    """The sample corpus indexed once with the default model (a real run of `smart index`).

    Text layers only (``--ocr never``): OCR has its own tests in test_ocr.py.
    """
    store = tmp_path_factory.mktemp("sample") / "store"
    corpus = tmp_path_factory.mktemp("corpus") / "sample_corpus"
    shutil.copytree(SAMPLE_CORPUS, corpus)
    result = run_smart("index", corpus, "--store", store, "--ocr", "never")
    assert result.returncode == 0, result.stderr
    return store, corpus


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """Tiny random-weight checkpoints of every pixel family, saved once per test session."""
    from tests.tiny_models import build_all

    return build_all(tmp_path_factory.mktemp("tiny-models"))
