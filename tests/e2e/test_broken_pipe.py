"""Issue 23, item 6: when the reader of `smart`'s output goes away (`smart search ... | head -1`),
every command, in every output form, ends quietly with 141 (128 + SIGPIPE, as `grep` and `ls`
end), never with 1 or a message."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FORMS = {
    "table": ["search", "terminal", "-k", "14"],
    "json": ["search", "terminal", "--json"],
    "files": ["search", "terminal", "--files-only"],
    "explain": ["search", "terminal", "--explain", "-k", "3"],
    "queries": ["search", "--queries", "QUERIES"],
    "status": ["status"],
    "status --json": ["status", "--json"],
    "status --unencoded": ["status", "--unencoded"],
    "help": ["search", "--help"],
}


def run_with_reader_gone(args) -> subprocess.CompletedProcess:
    """``smart ARGS`` whose stdout is a pipe nobody reads any more: every write to it fails."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "smartcli", *args], stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=300
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize("form", list(FORMS))
def test_a_reader_that_went_away_ends_the_command_quietly_with_141(sample_store, tmp_path, form):
    store, _ = sample_store
    queries = tmp_path / "queries.txt"
    queries.write_text("terminal\nwatering\n")
    args = [str(queries) if a == "QUERIES" else a for a in FORMS[form]]
    if form != "help":
        args += ["--store", str(store)]
    result = run_with_reader_gone(args)
    assert result.returncode == 141, result.stderr
    assert result.stderr == ""


def test_head_reads_one_line_and_smart_ends_with_0_or_141_never_1(sample_store):
    store, _ = sample_store
    for _ in range(3):
        smart = subprocess.Popen(
            [sys.executable, "-m", "smartcli", "search", "terminal", "-k", "14", "--store", str(store)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        head = subprocess.Popen(["head", "-1"], stdin=smart.stdout, stdout=subprocess.PIPE)
        smart.stdout.close()
        first, _ = head.communicate(timeout=300)
        assert first.strip()
        assert smart.wait(timeout=300) in (0, 141)
        assert smart.stderr.read() == b""
        smart.stderr.close()
