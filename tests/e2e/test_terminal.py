"""`smart search` in a real process: on a terminal (colour, NO_COLOR), shell completion, start-up imports."""

import os

from tests.terminal import COLOUR_SGR, Terminal, plain


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


def test_an_80_column_terminal_gets_each_hit_on_a_few_lines_with_its_path_whole(sample_store):
    import re

    store, corpus = sample_store
    with Terminal("search", "tyre pressure", "--store", store, "-k", "3", env={"TERM": "xterm-256color"}, columns=80) as term:
        assert term.wait() == 0
    shown = plain(term.output)
    path = str(corpus / "hobbies" / "bicycle-maintenance.pdf")
    # Folded, if at all, right after a "/", never inside a name (no "maintena|nce.pdf").
    assert re.search(r"/(?:\n *)?".join(map(re.escape, path.split("/"))) + ":1", shown), shown
    lines = shown.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"^ *\d+ +-?\d+\.\d{3} ", line)]
    assert len(starts) == 3
    assert max(b - a for a, b in zip(starts, starts[1:] + [len(lines)])) <= 5, shown
