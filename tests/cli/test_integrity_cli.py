"""Issue 13, item 9 at the command line: `smart status --verify` names what is damaged (exit 1,
`--json` too), `smart search` answers from the healthy segments with one warning per run, and
`smart compact` leaves a damaged segment out with a clear line."""

from __future__ import annotations

import json

from tests.conftest import copy_store, run_smart, run_smart_process
from tests.integrity import (
    flip_in_dataset,
    segment_files,
    swap_files,
    three_segments,  # noqa: F401 (a fixture)
)


def test_status_verify_on_a_healthy_store_reads_everything_and_exits_0(three_segments):
    result = run_smart("status", "--store", three_segments, "--verify")
    assert result.returncode == 0, result.stderr
    assert "3 segments (3 with checksums)" in result.stdout and "no damage found" in result.stdout
    as_json = run_smart("status", "--store", three_segments, "--verify", "--json")
    verify = json.loads(as_json.stdout)["verify"]
    assert as_json.returncode == 0 and verify["damaged"] == [] and verify["segments"] == 3 and verify["bytes"] > 0


def test_status_verify_names_each_damaged_segment_and_dataset_with_exit_1(three_segments, tmp_path):
    store = copy_store(three_segments, tmp_path / "store")
    a, b, c = segment_files(store)
    swap_files(a, b)
    flip_in_dataset(c, "tokens", element=0, byte=0, bit=0)

    plain = run_smart("status", "--store", store)
    assert plain.returncode == 0  # the cheap status does not read the segments

    result = run_smart("status", "--store", store, "--verify")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert f"smart: damaged: segment {c.stem}.h5: tokens: row 0 differs from what was written (CRC-32)" in lines
    for segment, other in ((a, b), (b, a)):
        assert f"smart: damaged: segment {segment.stem}.h5: is another segment's file ({other.stem}.h5) in its place" in lines
    assert lines[-1].startswith(f"smart: the store at {store} is damaged (3 problem(s) found)") and "smart index --rebuild" in lines[-1]
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr

    as_json = run_smart("status", "--store", store, "--verify", "--json")
    assert as_json.returncode == 1
    damaged = json.loads(as_json.stdout)["verify"]["damaged"]
    assert sorted((d["segment"], d["dataset"]) for d in damaged) == sorted([(a.stem, None), (b.stem, None), (c.stem, "tokens")])


def test_search_skips_a_damaged_segment_with_one_warning_per_run(three_segments, tmp_path):
    store = copy_store(three_segments, tmp_path / "store")
    c = segment_files(store)[2]
    flip_in_dataset(c, "offsets", element=1, byte=6, bit=3)
    queries = 'ferry timetable\nharbor route\n{"query": "timetable"}\n'
    # A real process: before the fix, the first query was "unexpected error" (exit 1).
    result = run_smart_process("search", "--queries", "-", "--store", store, "--json", input=queries)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 3 and all(sorted(r["file"] for r in a["results"]) == ["a.pdf", "b.pdf"] for a in answers)
    warned = [line for line in result.stderr.splitlines() if line.startswith("smart:")]
    assert warned == [
        f"smart: segment {c.stem}.h5 is damaged: offsets fails its checksum (Fletcher-32); its 1 page(s) are left out of the results (the rest of the store answers)"
    ]


def test_compact_leaves_a_damaged_segment_out_and_says_so(three_segments, tmp_path):
    store = copy_store(three_segments, tmp_path / "store")
    b = segment_files(store)[1]
    flip_in_dataset(b, "span_bytes", element=0, byte=0, bit=2)
    result = run_smart("compact", "--store", store)
    assert result.returncode == 1
    assert (
        f"smart: segment {b.stem}.h5 is damaged (span_bytes: row 0 differs from what was written (CRC-32)): left out of the compaction, as it is"
        in result.stderr
    )
    assert result.stdout.startswith("2 segment(s) rewritten into 1")
    assert b.exists()
    found = run_smart("search", "ferry timetable", "--store", store, "--json")
    assert found.returncode == 0 and sorted(r["file"] for r in json.loads(found.stdout)["results"]) == ["a.pdf", "c.pdf"]
