import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CORPUS = ROOT / "sample_corpus"


@contextmanager
def searching(store_path, shortlist=None):
    """(store, encoder, searcher) of a store opened for reading with its own model, on the CPU."""
    from smartcli.models.registry import load_encoder
    from smartcli.search.searcher import Searcher
    from smartcli.store.catalog import Store

    with Store.open(store_path) as store, store.read_snapshot():
        encoder = load_encoder(store.model.spec, "cpu", store.model.extra)
        yield store, encoder, Searcher(store, encoder, device="cpu", shortlist=shortlist)


@pytest.fixture(scope="session")
def encoder():
    from smartcli.models.registry import load_encoder

    return load_encoder("default", device="cpu")


@pytest.fixture(scope="session", autouse=True)
def _onnx_query_export():
    """The default model's ONNX export for torch-free queries, made (once per machine, cached in
    the user's cache folder) before any test searches, so that no test's output carries the
    one-time "exporting" line."""
    from smartcli.models.base import FP32, default_model_path, fingerprint_model_dir
    from smartcli.models.onnx_text import ensure_export

    ensure_export(default_model_path(), fingerprint_model_dir(default_model_path()), FP32)


@pytest.fixture(autouse=True)
def _isolated_store_env(monkeypatch, tmp_path):
    # Never touch the user's real default store from a test.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))  # the prompt's history
    monkeypatch.delenv("SMART_STORE", raising=False)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_smart(*args, input=None, env=None, check=False):
    """Run `smart` in this process through Typer's CliRunner: the real commands, without a
    process's start-up (models stay loaded between calls). Use :func:`run_smart_process` where
    signals, locks, pipes, terminals, start-up cost or a real process's exit code are the point."""
    from typer.testing import CliRunner

    from smartcli.cli import app

    result = CliRunner().invoke(app, [os.fspath(a) if isinstance(a, Path) else str(a) for a in args], input=input, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # the program would print "unexpected error": a defect either way
    ran = Ran(result.exit_code, result.stdout, result.stderr)
    if check and ran.returncode != 0:
        raise AssertionError(f"smart {' '.join(map(str, args))} exited {ran.returncode}:\n{ran.stderr}")
    return ran


def run_smart_process(*args, input=None, env=None, check=False):
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


def copy_store(store: Path, target: Path) -> Path:
    """Copy a store (in a child process) that this process may have open. Closing any file
    descriptor of a catalog cancels every POSIX lock this process holds on it, SQLite's
    included; copied in process, the next `smart` process to close the original would find
    it unlocked, delete its WAL and shared-memory files under this process's connections,
    and this process's later reads of it fail with "disk I/O error"."""
    subprocess.run(["cp", "-a", os.fspath(store), os.fspath(target)], check=True)
    return target


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
