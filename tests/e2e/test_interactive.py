"""`smart search` with no query on a terminal: a prompt that keeps the model and the index loaded."""

from tests.terminal import Terminal, plain

PROMPT = r"search> "


def test_prompt_answers_queries_recalls_history_and_quits_on_ctrl_d(sample_store, tmp_path):
    store, _ = sample_store
    state = tmp_path / "state"
    env = {"TERM": "xterm-256color", "XDG_STATE_HOME": str(state)}
    # Wide enough that the table folds no file name.
    with Terminal("search", "--store", store, "-k", "2", env=env, columns=300) as term:
        banner = plain(term.expect(PROMPT))
        assert "13 pages indexed" in banner and "Ctrl-D" in banner

        term.send("tyre pressure\n")
        answer = plain(term.expect(PROMPT))
        assert "bicycle-maintenance.pdf" in answer and "2 results in" in answer

        term.send("how long do I bake the loaf\n")
        answer = plain(term.expect(PROMPT))
        assert "sourdough.pdf" in answer and "bicycle-maintenance.pdf" not in answer

        term.send("\x10\n")  # Ctrl-P: the previous query from the history, run again
        again = plain(term.expect(PROMPT))
        assert again.count("how long do I bake the loaf") >= 2 and "sourdough.pdf" in again

        term.send("half a thought")
        term.expect("half a thought")  # echoed: readline is reading, so Ctrl-C reaches it there
        term.send("\x03")  # Ctrl-C drops the line, unsearched, and gives a new prompt
        dropped = plain(term.expect(PROMPT))
        assert "results in" not in dropped
        term.send("\x04")  # Ctrl-D quits
        assert term.wait() == 0
    assert "Traceback" not in term.output
    history = (state / "smart" / "search_history").read_text().splitlines()
    assert history == ["tyre pressure", "how long do I bake the loaf"]  # a repeat is kept once


def test_no_query_without_a_terminal_is_a_usage_error(sample_store):
    from tests.conftest import run_smart

    store, _ = sample_store
    result = run_smart("search", "--store", store, input="")
    assert result.returncode == 2
    assert "--queries" in result.stderr and result.stdout == ""


def test_ctrl_d_ends_the_prompt_with_every_answer_written(sample_store, tmp_path):
    """Ctrl-D ends the process at once (no teardown of the model runtime), so what must outlive it
    is checked: the answers on a redirected stdout, flushed (the saved history: the test above)."""
    store, _ = sample_store
    state = tmp_path / "state"
    answers = tmp_path / "answers.txt"
    env = {"TERM": "xterm-256color", "XDG_STATE_HOME": str(state), "COLUMNS": "200"}
    with answers.open("w") as out, Terminal("search", "--store", store, "-k", "3", env=env, stdout=out) as term:
        term.expect(PROMPT)  # on stderr, the terminal, as stdout is a file
        term.send("tyre pressure\n")
        term.expect(PROMPT)
        term.send("\x04")
        assert term.wait() == 0
    assert "Traceback" not in term.output
    table = answers.read_text()
    assert "tyre pressure" in table and "bicycle-maintenance.pdf" in table
    assert table.rstrip().endswith("┘")  # the whole table, its last line included (200 columns: a table)


def test_ctrl_d_at_the_first_prompt_exits_cleanly(sample_store, tmp_path):
    store, _ = sample_store
    env = {"TERM": "xterm-256color", "XDG_STATE_HOME": str(tmp_path / "state")}
    with Terminal("search", "--store", store, env=env) as term:
        term.expect(PROMPT)
        term.send("\x04")
        assert term.wait() == 0
    assert "Traceback" not in term.output and "Error" not in term.output


def test_a_query_that_cannot_be_searched_gets_its_line_and_the_prompt_goes_on(sample_store, tmp_path):
    """Issue 26, item 2: it ended the prompt with `unexpected error: ValueError` (exit 1)."""
    store, _ = sample_store
    env = {"TERM": "xterm-256color", "XDG_STATE_HOME": str(tmp_path / "state")}
    with Terminal("search", "--store", store, "-k", "1", env=env, columns=300) as term:
        term.expect(PROMPT)
        term.send("\U0001f99c\U0001f99c\n")
        said = plain(term.expect(PROMPT))
        assert "smart: the query has no word" in said
        term.send("tyre pressure\n")
        assert "bicycle-maintenance.pdf" in plain(term.expect(PROMPT))
        term.send("\x04")
        assert term.wait() == 0
    assert "Traceback" not in term.output and "unexpected error" not in term.output
