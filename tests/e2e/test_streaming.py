"""`smart search --queries -` as a co-process: each line in is answered before the next is sent."""

import json
import select
import subprocess
import sys

from tests.conftest import ROOT, run_smart

GUARD_SECONDS = 300  # only against a hang; a grouped (blocking) reader would hit it and fail


def read_answer(process) -> dict:
    ready, _, _ = select.select([process.stdout], [], [], GUARD_SECONDS)
    assert ready, "no answer to a query that was sent: the stream is not answered line by line"
    return json.loads(process.stdout.readline())


def test_each_query_is_answered_before_the_next_is_sent(sample_store):
    store, _ = sample_store
    process = subprocess.Popen(
        [sys.executable, "-m", "smartcli", "search", "--queries", "-", "--store", str(store), "-k", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        conversation = [
            ('{"qid": "q1", "query": "tyre pressure"}', "q1", "bicycle-maintenance.pdf"),
            ("when should I water my plants", None, "houseplants.pdf"),
            ("{not json", None, None),
            ('{"qid": 4, "query": "how long do I bake the loaf"}', 4, "sourdough.pdf"),  # the qid keeps its JSON type
        ]
        for line, qid, top_file in conversation:
            process.stdin.write(line + "\n")
            process.stdin.flush()
            answer = read_answer(process)
            assert answer["qid"] == qid
            if top_file is None:
                assert "not a JSON object" in answer["error"] and answer["results"] == []
            else:
                assert answer["results"][0]["file"] == top_file
                assert len(answer["results"]) == 1
        process.stdin.close()
        assert process.wait(timeout=GUARD_SECONDS) == 2  # one bad line: the run went on, and says so
        stderr = process.stderr.read()
        assert "stdin:3: not a JSON object" in stderr and "Traceback" not in stderr
    finally:
        process.kill()
        process.wait()


def test_queries_from_a_file_with_files_only_are_framed_per_query(sample_store, tmp_path):
    store, _ = sample_store
    queries = tmp_path / "queries.txt"
    queries.write_text("tyre pressure\nwhen should I water my plants\n\nhow long do I bake the loaf\n")
    result = run_smart("search", "--queries", queries, "--store", store, "-k", "2", "--files-only", check=True)
    blocks = result.stdout.split("\n\n")
    assert blocks[-1] == ""  # every answer, the last too, ends with an empty line
    answers = [block.splitlines() for block in blocks[:-1]]
    assert len(answers) == 3 and all(len(lines) == 2 for lines in answers)
    assert [lines[0].rsplit("/", 1)[1] for lines in answers] == [
        "bicycle-maintenance.pdf:1",
        "houseplants.pdf:1",
        "sourdough.pdf:2",
    ]
