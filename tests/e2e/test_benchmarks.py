"""Smoke runs of the benchmarks on tiny sizes: each must run to its end and print its figures.

The figures themselves are measured by hand (README, "Speed and size"), never asserted here.
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.unit.test_eval import SAMPLE_JUDGMENTS


def run_benchmark(name, *args):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture()
def judged(tmp_path):
    path = tmp_path / "judged.jsonl"
    path.write_text("\n".join(json.dumps(j) for j in SAMPLE_JUDGMENTS) + "\n")
    return path


def test_maxsim_kernel_smoke():
    out = run_benchmark("maxsim_kernel.py", "--smoke", "--device", "cpu")
    assert "of peak" in out and "MaxSim" in out


def test_index_throughput_smoke():
    out = run_benchmark("index_throughput.py", "--smoke")
    assert "raw forward passes" in out and "ratio" in out


def test_search_latency_smoke(tmp_path):
    out = run_benchmark("search_latency.py", "--smoke", "--workdir", tmp_path / "latency")
    assert "two-stage" in out and "exhaustive" in out and "peak resident memory" in out


def test_token_formats_smoke(judged):
    out = run_benchmark("token_formats.py", "--corpus", ROOT / "sample_corpus", "--queries", judged, "--formats", "binary,float16")
    lines = out.splitlines()
    assert lines[0].startswith("format") and any(l.startswith("binary") for l in lines) and any(l.startswith("float16") for l in lines)


def test_two_stage_and_bm25_smoke(sample_store, judged):
    store, _ = sample_store
    out = run_benchmark("two_stage.py", "--store", store, "--queries", judged, "--ks", "2,5")
    assert "top-10 kept" in out and "(all)" in out
    out = run_benchmark("bm25_baseline.py", "--store", store, "--queries", judged)
    assert out.startswith("BM25")


def test_serve_latency_smoke():
    out = run_benchmark("serve_latency.py", "--smoke")
    assert "cold: first result page" in out and "thumbnail  320 px wide" in out and "ratio cold / warm" in out


def test_qdrant_mirror_smoke(sample_store, judged, tmp_path):
    pytest.importorskip("qdrant_client")
    store, _ = sample_store
    mine = tmp_path / "store"
    __import__("shutil").copytree(store, mine)  # the sync records its state in the store's catalog
    out = run_benchmark("qdrant_mirror.py", "--smoke", "--store", mine, "--queries", judged, "--workdir", tmp_path / "work")
    assert "top-10 overlap" in out and "queries/s" in out and "bytes per page" in out


def test_integrity_smoke(sample_store):
    out = run_benchmark("integrity.py", sample_store[0], "--trials", "5")
    assert "bit flips, one per trial" in out and "contiguous + row CRC-32" in out
    assert "data     after compact                   5 /    0 /    0 of 5" in out


def test_long_file_memory_smoke(tmp_path):
    out = run_benchmark("long_file_memory.py", "--smoke", "--workdir", tmp_path / "long")
    assert "peak memory ratio" in out and "80 pages" in out
