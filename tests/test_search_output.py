"""What `smart search` prints: file lines and JSON for programs, colour only for people who want it."""

import json
import os

from smartcli.store import LiveItem
from tests.conftest import run_smart
from tests.terminal import COLOUR_SGR, Terminal, plain


def test_files_only_prints_path_and_page_per_result(sample_store):
    store, corpus = sample_store
    result = run_smart("search", "how do I change the default terminal", "--store", store, "-k", "3", "--files-only", check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    paths_and_pages = [line.rsplit(":", 1) for line in lines]
    assert all(os.path.isfile(path) and page.isdigit() for path, page in paths_and_pages)
    assert lines[0] == f"{corpus / 'manuals' / 'terminal-guide.pdf'}:1"
    assert result.stderr == ""


def test_file_line_is_the_bare_path_for_an_image():
    from smartcli.output import file_line
    from smartcli.search import Hit

    def hit(kind, page):
        item = LiveItem(1, f"/photos/x.{kind}", page, kind, "seg", 0, 1, "")
        return Hit(rank=1, item=item, score=1.0, anchor=1.0, late=None, snippet="")

    assert file_line(hit("image", 1)) == "/photos/x.image"
    assert file_line(hit("pdf", 7)) == "/photos/x.pdf:7"


def test_json_answer_parses_with_highlights_on_matched_words(sample_store):
    store, _ = sample_store
    result = run_smart("search", "tyre pressure", "--store", store, "-k", "2", "--json", check=True)
    (line,) = result.stdout.splitlines()
    answer = json.loads(line)
    assert answer["query"] == "tyre pressure" and answer["qid"] is None
    top = answer["results"][0]
    assert top["file"] == "bicycle-maintenance.pdf" and top["page"] == 1
    highlighted = {top["snippet"][start:end] for start, end in top["highlights"]}
    assert highlighted == {"tyre", "pressure"}
    assert "matches" not in top  # only with --explain


def test_table_on_a_terminal_is_coloured_and_highlights_matched_words(sample_store):
    store, _ = sample_store
    with Terminal("search", "tyre pressure", "--store", store, "-k", "1", env={"TERM": "xterm-256color"}, columns=400) as term:
        assert term.wait() == 0
    assert COLOUR_SGR.search(term.output)
    assert "\x1b[1;35mpressure" in term.output  # the matched word in the highlight style
    assert "bicycle-maintenance.pdf" in plain(term.output)


def test_no_color_turns_colour_off_on_a_terminal(sample_store):
    store, _ = sample_store
    env = {"TERM": "xterm-256color", "NO_COLOR": "1"}
    with Terminal("search", "tyre pressure", "--store", store, "-k", "1", "--explain", env=env, columns=400) as term:
        assert term.wait() == 0
    assert not COLOUR_SGR.search(term.output), repr(term.output)
    assert "\x1b[1mpressure" in term.output  # the highlight stays visible in bold
    assert "bicycle-maintenance.pdf" in plain(term.output)


def test_table_into_a_pipe_has_no_escape_sequences(sample_store):
    store, _ = sample_store
    result = run_smart("search", "tyre pressure", "--store", store, "-k", "1", "--explain", env={"COLUMNS": "400"}, check=True)
    assert "\x1b" not in result.stdout
    assert "bicycle-maintenance.pdf" in result.stdout and "query token" in result.stdout


def test_conflicting_or_bad_arguments_exit_2_before_loading_anything(sample_store):
    store, _ = sample_store
    cases = [
        (["tyre", "--json", "--files-only"], "exclude each other"),
        (["tyre", "--explain", "--files-only"], "--explain"),
        (["tyre", "--kind", "video"], "--kind"),
        (["tyre", "--like", "x.pdf"], "only one of"),
        (["tyre", "--mode", "fancy"], "unknown mode"),
    ]
    for args, message in cases:
        result = run_smart("search", *args, "--store", store)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stdout == "" and "Traceback" not in result.stderr


def test_no_results_is_not_an_error(sample_store):
    store, _ = sample_store
    table = run_smart("search", "tyre pressure", "--store", store, "--kind", "image")
    assert table.returncode == 0 and table.stdout == "" and "no results" in table.stderr
    files = run_smart("search", "tyre pressure", "--store", store, "--min-score", "99", "--files-only")
    assert files.returncode == 0 and files.stdout == ""


def test_shell_completion_offers_search_options_and_their_values():
    import subprocess
    import sys

    from tests.conftest import ROOT

    def complete(words: str) -> list[str]:
        env = dict(os.environ, _SMART_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(len(words.split(" ")) - 1))
        program = "from smartcli.cli import app; app(prog_name='smart')"
        result = subprocess.run([sys.executable, "-c", program], env=env, cwd=ROOT, capture_output=True, text=True)
        return result.stdout.split()

    assert complete("smart search --fi") == ["--files-only"]
    assert complete("smart search --kind ") == ["pdf", "image"]
    assert complete("smart search --mode p") == ["pooled"]


def test_help_and_argument_errors_import_neither_numpy_nor_torch():
    import subprocess
    import sys

    from tests.conftest import ROOT

    for args, code in ((["--help"], 0), (["search", "--help"], 0), (["search", "x", "--json", "--files-only"], 2)):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "smartcli", *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == code
        imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
        assert "smartcli.cli" in imported
        assert not {"numpy", "torch", "transformers", "h5py"} & imported, args
