"""`smart eval`: MRR@k, Recall@k and nDCG@k of the real search path on judged queries."""

from __future__ import annotations

from pathlib import Path

from smartcli.cli.errors import EXIT_OK, describe, exit_code
from smartcli.cli.present import print_json_line, stdout, warn


def run_eval(
    queries_file: Path,
    store_path: Path | None,
    lambda_anchor: float | None,
    lambda_late: float | None,
    sweep: bool,
    per_query: bool,
    k: int,
    json_output: bool,
    device: str,
    candidates: int | None,
) -> int:
    from smartcli import Index, SmartError

    try:
        index = Index.open(store_path, device=device, candidates=candidates)
        evaluation = index.evaluate(queries_file, k=k, lambda_anchor=lambda_anchor, lambda_late=lambda_late, sweep=sweep)
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    if json_output:
        print_json_line(evaluation.as_json(per_query))
    else:
        stdout.print(eval_table(evaluation))
        if per_query:
            stdout.print(per_query_table(evaluation.runs[evaluation.default_index][1], k))
    return EXIT_OK


def eval_table(evaluation):
    from rich.table import Table

    runs, best, k = evaluation.runs, evaluation.best, evaluation.k
    kinds = runs[0][1].kinds
    path = "exhaustive" if evaluation.candidates is None else f"two-stage, K={evaluation.candidates}"
    title = f"{len(runs[0][1].per_query)} queries; MRR, Recall and nDCG at {k} ({path})" + (
        "; nDCG per query kind on the right" if kinds else ""
    )
    table = Table(title=title, title_justify="left")
    table.add_column("mode", no_wrap=True)
    table.add_column("λ anchor", justify="right")
    table.add_column("λ late", justify="right")
    for name in ("MRR", "Recall", "nDCG"):
        table.add_column(name, justify="right")
    for kind in kinds:
        table.add_column(kind, justify="right")
    for i, (config, run) in enumerate(runs):
        mark = " *" if i == best else ""
        row = [config.mode + mark, f"{config.lambda_anchor:g}", f"{config.lambda_late:g}"]
        row += [f"{run.mean(m):.4f}" for m in ("rr", "recall", "ndcg")]
        row += [f"{run.mean('ndcg', kind):.4f}" for kind in kinds]
        table.add_row(*row, style="bold" if i == best else None)
    return table


def per_query_table(run, k: int):
    from rich.table import Table

    table = Table(title=f"per query ({run.label})", title_justify="left")
    for name, justify in (("qid", "left"), ("kind", "left"), ("rel", "right"), ("first hit", "right"), ("RR", "right"), (f"R@{k}", "right"), ("nDCG", "right"), ("query", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for score in run.per_query:
        first = "-" if score.first_hit is None else str(score.first_hit)
        style = "red" if score.first_hit is None else None
        table.add_row(
            score.qid, score.kind, str(score.relevant), first, f"{score.rr:.3f}", f"{score.recall:.3f}", f"{score.ndcg:.3f}", score.query, style=style
        )
    return table
