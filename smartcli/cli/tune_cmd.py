"""`smart tune`: ``Index.tune`` (or ``Index.reset_tuning``), and what it measured on held-back pairs."""

from __future__ import annotations

from pathlib import Path

import typer

from smartcli import defaults
from smartcli.cli.errors import EXIT_OK, describe, exit_code
from smartcli.cli.options import DeviceOption, StoreOption, WaitOption
from smartcli.cli.present import print_json_line, print_line, warn


def tune(
    store: Path | None = StoreOption,
    pairs: Path | None = typer.Option(
        None,
        "--pairs",
        help='Labelled pairs, JSON lines: {"query", "file", "page"} (files match by base name or by path, as in `smart eval`).',
        show_default=False,
    ),
    no_outline: bool = typer.Option(False, "--no-outline", help="Learn from --pairs only, not from the PDFs' outlines."),
    heading_path: bool = typer.Option(False, "--heading-path", help='Mined queries carry their parent headings ("Installing R > Linux").'),
    body: bool = typer.Option(
        False, "--body", help="Also learn from pseudo-queries cut from the pages' own text (inverse cloze; see docs/commands/tune.md)."
    ),
    adapter: bool = typer.Option(
        False,
        "--adapter",
        help="Also train the query-side adapter (measured: it helps held-back outline headings, but cost the development set's written queries 0.035 nDCG@10; see docs/commands/tune.md).",
    ),
    init: str = typer.Option(
        defaults.TUNE_INIT,
        "--init",
        help="How the adapter's Linear starts: identity (zero) or pca (takes out the query token states' top principal directions).",
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Keep what was learned even if the held-back pairs do not improve (collections too small to judge)."
    ),
    reset: bool = typer.Option(False, "--reset", help="Back to the frozen model and the default weights."),
    wait: bool = WaitOption,
    json_output: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    device: str = DeviceOption,
) -> None:
    """Learn this store's fusion weights (and, with --adapter, a query-side adapter) from its PDFs' outlines or --pairs; kept only if held-back pairs improve."""
    raise typer.Exit(run_tune(store, pairs, not no_outline, heading_path, adapter, keep, reset, wait, json_output, device, body, init))


def run_tune(
    store_path: Path | None,
    pairs: Path | None,
    outline: bool,
    heading_path: bool,
    adapter: bool,
    keep: bool,
    reset: bool,
    wait: bool,
    json_output: bool,
    device: str,
    body: bool,
    init: str,
) -> int:
    from smartcli import Index, SmartError, UpdateEvents

    class Events(UpdateEvents):
        def message(self, text: str) -> None:
            warn(text)

        def waiting(self) -> None:
            warn("another writer holds the store; waiting for it to finish")

    try:
        index = Index.open(store_path, device=device)
        if reset:
            had = index.reset_tuning(wait=wait)
            if json_output:
                print_json_line({"store": str(index.path), "reset": True, "was_tuned": had})
            else:
                print_line("back to the frozen model and the default weights" if had else "the store was not tuned; nothing to reset")
            return EXIT_OK
        summary = index.tune(
            pairs=pairs,
            outline=outline,
            heading_path=heading_path,
            adapter=adapter,
            guard=not keep,
            wait=wait,
            events=Events(),
            body=body,
            init=init,
        )
    except SmartError as exc:
        warn(describe(exc))
        return exit_code(exc)
    if json_output:
        print_json_line(summary.as_json())
        return EXIT_OK
    for line in summary_lines(summary):
        print_line(line)
    return EXIT_OK


def summary_lines(summary) -> list[str]:
    held = summary.held_back
    pairs = summary.pairs

    def figures(row: dict) -> str:
        return f"nDCG@10 {row['ndcg']:.4f}, MRR@10 {row['mrr']:.4f} (weights {row['lambda_anchor']:g}/{row['lambda_late']:g})"

    lines = [f"{pairs['used']} pairs: {pairs['train']} to train on, {pairs['held_back']} held back"]
    lines.append(f"held back, untuned:        {figures(held['untuned'])}")
    lines.append(f"held back, weights chosen: {figures(held['weights'])}")
    if held["adapter"]:
        lines.append(f"held back, with adapter:   {figures(held['adapter'])} (best of {summary.epochs} epoch(s): {summary.best_epoch})")
    elif summary.epochs:
        lines.append(f"held back, with adapter:   no epoch of {summary.epochs} beat the frozen model")
    if summary.kept != "untuned" and not summary.improved:
        lines.append("kept as asked, although the held-back pairs did not improve")
    if summary.kept == "adapter":
        lines.append(
            f"kept the adapter and weights {summary.lambda_anchor:g}/{summary.lambda_late:g}; `smart search` uses them ({summary.seconds:.0f} s)"
        )
    elif summary.kept == "weights":
        why = " (the adapter did not help more)" if summary.epochs else ""
        lines.append(
            f"kept weights {summary.lambda_anchor:g}/{summary.lambda_late:g}{why}; `smart search` uses them, "
            f"scores on the same 0-6 scale ({summary.seconds:.0f} s)"
        )
    else:
        lines.append(f"nothing beat the untuned search on the held-back pairs: the store stays untuned ({summary.seconds:.0f} s)")
    return lines
