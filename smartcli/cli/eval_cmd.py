"""`smart eval`: MRR@k, Recall@k and nDCG@k of the real search path on judged queries."""

from __future__ import annotations

from pathlib import Path

import typer

from smartcli import defaults
from smartcli.cli.errors import EXIT_OK, describe, exit_code
from smartcli.cli.options import DeviceOption, StoreOption
from smartcli.cli.present import print_json_line, stdout, warn


def evaluate(
    queries: Path = typer.Option(
        ...,
        "--queries",
        "-q",
        help='Judged queries, JSON lines: {"qid", "query", "relevant": [{"file", "page"}], "kind"?}. Files match by base name or by path.',
        show_default=False,
    ),
    store: Path | None = StoreOption,
    lambda_anchor: float | None = typer.Option(
        None,
        "--lambda-anchor",
        help=f"Weight of the pooled cosine for the smart row. Default: the store's (`smart tune`), else {defaults.LAMBDA_ANCHOR}.",
        show_default=False,
    ),
    lambda_late: float | None = typer.Option(
        None,
        "--lambda-late",
        help=f"Weight of the MaxSim term for the smart row. Default: the store's (`smart tune`), else {defaults.LAMBDA_LATE}.",
        show_default=False,
    ),
    sweep: bool = typer.Option(False, "--sweep", help="Also score a grid of lambda_late values (lambda_anchor 1) and mark the best row."),
    per_query: bool = typer.Option(False, "--per-query", help="Also show each query's first relevant rank and scores (smart row)."),
    top_k: int = typer.Option(defaults.TOP_K, "--k", "-k", min=1, help="Cut-off rank of the metrics."),
    json_output: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
    device: str = DeviceOption,
    candidates: int = typer.Option(
        defaults.CANDIDATES, "--candidates", min=1, help="Measure two-stage search with this shortlist, as `smart search` runs it."
    ),
    exhaustive: bool = typer.Option(False, "--exhaustive", help="Measure exhaustive search (every page scored with SMART)."),
) -> None:
    """Measure MRR@k, Recall@k and nDCG@k of pooled, late and smart search on judged queries (on the path `smart search` takes)."""
    raise typer.Exit(
        run_eval(
            queries, store, lambda_anchor, lambda_late, sweep, per_query, top_k, json_output, device, None if exhaustive else candidates
        )
    )


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
            stdout.print(per_query_table(evaluation.runs[evaluation.default_index][1], k, stdout.width))
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


def per_query_table(run, k: int, width: int):
    """One line per query whatever the width: the figures whole, the query cut with an ellipsis
    where it does not fit (``--json`` has every query whole)."""
    from rich.table import Table

    headers = (("qid", "left"), ("kind", "left"), ("rel", "right"), ("first hit", "right"), ("RR", "right"), (f"R@{k}", "right"))
    headers += (("nDCG", "right"),)
    rows = []
    for score in run.per_query:
        first = "-" if score.first_hit is None else str(score.first_hit)
        figures = [score.qid, score.kind, str(score.relevant), first, f"{score.rr:.3f}", f"{score.recall:.3f}", f"{score.ndcg:.3f}"]
        rows.append((figures, score.query, "red" if score.first_hit is None else None))
    table = Table(title=f"per query ({run.label})", title_justify="left", box=None, pad_edge=False)
    used = 0
    for i, (name, justify) in enumerate(headers):
        column = max([len(name)] + [len(figures[i]) for figures, _, _ in rows])
        table.add_column(name, justify=justify, no_wrap=True, min_width=column)
        used += column + 2  # and the padding between columns
    table.add_column("query", justify="left", no_wrap=True, overflow="ellipsis", max_width=max(width - used, 12))
    for figures, query, style in rows:
        table.add_row(*figures, query, style=style)
    return table
