"""A corpus of hostile files indexed with good ones: good files are searchable, each bad one is reported exactly once."""

import json
import os
import subprocess
import sys

import pytest

from smartcli.cli.present import display_path, print_json_line, printable
from smartcli.ingest.files import UnreadableFile
from smartcli.ingest.render import validate_image
from tests.conftest import ROOT, run_smart
from tests.corpus import (
    BAD,
    DAMAGED,
    DAMAGED_FIRST_PAGE,
    GOOD,
    UNREADABLE,
    build_hostile_corpus,
    drop_read_override,
    name_of,
    permissions_can_hide_a_file,
    unlock,
    write_png,
)


@pytest.fixture
def hostile_corpus(tmp_path):
    """The corpus and the files that must be skipped (with a fragment of the reason)."""
    unreadable = permissions_can_hide_a_file(tmp_path)
    corpus = tmp_path / "hostile"
    build_hostile_corpus(corpus, unreadable)
    yield corpus, {**BAD, **(UNREADABLE if unreadable else {})}
    unlock(corpus)


def index_without_read_override(corpus, store):
    """`smart index` in a child that permission bits apply to, even when the tests run as root."""
    return subprocess.run(
        [sys.executable, "-m", "smartcli", "index", str(corpus), "--store", str(store), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=drop_read_override,
        errors="surrogateescape",
    )


def test_hostile_files_never_stop_a_run_and_each_is_reported_once(hostile_corpus, tmp_path):
    hostile_corpus, bad = hostile_corpus
    store = tmp_path / "store"
    result = index_without_read_override(hostile_corpus, store)
    assert result.returncode == 3, result.stderr  # finished, some files skipped
    assert "Traceback" not in result.stderr
    summary = json.loads(result.stdout)

    skipped = {os.path.basename(s["path"]): s["reason"] for s in summary["skipped"]}
    assert len(summary["skipped"]) == len(skipped), "a file was reported twice"
    assert set(skipped) == {name_of(n) for n in bad}
    for name, reason in bad.items():
        assert reason in skipped[name_of(name)], (name, skipped[name_of(name)])
    damaged = {os.path.basename(s["path"]): s["reason"] for s in summary["partly_indexed"]}
    assert set(damaged) == set(DAMAGED)
    for name, reason in DAMAGED.items():
        assert reason in damaged[name]

    # Exactly one stderr line per bad file, each naming it in printable form (no raw newline or bytes).
    lines = result.stderr.splitlines()
    for name in [*bad, *DAMAGED]:
        shown = printable(str(hostile_corpus / name_of(name)))
        assert sum(shown + ":" in line for line in lines) == 1, (shown, result.stderr)
    assert all(line.startswith("smart: ") for line in lines), result.stderr
    # Good files: the four PDFs, the nested one (once, despite the directory loop), the photo, the damaged PDF.
    assert summary["added"] == len(GOOD) + 1 + 1 + len(DAMAGED)

    queries = [json.dumps({"qid": name_of(name), "query": text}) for name, text in GOOD.items()]
    queries.append(json.dumps({"qid": "damaged", "query": DAMAGED_FIRST_PAGE}))
    queries.append(json.dumps({"qid": "nested", "query": "shepherds count the flock"}))
    found = run_smart("search", "--queries", "-", "--store", store, "-k", "3", input="\n".join(queries), check=True)
    for answer in map(json.loads, found.stdout.splitlines()):
        top = answer["results"][0]
        path = os.fsencode(top["path"])  # JSON escapes of undecodable bytes give the real name back
        if answer["qid"] == "damaged":
            assert os.path.basename(path) == b"truncated-late.pdf" and top["page"] == 1
        elif answer["qid"] == "nested":
            assert path.endswith(b"/sub/nested.pdf")
            assert not any("/loop/" in h["path"] for h in answer["results"])
        else:
            assert os.path.basename(path) == os.fsencode(answer["qid"])
            assert os.path.exists(path)

    status = json.loads(run_smart("status", "--store", store, "--json", check=True).stdout)
    assert status["files"] == {"pdf": len(GOOD) + 1 + len(DAMAGED), "image": 1}
    assert {os.path.basename(s["path"]) for s in status["partly_indexed"]} == set(DAMAGED)

    # A second run reports the same files again, and encodes nothing.
    again = index_without_read_override(hostile_corpus, store)
    assert again.returncode == 3
    summary = json.loads(again.stdout)
    assert summary["pages_encoded"] == 0 and summary["added"] == 0
    assert {os.path.basename(s["path"]) for s in summary["skipped"]} == {name_of(n) for n in bad}


def test_a_new_file_with_an_awkward_name_shows_on_one_line_in_dry_run(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    from tests.corpus import make_pdf

    make_pdf(os.path.join(os.fsencode(corpus), b"two\nlines \xff.pdf"), ["text"])
    result = run_smart("index", corpus, "--store", tmp_path / "store", "--dry-run")
    assert result.returncode == 0, result.stderr
    (line, unchanged) = result.stdout.splitlines()
    assert line.startswith("add ") and line.endswith("two\\nlines \\xff.pdf") and unchanged == "0 unchanged"


def test_image_validation_refuses_bombs_before_decoding(tmp_path):
    write_png(tmp_path / "bomb.png", 30000, 30000, rows=False)  # claims 900 megapixels
    with pytest.raises(UnreadableFile, match="decompression bomb"):
        validate_image(str(tmp_path / "bomb.png"))
    write_png(tmp_path / "small.png", 64, 64)
    validate_image(str(tmp_path / "small.png"))


def test_printable_escapes_what_would_break_a_line_or_the_encoding():
    weird = "a\nb\tc" + b"\xff".decode("utf-8", "surrogateescape") + "\x1b[31m é"
    assert printable(weird) == "a\\nb\\tc\\xff\\x1b[31m é"
    assert printable("plain name.pdf") == "plain name.pdf"
    assert display_path("/elsewhere/" + weird) == "/elsewhere/a\\nb\\tc\\xff\\x1b[31m é"


def test_json_lines_carry_undecodable_names_and_stay_valid_utf8(capsys):
    name = "/docs/caf" + b"\xe9".decode("utf-8", "surrogateescape") + "\n.pdf"
    print_json_line({"path": name})
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.encode("utf-8")
    assert os.fsencode(json.loads(out)["path"]) == b"/docs/caf\xe9\n.pdf"
