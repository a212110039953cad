"""`smart eval`: MRR@k, Recall@k and nDCG@k of the real search path on judged queries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smartcli import cli
from smartcli.output import print_json_line, stdout, warn

SWEEP_LAMBDA_LATE = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 16.0)


@dataclass(frozen=True)
class Config:
    mode: str
    lambda_anchor: float
    lambda_late: float

    @property
    def label(self) -> str:
        if self.mode == "smart":
            return f"smart {self.lambda_anchor:g}/{self.lambda_late:g}"
        return self.mode


def configs_to_run(lambda_anchor: float, lambda_late: float, sweep: bool) -> list[Config]:
    configs = [Config("pooled", 1.0, 0.0), Config("late", 0.0, 1.0), Config("smart", lambda_anchor, lambda_late)]
    if sweep:
        for late in SWEEP_LAMBDA_LATE:
            config = Config("smart", 1.0, late)
            if config not in configs:
                configs.append(config)
    return configs


def run_eval(
    queries_file: Path,
    store_path: Path,
    lambda_anchor: float | None,
    lambda_late: float | None,
    sweep: bool,
    per_query: bool,
    k: int,
    json_output: bool,
    device: str,
) -> int:
    from smartcli.commands.search_cmd import open_searcher
    from smartcli.evaluate import JudgmentError, load_judgments, score_run
    from smartcli.scoring import DEFAULT_LAMBDA_ANCHOR, DEFAULT_LAMBDA_LATE, Weights

    try:
        judged = load_judgments(str(queries_file))
    except (OSError, JudgmentError) as exc:
        warn(str(exc) if isinstance(exc, JudgmentError) else f"{queries_file}: {exc.strerror or exc}")
        return cli.EXIT_USAGE
    searcher, code = open_searcher(store_path, device, None)
    if searcher is None:
        return code
    lambda_anchor = DEFAULT_LAMBDA_ANCHOR if lambda_anchor is None else lambda_anchor
    lambda_late = DEFAULT_LAMBDA_LATE if lambda_late is None else lambda_late
    encoded = searcher.encoder.encode([q.query for q in judged])
    anchor, late = searcher.scores(encoded)
    runs = []
    for config in configs_to_run(lambda_anchor, lambda_late, sweep):
        weights = Weights.for_mode(config.mode, config.lambda_anchor, config.lambda_late)
        hits = searcher.rank(encoded, anchor, late, weights, k, snippets=False)
        ranked = [[(h.item.path, h.item.page) for h in query_hits] for query_hits in hits]
        runs.append((config, score_run(config.label, judged, ranked, k)))
    best = max(range(len(runs)), key=lambda i: (runs[i][1].mean("ndcg"), runs[i][1].mean("rr")))
    default_index = 2  # the smart row at the current lambdas
    if json_output:
        print_json_line(eval_json(runs, best, default_index, k, per_query))
    else:
        stdout.print(eval_table(runs, best, k, len(judged)))
        if per_query:
            stdout.print(per_query_table(runs[default_index][1], judged, k))
    return cli.EXIT_OK


def _metrics(run, kind=None) -> dict:
    return {
        "mrr": round(run.mean("rr", kind), 4),
        "recall": round(run.mean("recall", kind), 4),
        "ndcg": round(run.mean("ndcg", kind), 4),
    }


def eval_json(runs, best: int, default_index: int, k: int, per_query: bool) -> dict:
    rows = []
    for i, (config, run) in enumerate(runs):
        row = {"mode": config.mode, "lambda_anchor": config.lambda_anchor, "lambda_late": config.lambda_late}
        row.update(_metrics(run))
        row["per_kind"] = {kind: _metrics(run, kind) for kind in run.kinds}
        row["best"] = i == best
        rows.append(row)
    out = {"k": k, "queries": len(runs[0][1].per_query), "rows": rows}
    if per_query:
        out["per_query"] = [q.__dict__ for q in runs[default_index][1].per_query]
    return out


def eval_table(runs, best: int, k: int, n_queries: int):
    from rich.table import Table

    kinds = runs[0][1].kinds
    title = f"{n_queries} queries; MRR, Recall and nDCG at {k}" + ("; nDCG per query kind on the right" if kinds else "")
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


def per_query_table(run, judged, k: int):
    from rich.table import Table

    table = Table(title=f"per query ({run.label})", title_justify="left")
    for name, justify in (("qid", "left"), ("kind", "left"), ("rel", "right"), ("first hit", "right"), ("RR", "right"), (f"R@{k}", "right"), ("nDCG", "right"), ("query", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for score, query in zip(run.per_query, judged):
        first = "-" if score.first_hit is None else str(score.first_hit)
        style = "red" if score.first_hit is None else None
        table.add_row(
            score.qid, score.kind, str(len(query.relevant)), first, f"{score.rr:.3f}", f"{score.recall:.3f}", f"{score.ndcg:.3f}", query.query, style=style
        )
    return table
