"""Smoke runs of the product benchmarks on tiny inputs: each must run to its end and print its figures.

The figures themselves are measured by hand (README, "Speed and size"), never asserted here.
Experiments that answered their question are not benchmarks (docs/experiments.md) and run nowhere.
"""

import ast
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.unit.test_eval import SAMPLE_JUDGMENTS

BENCHMARKS = ROOT / "benchmarks"


def run_benchmark(name, *args):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / name), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture()
def judged(tmp_path):
    path = tmp_path / "judged.jsonl"
    path.write_text("\n".join(json.dumps(j) for j in SAMPLE_JUDGMENTS) + "\n")
    return path


def private_names(source: str) -> list[str]:
    """Underscore names a module imports or reaches for as attributes (dunders aside)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            if node.module and any(part.startswith("_") for part in node.module.split(".")[1:]):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if any(part.startswith("_") for part in a.name.split(".")[1:])]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            found.append(node.attr)
    return found


def test_benchmarks_use_no_private_name():
    scripts = sorted(BENCHMARKS.glob("*.py"))
    assert scripts
    assert {p.name: private_names(p.read_text(encoding="utf-8")) for p in scripts} == {p.name: [] for p in scripts}


@pytest.mark.parametrize("name", ["cold_start.py", "gpu_vision_check.py", "ocr_word_recall.py", "scanned_corpus.py"])
def test_benchmarks_without_a_smoke_run_here_still_describe_themselves(name):
    # Their smoke runs take longer than this suite should (fresh processes, OCR, tiny vision models).
    out = run_benchmark(name, "--help")
    assert "--smoke" in out and len(out.splitlines()) > 10


def test_maxsim_kernel_smoke():
    out = run_benchmark("maxsim_kernel.py", "--smoke", "--device", "cpu")
    assert "of peak" in out and "MaxSim" in out and "ms CPU" in out


def test_index_throughput_smoke():
    out = run_benchmark("index_throughput.py", "--smoke")
    assert "raw torch (fp32)" in out and "raw ONNX Runtime int8" in out and "ms CPU a page" in out
    assert "int8 states against torch's" in out and "padding, batches of 32 windows" in out
    assert "smart index --precision int8" in out and "int8 pages, fp32 queries (smart search)" in out


def test_export_integrity_smoke():
    out = run_benchmark("export_integrity.py", "--smoke")
    assert "identity check (one stat" in out and "SHA-256 of the fp32 export" in out and "probe query" in out
    for kind in ("bit flips", "one flip", "truncated", "foreign file", "not ONNX", "no manifest"):
        assert f"{kind:13}   1 damaged exports: 1 caught" in out


def test_identical_files_smoke(tmp_path):
    out = run_benchmark("identical_files.py", "--smoke", "--kind", "copies", "--workdir", tmp_path / "identical")
    assert "     20 files" in out and "     40 files" in out and "CPU ms a file" in out and "start-up" in out


def test_search_latency_smoke(tmp_path):
    out = run_benchmark("search_latency.py", "--smoke", "--workdir", tmp_path / "latency")
    assert "two-stage" in out and "exhaustive" in out and "peak resident memory" in out and "CPU median" in out


def test_token_formats_smoke(judged):
    out = run_benchmark("token_formats.py", "--smoke", "--corpus", ROOT / "sample_corpus", "--queries", judged)
    lines = out.splitlines()
    assert (
        lines[1].startswith("format")
        and any(line.startswith("binary") for line in lines)
        and any(line.startswith("float16") for line in lines)
    )


def test_token_pooling_smoke():
    lines = run_benchmark("token_pooling.py", "--smoke").splitlines()
    assert lines[1].startswith("reduction") and [line.split()[0] for line in lines[2:]] == ["none", "ward:0.5", "adjacent:2", "nopunct"]


def test_two_stage_and_bm25_smoke(sample_store, judged):
    store, _ = sample_store
    out = run_benchmark("two_stage.py", "--smoke", "--store", store, "--queries", judged)
    assert "top-10 kept" in out and "(all)" in out and "ms CPU" in out
    out = run_benchmark("bm25_baseline.py", "--store", store, "--queries", judged)
    assert "BM25" in out and "smart" in out and "nDCG / BM25" in out


def test_query_profile_smoke(sample_store, judged):
    out = run_benchmark("query_profile.py", "--store", sample_store[0], "--queries", judged)
    assert "encode the query" in out and "total" in out and "CPU: median" in out


def test_serve_latency_smoke(sample_store):
    out = run_benchmark("serve_latency.py", "--smoke", "--store", sample_store[0])
    assert "cold: first result page" in out and "thumbnail  320 px wide" in out and "ratio cold / warm" in out and "server CPU" in out


def test_qdrant_mirror_smoke(sample_store, judged, tmp_path):
    pytest.importorskip("qdrant_client")
    mine = tmp_path / "store"
    shutil.copytree(sample_store[0], mine)  # the sync records its state in the store's catalog
    out = run_benchmark("qdrant_mirror.py", "--smoke", "--store", mine, "--queries", judged, "--workdir", tmp_path / "work")
    assert "top-10 overlap" in out and "queries/s" in out and "bytes per page" in out and "CPU" in out


def test_integrity_smoke(sample_store):
    out = run_benchmark("integrity.py", sample_store[0], "--smoke")
    assert "bit flips, one per trial" in out and "contiguous + row CRC-32" in out
    assert "data     after compact                   5 /    0 /    0 of 5" in out


def test_tune_time_smoke(sample_store, judged):
    out = run_benchmark("tune_time.py", "--smoke", "--store", sample_store[0], "--queries", judged)
    assert "tune: " in out and "CPU seconds" in out and "per 1,000 pages" in out and "smart  nDCG@10" in out


def test_long_file_memory_smoke(tmp_path):
    out = run_benchmark("long_file_memory.py", "--smoke", "--workdir", tmp_path / "long")
    assert "peak memory ratio" in out and "32 pages" in out and "CPU s" in out


def test_watch_freshness_smoke():
    out = run_benchmark("watch_freshness.py", "--smoke")
    assert (
        "freshness,     1-page PDF: median" in out
        and "5-page PDF" in out
        and "of one core (goal: under 1%)" in out
        and "MB resident" in out
    )


def test_mcp_roundtrip_smoke(sample_store):
    pytest.importorskip("mcp.server.mcpserver")
    out = run_benchmark("mcp_roundtrip.py", "--smoke", "--store", sample_store[0])
    assert "same pages in the same order for 3 of them" in out and "MCP round trip / smart search, median" in out and "server CPU" in out


def test_scale_smoke():
    """benchmarks/scale.py prints every target of issue 24 (the synthetic-store builder and the
    first-stage benchmark run inside it)."""
    out = run_benchmark("scale.py", "--smoke")
    for line in ("search without encode", "search with encode", "snippets + explain", "the query encode alone", "nDCG@10", "KB a page"):
        assert line in out
    assert "synthetic store, 200 pages" in out and "overlap" in out and "resident memory: private" in out
    assert "first-stage recall of the exhaustive top 10" in out and "target" in out
    assert "equal top 10 on" in out and "outside the shortlist" in out and "dropped by the estimate" in out


def test_synthetic_mixed_pages_are_distinct_and_stored_as_smart_stores_them(sample_store, tmp_path):
    """benchmarks/synthetic_store.py --mode mix (issue 24): each page mixes runs of 2-4 real pages,
    no two pages share most of their token rows (no bits flipped here, so shared rows are equal
    bytes), and the store is written by the real store code: it opens, its segments are in the current format,
    and each page's spans fall inside its text."""
    import h5py
    import numpy as np

    from smartcli.search.searcher import Searcher
    from smartcli.store.catalog import Store
    from smartcli.store.segments import SEGMENT_FORMAT

    out = tmp_path / "mix"
    built = run_benchmark("synthetic_store.py", "--source", sample_store[0], "--pages", 30, "--per-file", 10, "--flip", 0, "--out", out)
    assert "0 of 30 pages mix two source pages that another page mixes too" in built
    store = Store.open(out)
    searcher = Searcher(store, None, device="cpu")
    assert len(searcher) == 30
    for segment in (out / "segments").rglob("*.h5"):
        with h5py.File(segment, "r") as h5:
            assert h5.attrs["segment_format"] == SEGMENT_FORMAT
    rows = []
    for index, item in enumerate(searcher.items.many(range(len(searcher)))):
        spans = searcher.page_spans(index)
        assert spans is not None and spans.min() >= 0 and spans.max() <= len(item.text)
        rows.append({bytes(r) for r in np.asarray(searcher.stored_tokens(index).data)})
    shared = max(len(a & b) / min(len(a), len(b)) for i, a in enumerate(rows) for b in rows[i + 1 :])
    assert shared <= 0.5, f"two mixed pages share {shared:.0%} of their token rows"
    assert len({item.text for item in searcher.items.many(range(len(searcher)))}) == 30
    store.close()
