import importlib.util
import json
import math

import pytest

from smartcli.search.evaluate import JudgedQuery, JudgmentError, load_judgments, matches, score_query
from tests.conftest import ROOT, run_smart

SCORER = ROOT.parent / "shared" / "eval" / "score.py"

SAMPLE_JUDGMENTS = [
    {
        "qid": "s1",
        "query": "how do I change the default terminal",
        "relevant": [{"file": "terminal-guide.pdf", "page": 1}],
        "kind": "paraphrase",
    },
    {"qid": "s2", "query": "wifi channel interference", "relevant": [{"file": "home-network.pdf", "page": 2}], "kind": "keyword"},
    {"qid": "s3", "query": "what temperature is the loaf baked at", "relevant": [{"file": "sourdough.pdf", "page": 2}], "kind": "question"},
    {
        "qid": "s4",
        "query": "looking after plants",
        "relevant": [{"file": "houseplants.pdf", "page": 1}, {"file": "houseplants.pdf", "page": 2}],
        "kind": "paraphrase",
    },
    {"qid": "s5", "query": "bike chain oil", "relevant": [{"file": "hobbies/bicycle-maintenance.pdf", "page": 2}], "kind": "keyword"},
    {"qid": "s6", "query": "router administrator password", "relevant": [{"file": "sourdough.pdf", "page": 1}], "kind": "keyword"},
]


def load_scorer():
    if not SCORER.exists():
        pytest.skip(f"{SCORER} is not present (it lives in the shared development data)")
    spec = importlib.util.spec_from_file_location("dev_score", SCORER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_metrics_match_the_reference_scorer_on_edge_cases():
    scorer = load_scorer()
    relevant = {("a.pdf", 1), ("b.pdf", 7)}
    query = JudgedQuery("q", "text", relevant)
    rankings = [
        [],
        [("/x/a.pdf", 1)],
        [("/x/c.pdf", 1), ("/x/c.pdf", 1), ("/x/b.pdf", 7), ("/x/a.pdf", 1)],
        [("/x/c.pdf", i) for i in range(1, 10)] + [("/x/a.pdf", 1), ("/x/b.pdf", 7)],
        [("/x/a.pdf", 2), ("/x/b.pdf", 7), ("/x/b.pdf", 7), ("/x/a.pdf", 1)],
    ]
    for ranked in rankings:
        for k in (1, 3, 10):
            ours = score_query(query, ranked, k)
            theirs = scorer.score_query([(p.rsplit("/", 1)[1], page) for p, page in dict.fromkeys(ranked)], relevant, k)
            assert (ours.rr, ours.recall, ours.first_hit) == (theirs["rr"], theirs["recall"], theirs["first_hit"])
            assert math.isclose(ours.ndcg, theirs["ndcg"])


def test_files_match_by_base_name_or_path_suffix():
    assert matches("a.pdf", "/docs/x/a.pdf")
    assert not matches("a.pdf", "/docs/x/ba.pdf")
    assert matches("x/a.pdf", "/docs/x/a.pdf")
    assert not matches("y/a.pdf", "/docs/x/a.pdf")


def test_eval_agrees_with_score_py_on_a_real_run(sample_store, tmp_path):
    scorer = load_scorer()
    store, _ = sample_store
    judgments = tmp_path / "judged.jsonl"
    judgments.write_text("\n".join(json.dumps(j) for j in SAMPLE_JUDGMENTS[:3] + SAMPLE_JUDGMENTS[5:]) + "\n")
    result = run_smart("eval", "--queries", judgments, "--store", store, "--json", "--sweep", check=True)
    report = json.loads(result.stdout)
    assert report["queries"] == 4 and report["k"] == 10
    rows = {(r["mode"], r["lambda_anchor"], r["lambda_late"]): r for r in report["rows"]}
    assert ("pooled", 1.0, 0.0) in rows and ("late", 0.0, 1.0) in rows and ("smart", 1.0, 5.0) in rows
    assert ("smart", 1.0, 0.5) in rows and ("smart", 1.0, 16.0) in rows
    assert sum(r["best"] for r in report["rows"]) == 1
    for (mode, la, ll), row in rows.items():
        run = run_smart(
            "search", "--queries", judgments, "--store", store, "--mode", mode, "--lambda-anchor", la, "--lambda-late", ll, check=True
        ).stdout
        run_file = tmp_path / f"run-{mode}-{la}-{ll}.jsonl"
        run_file.write_text(run)
        queries = scorer.load_queries(str(judgments))
        ranked, _ = scorer.load_run(str(run_file), queries)
        for metric, key in (("mrr", "rr"), ("recall", "recall"), ("ndcg", "ndcg")):
            reference = sum(scorer.score_query(ranked.get(q, []), queries[q]["relevant"], 10)[key] for q in queries) / len(queries)
            assert row[metric] == pytest.approx(reference, abs=1e-4), (mode, la, ll, metric)
        if mode == "smart":
            break  # one smart row is enough to tie eval to search; the rest share its code


def test_eval_per_query_and_kinds(sample_store, tmp_path):
    store, _ = sample_store
    judgments = tmp_path / "judged.jsonl"
    judgments.write_text("\n".join(json.dumps(j) for j in SAMPLE_JUDGMENTS) + "\n")
    report = json.loads(run_smart("eval", "-q", judgments, "--store", store, "--json", "--per-query", check=True).stdout)
    per_query = {q["qid"]: q for q in report["per_query"]}
    assert per_query["s1"]["first_hit"] == 1
    assert per_query["s6"]["first_hit"] is None  # judged wrong on purpose: the router page is not about bread
    assert set(report["rows"][0]["per_kind"]) == {"paraphrase", "keyword", "question"}
    table = run_smart("eval", "-q", judgments, "--store", store, "--per-query", env={"COLUMNS": "200"}, check=True).stdout
    assert "nDCG" in table and "s6" in table


def test_malformed_judgments_are_a_one_line_error(tmp_path, sample_store):
    store, _ = sample_store
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"qid": "x", "query": "q"}\n')
    result = run_smart("eval", "--queries", bad, "--store", store)
    assert result.returncode == 2 and f"{bad}:1" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(JudgmentError, match="bad.jsonl:1"):
        load_judgments(str(bad))
